package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

var hostileTexts = []string{
	`<img src=x onerror=alert(1)>`,
	`<script>alert(1)</script>`,
	`<a href="javascript:alert(1)">x</a>`,
	`<a href="JaVaScRiPt:alert(1)">x</a>`,
	`<a href="jav&#x09;ascript:alert(1)">x</a>`,
	`<a href="/\evil.com">x</a>`,
	`<a href="/&#9;/evil.com">x</a>`,
	`<a href=//evil.com>x</a>`,
	`<a href="/contacts/1" onclick="x">ok</a>`,
	`<a href=https://example.com/?a=1&b=2 target=_self rel=opener>x</a>`,
	`<svg onload=alert(1)><circle/></svg>`,
	`<iframe src="javascript:alert(1)"></iframe>`,
	`<p style="background:url(javascript:alert(1))"><b>x</b></p>`,
	`<<script>script>alert(1)<</script>/script>`,
	`<b><i>unclosed <a href="/x">`,
	`<textarea><script>x</script></textarea>`,
	`<noscript><p title="</noscript><img src=x onerror=alert(1)>">`,
	`<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`,
	"<a href=\"/x\"\x00>\x01\r\n&#13;&#0;</a>",
	`&lt;script&gt; &amp;amp; &#x3C;b&#x3E;`,
	`<!-- <script> --> <![CDATA[<script>]]> <!DOCTYPE html>`,
}

// FuzzValidate checks the validator's invariants on any input: it never panics; it
// rejects with an *Error; what it accepts re-validates to itself and contains only
// safe links and the allowed HTML.
func FuzzValidate(f *testing.F) {
	for _, tc := range seedExamples {
		f.Add(typeIndex(tc.typ), []byte(tc.body))
	}
	for _, text := range hostileTexts {
		body, _ := json.Marshal(map[string]any{
			"header": text, "text": text, "link": "/x", "type": "call",
			"element": map[string]any{"id": 1, "type": "lead"},
		})
		for i := range allTypes {
			f.Add(uint8(i), body)
		}
	}
	for _, body := range []string{
		`{"text":{"header":"h","text":"t","x":1},"type":"error","date":1714566795123.5}`,
		`{"header":"h","text":"t","icon":"HTTPS://EXAMPLE.COM/a.png","date":null}`,
		`{"header":"h","text":"t","link":"/\\evil.com"}`,
		`{"text":"t","duration":0,"element":{"id":9223372036854775807,"type":"company"}}`,
		`{"text":"t","text":"u","\u0074ext":"v"}`,
		`{"text":"\ud800\u0000"}`,
		"{\"text\":\"\xff\"}",
		`[]`, `null`, `"x"`, `1`, `{`, `{} {}`, ``,
	} {
		for i := range allTypes {
			f.Add(uint8(i), []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		typ := allTypes[int(kind)%len(allTypes)]
		p, warnings, err := Validate(typ, body, testNow)
		if err != nil {
			if e := (*Error)(nil); !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if p != nil || warnings != nil {
				t.Fatalf("rejected, but returned %#v and %q", p, warnings)
			}
			return
		}
		if p.Type() != typ || warnings == nil {
			t.Fatalf("accepted as %s with warnings %#v", p.Type(), warnings)
		}
		canonical, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if enc, err := Encode(p); err != nil || !bytes.Equal(enc, canonical) {
			t.Fatalf("Encode gives %s (%v), encoding/json %s", enc, err, canonical)
		}
		again, warnings, err := Validate(typ, canonical, testNow)
		if err != nil {
			t.Fatalf("canonical form %s rejected: %v", canonical, err)
		}
		if !reflect.DeepEqual(again, p) || len(warnings) != 0 {
			t.Fatalf("canonical form %s validates to %#v, warnings %q", canonical, again, warnings)
		}
		for _, l := range links(p) {
			if l.value != "" && (!safeLink(l.value) || l.absolute && IsPath(l.value)) {
				t.Errorf("unsafe link %q accepted", l.value)
			}
		}
		for _, text := range texts(p) {
			checkSafeHTML(t, text)
		}
	})
}

// FuzzSanitizeHTML checks that sanitized text is safe, and stable under sanitizing.
func FuzzSanitizeHTML(f *testing.F) {
	for _, s := range hostileTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := SanitizeHTML(s)
		if full := sanitize(s); out != full {
			t.Fatalf("SanitizeHTML(%q) = %q, but the full pass gives %q", s, out, full)
		}
		checkSafeHTML(t, out)
		if again := SanitizeHTML(out); again != out {
			t.Fatalf("not idempotent:\n in: %q\nout: %q\nagain: %q", s, out, again)
		}
		_ = PlainText(s)
	})
}

// FuzzCheckLink checks CheckLink and CheckURL against what a browser would open.
func FuzzCheckLink(f *testing.F) {
	for _, s := range []string{
		"/contacts/list/?term=4951234567", "https://example.com/a", "HTTP://x", "//evil.com",
		"/\\evil.com", "/\t/evil.com", "javascript:alert(1)", "http:evil.com", "https://u:p@x",
		"/%zz", "https://[::1]:80/", "https://%65vil.com", "ftp://x", "relative/path",
	} {
		f.Add(s)
	}
	base, _ := url.Parse("https://crm.example.com/base/")
	f.Fuzz(func(t *testing.T, s string) {
		linkErr, urlErr := CheckLink(s), CheckURL(s)
		if urlErr == nil && (linkErr != nil || IsPath(s)) {
			t.Fatalf("CheckURL accepts %q, CheckLink says %v", s, linkErr)
		}
		if linkErr != nil {
			return
		}
		if !safeLink(s) {
			t.Fatalf("unsafe link %q accepted", s)
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("accepted %q does not parse: %v", s, err)
		}
		if IsPath(s) && base.ResolveReference(u).Host != base.Host {
			t.Fatalf("path %q resolves to another host: %s", s, base.ResolveReference(u))
		}
	})
}

// safeLink is an independent statement of the link rule, in the terms of what a
// browser does with it: an http(s) URL, or a path on the same host.
func safeLink(s string) bool {
	if strings.ContainsAny(s, "\\\t\n\r ") {
		return false
	}
	if strings.HasPrefix(s, "/") {
		return !strings.HasPrefix(s, "//")
	}
	lower := strings.ToLower(s)
	return strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://")
}

// checkSafeHTML parses text the way a browser does and fails the test if anything
// but the allowed elements and attributes, or an unsafe href, comes out of it.
func checkSafeHTML(t *testing.T, text string) {
	t.Helper()
	if strings.Contains(strings.ToLower(text), "<script") {
		t.Fatalf("text %q contains <script", text)
	}
	body := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	nodes, err := html.ParseFragment(strings.NewReader(text), body)
	if err != nil {
		t.Fatalf("text %q does not parse: %v", text, err)
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.A, atom.B, atom.Strong, atom.I, atom.Em, atom.P, atom.Br, atom.Span:
			default:
				t.Fatalf("text %q has a <%s> element", text, n.Data)
			}
			for _, a := range n.Attr {
				switch {
				case n.DataAtom != atom.A || a.Namespace != "":
					t.Fatalf("text %q has attribute %s on <%s>", text, a.Key, n.Data)
				case a.Key == "href" && !safeLink(a.Val):
					t.Fatalf("text %q has unsafe href %q", text, a.Val)
				case a.Key == "target" && a.Val != "_blank", a.Key == "rel" && a.Val != "noopener noreferrer":
					t.Fatalf("text %q has %s=%q", text, a.Key, a.Val)
				case a.Key != "href" && a.Key != "target" && a.Key != "rel":
					t.Fatalf("text %q has attribute %s", text, a.Key)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	for _, n := range nodes {
		walk(n)
	}
}

func typeIndex(t Type) uint8 {
	for i, u := range allTypes {
		if u == t {
			return uint8(i)
		}
	}
	panic("unknown type " + t)
}

type link struct {
	value    string
	absolute bool // must be an absolute URL, not a path
}

// links returns every link field of p; texts every HTML text field.
func links(p Payload) []link {
	switch p := p.(type) {
	case *ShowMessagePayload:
		return []link{{p.Icon, true}}
	case *ShowMessageErrorPayload:
		return []link{{p.Link, false}}
	case *AddErrorPayload:
		return []link{{p.Link, false}}
	case *AddCallPayload:
		return []link{{p.Link, true}}
	}
	return nil
}

func texts(p Payload) []string {
	switch p := p.(type) {
	case *ShowMessagePayload:
		return []string{p.Text}
	case *ShowMessageErrorPayload:
		return []string{p.Text}
	case *ShowNotificationPayload:
		return []string{p.Text.Text}
	case *AddErrorPayload:
		return []string{p.Text}
	case *AddCallPayload:
		return []string{p.Text}
	}
	return nil
}

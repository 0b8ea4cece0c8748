package events

import (
	"fmt"
	"strings"
	"testing"
)

// linkCase is a link value and whether it is accepted as an absolute URL (icon,
// add_call link) and as a clickable link (other links).
type linkCase struct {
	value      string
	url, link  bool
	rule       string // the message when refused, if not the rule of the form expected
	normalized string // what is kept, if not value
}

var linkCases = []linkCase{
	{value: "https://example.com/a.png", url: true, link: true},
	{value: "http://example.com", url: true, link: true},
	{value: "HTTPS://EXAMPLE.COM/X", url: true, link: true},
	{value: "hTTp://example.com:8080/p?q=1&r=2#f", url: true, link: true},
	{value: "https://[::1]/x", url: true, link: true},
	{value: "https://пример.рф/путь", url: true, link: true},
	{value: "  https://example.com/  ", url: true, link: true, normalized: "https://example.com/"},
	{value: "/contacts/list/?term=4951234567", link: true},
	{value: "/", link: true},
	{value: "/a//b", link: true},
	{value: "javascript:alert(1)"},
	{value: "JAVASCRIPT:alert(1)"},
	{value: "JavaScript:alert(document.domain)//https://x"},
	{value: "data:text/html,<script>alert(1)</script>"},
	{value: "vbscript:msgbox(1)"},
	{value: "ftp://example.com/f"},
	{value: "mailto:a@example.com"},
	{value: "//evil.com"},
	{value: "///evil.com"},
	{value: "contacts/list"},
	{value: "example.com"},
	{value: "https://"},
	{value: "https:///evil.com"},
	{value: "http:evil.com"},
	{value: "http://:80/"},
	{value: "https://example.com:port/"},
	{value: "/%zz"},
	{value: `/\evil.com`, rule: errLinkChars.Error()},
	{value: `https://example.com\@evil.com`, rule: errLinkChars.Error()},
	{value: "/\t/evil.com", rule: errLinkChars.Error()},
	{value: "/x\ny", rule: errLinkChars.Error()},
	{value: "https://example.com/a b", rule: errLinkChars.Error()},
	{value: "https://example.com/a\u00a0b", rule: errLinkChars.Error()},
	{value: "/x\x00", rule: errLinkChars.Error()},
	{value: "https://exa\u200bmple.com", rule: errLinkChars.Error()},
	{value: "java\tscript:alert(1)", rule: errLinkChars.Error()},
	{value: "https://kommo.com@evil.com/", rule: errLinkCredentials.Error()},
	{value: "https://user:pass@example.com/", rule: errLinkCredentials.Error()},
	{value: "https://example.com/" + strings.Repeat("a", MaxLinkLen-20), url: true, link: true},
	{value: "https://example.com/" + strings.Repeat("a", MaxLinkLen-19), rule: errLinkTooLong.Error()},
}

func TestValidateLinks(t *testing.T) {
	targets := []struct {
		typ  Type
		name string
		url  bool // absolute URLs only
	}{
		{ShowMessage, "icon", true},
		{ShowMessageError, "link", false},
		{AddError, "link", false},
		{AddCall, "link", true},
	}
	for _, target := range targets {
		for _, lc := range linkCases {
			body := with(t, target.typ, target.name, quote(lc.value))
			accepted := lc.link && !target.url || lc.url
			if accepted {
				t.Run(fmt.Sprintf("%s/%s/%q", target.typ, target.name, lc.value), func(t *testing.T) {
					want := lc.value
					if lc.normalized != "" {
						want = lc.normalized
					}
					if got := field(t, mustValidate(t, target.typ, body), target.name); got != quote(want) {
						t.Errorf("%s = %s, want %s", target.name, got, quote(want))
					}
				})
				continue
			}
			msg := lc.rule
			switch {
			case msg != "":
			case target.url:
				msg = errNotURL.Error()
			default:
				msg = errNotLink.Error()
			}
			checkRejections(t, []rejection{{
				name: fmt.Sprintf("%s/%s/%q", target.typ, target.name, lc.value),
				typ:  target.typ, body: body, field: target.name, msg: msg,
			}})
		}
	}
}

func TestCheckLink(t *testing.T) {
	for _, lc := range linkCases {
		t.Run(fmt.Sprintf("%q", lc.value), func(t *testing.T) {
			s := trim(lc.value)
			if err := CheckURL(s); (err == nil) != lc.url {
				t.Errorf("CheckURL = %v, want accepted %t", err, lc.url)
			}
			if err := CheckLink(s); (err == nil) != lc.link {
				t.Errorf("CheckLink = %v, want accepted %t", err, lc.link)
			}
		})
	}
}

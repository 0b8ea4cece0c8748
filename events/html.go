package events

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// policy is the allowlist of text: a[href], b, strong, i, em, p, br, span, nothing else.
// bluemonday drops every other tag (keeping its text), every other attribute, and the
// content of script, style, iframe and the like. It passes an href through unchecked:
// rewriteText then applies CheckLink, the one link rule, rather than bluemonday's own.
// A *bluemonday.Policy is safe for concurrent use once built.
var policy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("b", "strong", "i", "em", "p", "br", "span")
	p.AllowAttrs("href").OnElements("a")
	// An anchor whose href was refused stays as a bare <a>, which is no link: dropping
	// the tag instead would leave its end tag to a second pass, and sanitizing would
	// no longer be idempotent.
	p.AllowNoAttrs().OnElements("a")
	// A removed tag leaves a space, so <div>one</div><div>two</div> does not read
	// "onetwo". Browsers collapse the extra spaces; it splits a word only where an
	// inline tag such as <u> sat inside one, which notifications hardly do.
	p.AddSpaceWhenStrippingTag(true)
	return p
})

// SanitizeHTML reduces s to the HTML subset allowed in text and trims it. An href that
// breaks CheckLink is removed, leaving the anchor's text. Links to absolute URLs get
// target="_blank" and rel="noopener noreferrer": they leave the CRM, so they open in a
// new tab that can neither script the CRM's tab nor learn its URL; a path stays in the
// app and gets neither. Control characters other than tab and newline are removed.
//
// The result is safe to insert as HTML, and sanitizing it again returns it unchanged.
func SanitizeHTML(s string) string {
	if !strings.ContainsFunc(s, needsSanitizing) {
		return trim(s) // what the full pass would return, at a fraction of the cost
	}
	return sanitize(s)
}

func sanitize(s string) string {
	if trim(s) == "" {
		return ""
	}
	return trim(rewriteText(policy().Sanitize(s)))
}

// needsSanitizing reports the characters that make text more than plain text to the
// sanitizer: markup, what it escapes, and what it removes.
func needsSanitizing(r rune) bool {
	return strings.ContainsRune(`<>&"'`, r) || isStrayControl(r)
}

// rewriteText finishes what bluemonday started on its well-formed output: it checks
// each href, sets the attributes of links, and removes control characters.
func rewriteText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		switch z.Next() {
		case html.ErrorToken: // io.EOF: bluemonday's output always tokenizes
			return b.String()
		case html.TextToken:
			b.WriteString(html.EscapeString(stripTextControls(string(z.Text()))))
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.DataAtom == atom.A {
				tok.Attr = linkAttrs(tok.Attr)
			}
			b.WriteString(tok.String())
		case html.EndTagToken:
			b.WriteString(z.Token().String())
		}
		// Comments and doctypes never survive bluemonday; if one did, it is dropped.
	}
}

// linkAttrs returns the attributes of an anchor: its href if that passes CheckLink,
// and what an absolute link needs to open safely. Only the first href counts, as in
// browsers; target and rel from the input were already removed by the policy.
func linkAttrs(attrs []html.Attribute) []html.Attribute {
	for _, a := range attrs {
		if a.Key != "href" {
			continue
		}
		href := trim(a.Val)
		if CheckLink(href) != nil {
			return nil
		}
		if IsPath(href) {
			return []html.Attribute{{Key: "href", Val: href}}
		}
		return []html.Attribute{
			{Key: "href", Val: href},
			{Key: "target", Val: "_blank"},
			{Key: "rel", Val: "noopener noreferrer"},
		}
	}
	return nil
}

// stripTextControls turns CR and CRLF into LF and removes the other control
// characters but tab: they mean nothing in HTML text and trip up some mail and push
// renderers.
func stripTextControls(s string) string {
	if !strings.ContainsFunc(s, isStrayControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return '\n'
		case isStrayControl(r):
			return -1
		}
		return r
	}, strings.ReplaceAll(s, "\r\n", "\n"))
}

// isStrayControl reports the control characters text does not keep as they are.
func isStrayControl(r rune) bool { return unicode.IsControl(r) && r != '\t' && r != '\n' }

// textLen is the length of text as the limit counts it: in characters, each character
// reference (&amp;, &lt;, &#39;...) counting as the one character it stands for. So
// sanitizing never lengthens a plain text, although it escapes & < > " ' in it.
func textLen(s string) int {
	return utf8.RuneCountInString(html.UnescapeString(s))
}

// PlainText renders HTML as plain text for push notifications and the text part of an
// email: tags are removed and entities decoded; <br> is a line break and a paragraph is
// set off by a blank line; other runs of whitespace become one space; a link reads
// "label (URL)" unless its label already is the URL. The content of script and style
// is dropped, so any HTML renders sensibly, not only sanitized text. A path link is
// shown as the path: resolving it needs the base URL, which the caller holds.
func PlainText(s string) string {
	var (
		w    plainWriter
		href string // of the anchor being read
		from int    // where its label starts in w
		skip int    // depth inside script or style
	)
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			w.endLink(href, from)
			return w.String()
		case html.TextToken:
			if skip == 0 {
				w.text(string(z.Text()))
			}
			continue
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
		default:
			continue
		}
		name, hasAttr := z.TagName()
		switch atom.Lookup(name) {
		case atom.Script, atom.Style:
			if tt == html.StartTagToken {
				skip++
			} else if tt == html.EndTagToken && skip > 0 {
				skip--
			}
		case atom.Br: // browsers read </br> as <br>
			w.breakLine(1)
		case atom.P:
			w.breakLine(2)
		case atom.A:
			w.endLink(href, from)
			href, from = "", w.len()
			if tt != html.EndTagToken && hasAttr {
				href = anchorHref(z)
			}
		}
	}
}

func anchorHref(z *html.Tokenizer) string {
	for {
		key, val, more := z.TagAttr()
		if string(key) == "href" {
			return trim(string(val))
		}
		if !more {
			return ""
		}
	}
}

// plainWriter collapses whitespace as text arrives: a space or line breaks are held
// back until the next visible character, so none is ever leading or trailing.
type plainWriter struct {
	b      strings.Builder
	space  bool // a space is pending
	breaks int  // line breaks pending, at most 2: one blank line
}

func (w *plainWriter) text(s string) {
	for _, r := range s {
		if isSpace(r) {
			w.space = true
			continue
		}
		if w.b.Len() > 0 {
			if w.breaks > 0 {
				w.b.WriteString("\n\n"[:w.breaks])
			} else if w.space {
				w.b.WriteByte(' ')
			}
		}
		w.space, w.breaks = false, 0
		w.b.WriteRune(r)
	}
}

func (w *plainWriter) breakLine(n int) { w.breaks = min(w.breaks+n, 2) }

func (w *plainWriter) len() int { return w.b.Len() }

// endLink shows the href of the anchor whose label was written since from: after the
// label in parentheses, alone if there is no label, not at all if the label is the URL.
func (w *plainWriter) endLink(href string, from int) {
	if href == "" {
		return
	}
	switch label := trim(w.b.String()[from:]); label {
	case href:
	case "":
		w.text(href)
	default:
		w.space = true
		w.text("(" + href + ")")
	}
}

func (w *plainWriter) String() string { return w.b.String() }

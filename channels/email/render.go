package email

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/kommo-notify/notify/events"
)

//go:embed templates
var templateFS embed.FS

var (
	htmlTemplate = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/message.html"))
	textTemplate = texttemplate.Must(texttemplate.ParseFS(templateFS, "templates/message.txt"))
)

// content is a rendered message: what the templates made of one event for one person.
type content struct {
	Subject string
	Text    string // the text/plain part
	HTML    string // the text/html part
}

// view is what the templates see. Every string in it is plain text, escaped by
// html/template where it lands, except Body, which is sanitized HTML.
type view struct {
	Kind      string // "error" or "call": the accent of the HTML part
	Label     string // the badge: "Error", "Incoming call"
	Title     string // the subject
	Date      string // the event's date in the recipient's locale
	Body      htmltemplate.HTML
	BodyText  string // Body as plain text
	Preheader string // the inbox preview line
	Action    *link  // the main button: the element of a call, the link of an error
	Call      *callView
}

type link struct {
	Label string
	URL   string
}

type callView struct {
	From, To, Duration string
	Recording          string // the recording's URL
}

// renderer renders events against a base URL.
type renderer struct {
	base string // the CRM's URL, without a trailing slash
}

// render makes the subject and both parts of ev's message for a recipient with the
// given locale.
func (r renderer) render(ev *events.Event, locale string) (content, error) {
	v, err := r.view(ev, locale)
	if err != nil {
		return content{}, err
	}
	var text, page bytes.Buffer
	if err := textTemplate.Execute(&text, v); err != nil {
		return content{}, fmt.Errorf("text template: %w", err)
	}
	if err := htmlTemplate.Execute(&page, v); err != nil {
		return content{}, fmt.Errorf("html template: %w", err)
	}
	return content{Subject: v.Title, Text: text.String(), HTML: page.String()}, nil
}

func (r renderer) view(ev *events.Event, locale string) (*view, error) {
	var text string
	var v view
	switch p := ev.Payload.(type) {
	case *events.AddErrorPayload:
		text = p.Text
		v = view{Kind: "error", Label: "Error", Title: oneLine(p.Header)}
		if v.Title == "" {
			v.Title = "Error"
		}
		if p.Link != "" {
			v.Action = &link{Label: "Open in the CRM", URL: r.absolute(p.Link)}
		}
	case *events.AddCallPayload:
		text = p.Text
		c := &callView{From: oneLine(p.From), To: oneLine(p.To), Recording: p.Link}
		if p.Duration != nil {
			c.Duration = formatDuration(*p.Duration)
		}
		v = view{Kind: "call", Label: "Incoming call", Title: oneLine(p.Header), Call: c}
		switch {
		case v.Title != "":
		case c.From != "":
			v.Title = "Incoming call from " + c.From
		default:
			v.Title = "Incoming call"
		}
		if e := p.Element; e != nil {
			if section, ok := elementSections[e.Type]; ok {
				v.Action = &link{
					Label: "Open " + e.Type,
					URL:   r.base + "/" + section + "/detail/" + strconv.FormatInt(e.ID, 10),
				}
			}
		}
	default:
		return nil, fmt.Errorf("%s is not sent by email", ev.Type)
	}
	v.Date = formatDate(time.Unix(ev.Payload.Unix(), 0), locale)
	// The payload's text was sanitized by the validator before it was stored;
	// sanitizing again here is idempotent and cheap, and it is what makes the
	// conversion to template.HTML below true by construction rather than by trust in
	// whoever built the event. Path links then become absolute: a mail client has no
	// page to resolve them against.
	body := r.absoluteHrefs(events.SanitizeHTML(text))
	v.Body = htmltemplate.HTML(body) // safe: sanitized just above
	v.BodyText = events.PlainText(body)
	v.Preheader = preview(v.BodyText, 140)
	return &v, nil
}

// elementSections are the CRM sections of an add_call's element types, as in the
// notification center's links.click.
var elementSections = map[string]string{
	events.ElementContact: "contacts",
	events.ElementLead:    "leads",
	events.ElementCompany: "companies",
}

// absolute resolves a validated link: a path is appended to the base URL, an
// absolute URL stays as it is.
func (r renderer) absolute(link string) string {
	if events.IsPath(link) {
		return r.base + link
	}
	return link
}

// absoluteHrefs rewrites the path hrefs of sanitized HTML into absolute URLs on the
// base. Every other token is copied as the sanitizer wrote it; a rewritten tag is
// re-serialized by x/net/html, which escapes attribute values.
func (r renderer) absoluteHrefs(s string) string {
	if !strings.Contains(s, `href="/`) {
		return s
	}
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return b.String()
		}
		if tt != html.StartTagToken {
			b.Write(z.Raw())
			continue
		}
		raw := string(z.Raw()) // Token() below consumes the tokenizer's buffer
		tok := z.Token()
		if tok.DataAtom != atom.A {
			b.WriteString(raw)
			continue
		}
		for i, a := range tok.Attr {
			if a.Key == "href" && events.IsPath(a.Val) {
				tok.Attr[i].Val = r.base + a.Val
			}
		}
		b.WriteString(tok.String())
	}
}

// formatDuration is seconds as mm:ss, or h:mm:ss from an hour on, as the browser
// client shows it.
func formatDuration(sec int64) string {
	h, m, s := sec/3600, sec%3600/60, sec%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%02d:%02d", m, s)
}

// oneLine folds every run of whitespace and control characters into one space: a
// header, a name or a phone number is one line in a subject and in a heading.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
}

// preview is the first words of s, at most n characters, on one line.
func preview(s string, n int) string {
	s = oneLine(s)
	if len([]rune(s)) <= n {
		return s
	}
	cut := string([]rune(s)[:n])
	if i := strings.LastIndexByte(cut, ' '); i > n/2 {
		cut = cut[:i]
	}
	return cut + "…"
}

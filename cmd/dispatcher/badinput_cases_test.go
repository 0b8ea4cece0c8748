package main

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	sweepAPIKey  = "sweep-test-api-key-3d9a41"
	sweepSecret  = "sweep-test-jwt-secret-0123456789abcdef"
	sweepAccount = "acme"
	sweepUser    = "42" // the user whose tab sees every accepted event
)

var sweepTypes = []string{"show_message", "show_message_error", "show_notification", "add_error", "add_call"}

// sweepSchema is, per type, a valid payload (the seed's samples) every bad input is
// made from, and the fields the contract has rules for.
var sweepSchema = map[string]struct {
	valid    string
	required []string // required strings
	limited  []string // strings with a length limit: 4,096 characters for text, else 256
	text     string   // the HTML text
	link     string   // the link field
	anyLink  bool     // the link may be a path; else it must be an absolute http(s) URL
}{
	"show_message": {
		valid:    `{"header":"Warning","text":"Connection established","icon":"https://www.example.com/images/telephone.png"}`,
		required: []string{"header", "text"},
		limited:  []string{"header", "text"},
		text:     "text",
		link:     "icon",
	},
	"show_message_error": {
		valid:    `{"header":"Warning","text":"Connection to the server is lost","link":"/contacts/list/?term=4951234567"}`,
		required: []string{"header", "text"},
		limited:  []string{"header", "text"},
		text:     "text",
		link:     "link",
		anyLink:  true,
	},
	"show_notification": {
		valid:    `{"text":{"header":"Outgoing call","text":"Dialing the number +19872345678"},"type":"call"}`,
		required: []string{"text.header", "text.text", "type"},
		limited:  []string{"text.header", "text.text"},
		text:     "text.text",
	},
	"add_error": {
		valid:    `{"header":"Error","text":"Failed to set the task! Contact not found!","link":"/contacts/list/?term=4951234567"}`,
		required: []string{"text"},
		limited:  []string{"header", "text"},
		text:     "text",
		link:     "link",
		anyLink:  true,
	},
	"add_call": {
		valid:    `{"text":"Call from +1 (415) 523-7743","from":"Jeremy Watts","to":"Jason Nash","element":{"id":18221265,"type":"contact"},"link":"https://example.com/dialog.mp3","duration":250}`,
		required: []string{"text"},
		limited:  []string{"header", "from", "to", "text"},
		text:     "text",
		link:     "link",
	},
}

// sweepCase is one bad input and what must come of it.
type sweepCase struct {
	name    string
	typ     string // the type in the path or subject
	account string // empty: acme
	user    string // empty: 42, or a user of its own for a dead letter
	id      string // Nats-Msg-Id, and Idempotency-Key over HTTP; empty: a fresh valid one over NATS, none over HTTP
	body    []byte

	// The refusal: the error code and the field it names ("" when the whole body is at
	// fault). An empty code means the input is accepted.
	code, field string
	httpField   string // the field as HTTP names it, when that differs
	nats        natsOutcome

	// For an accepted input: the unknown members, which the warnings must name and
	// which must not be delivered, and fragments the delivered text must keep.
	unknown []string
	keep    []string
	plain   []string // plain-text fields that must be delivered on one line
}

// natsOutcome is what a NATS producer meets.
type natsOutcome int

const (
	// natsAsHTTP: the dispatcher refuses or accepts it as the HTTP API does.
	natsAsHTTP natsOutcome = iota
	// natsNoRoute: the subject is not notify.<account>.<user>.<type> with a known type,
	// so no dispatcher subscribes to it and no stream captures it: a request or a
	// JetStream publish hears that nobody answers.
	natsNoRoute
	// natsBadSubject: the subject would break the NATS protocol; the client refuses it.
	natsBadSubject
)

func (tc sweepCase) durable() bool { return tc.typ == "add_error" || tc.typ == "add_call" }

// httpStatus is the contract's status of each code of the sweep.
var httpStatus = map[string]int{
	"invalid_json":  http.StatusBadRequest,
	"invalid_field": http.StatusBadRequest,
	"too_large":     http.StatusRequestEntityTooLarge,
	"unknown_type":  http.StatusNotFound,
}

// hostileHTML is markup in text that is sanitized, not refused: the event is
// delivered without the dangerous parts and with the fragments in keep.
var hostileHTML = []struct {
	what, html string
	keep       []string
}{
	{"a script element", `<p>Call me back</p><script>alert(document.cookie)</script>`, []string{"<p>Call me back</p>"}},
	{"an img with onerror", `<img src=x onerror="alert(1)">Photo attached`, []string{"Photo attached"}},
	{"a javascript: href", `<a href="javascript:alert(1)">Open the lead</a>`, []string{"Open the lead"}},
	{"an entity-encoded javascript: href", `<a href="&#106;avascript:alert(1)">Entity href</a>`, []string{"Entity href"}},
	{"a data: href", `<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">Data link</a>`, []string{"Data link"}},
	{"a //host href", `<a href="//evil.example/">Other host</a>`, []string{"Other host"}},
	{"an iframe", `<iframe src="https://evil.example/"></iframe>Framed text`, []string{"Framed text"}},
	{"a style element", `<style>body{display:none}</style>Styled text`, []string{"Styled text"}},
	{"handlers and style on allowed tags", `<b onclick="steal()" style="color:red">Bold</b> <span onmouseover="steal()">hover</span>`, []string{"<b>Bold</b>", "<span>hover</span>"}},
	{"an svg with onload", `<svg onload=alert(1)><circle r="5"/></svg>Vector`, []string{"Vector"}},
	{"mixed-case tags", `<ScRiPt>alert(1)</sCrIpT><A HREF="JaVaScRiPt:alert(1)">Mixed case</A>`, []string{"Mixed case"}},
	{"a nested script", `<scr<script>ipt>alert(1)</script>Nested`, []string{"Nested"}},
	{"an object, an embed and a form", `<object data="javascript:alert(1)"></object><embed src=x><form action="https://evil.example"><input name=p></form>Embedded`, []string{"Embedded"}},
	{"a comment", `<!-- <script>alert(1)</script> -->Comment`, []string{"Comment"}},
	{"an unclosed img", `<p>Unclosed <b>bold <img src=x onerror=alert(1)`, []string{"Unclosed", "bold"}},
	{"a safe link with a handler", `<a href="https://www.kommo.com/" onmouseover="steal()">Kommo</a>`, []string{`href="https://www.kommo.com/"`, `rel="noopener noreferrer"`, "Kommo"}},
	{"a path link with a target", `<a href="/contacts/list/?term=1" target="_top">Contacts</a>`, []string{`<a href="/contacts/list/?term=1">Contacts</a>`}},
}

// payloadCases are the bad payloads of typ, published to a valid address.
func payloadCases(t *testing.T, typ string) []sweepCase {
	schema := sweepSchema[typ]
	valid := []byte(schema.valid)
	var cases []sweepCase
	bad := func(name string, body []byte, code, field string) {
		cases = append(cases, sweepCase{name: name, typ: typ, body: body, code: code, field: field})
	}
	with := func(kv ...string) []byte { return sweepPayload(t, typ, kv...) }

	// The body as a whole.
	bad("not JSON", []byte("Warning: connection established"), "invalid_json", "")
	bad("a JSON array", []byte("["+schema.valid+"]"), "invalid_json", "")
	bad("a JSON string", sweepQuote(t, schema.valid), "invalid_json", "")
	bad("a JSON number", []byte("1714566795"), "invalid_json", "")
	bad("JSON null", []byte("null"), "invalid_json", "")
	bad("an empty body", nil, "invalid_json", "")
	bad("truncated JSON", valid[:len(valid)-3], "invalid_json", "")
	bad("a second object after the first", []byte(schema.valid+schema.valid), "invalid_json", "")
	bad("invalid UTF-8", bytes.Replace(valid, []byte(`":"`), []byte("\":\"\xff\xfe"), 1), "invalid_json", "")
	bad("invalid UTF-8 in a member name", append([]byte("{\"\xc3\x28\":1,"), valid[1:]...), "invalid_json", "")
	over := strings.TrimSuffix(schema.valid, "}") + `,"pad":"`
	over += strings.Repeat("x", 64<<10+1-len(over)-len(`"}`)) + `"}`
	bad("a body of 64 KiB and 1 byte", []byte(over), "too_large", "")
	atLimit := over[:len(over)-len(`x"}`)] + `"}`
	cases = append(cases, sweepCase{name: "a body of exactly 64 KiB", typ: typ, body: []byte(atLimit), unknown: []string{"pad"}})
	bad("a byte order mark before the object", append([]byte("\ufeff"), valid...), "invalid_json", "")
	bad("JSON with a comment", []byte(`{/* widget */`+schema.valid[1:]), "invalid_json", "")
	bad("single-quoted JSON", []byte(strings.ReplaceAll(schema.valid, `"`, `'`)), "invalid_json", "")
	bad("date NaN", []byte(strings.TrimSuffix(schema.valid, "}")+`,"date":NaN}`), "invalid_json", "")
	// Nesting: encoding/json stops at 10,000 levels; below that an unknown member is
	// dropped like any other.
	nested := func(depth int) []byte {
		return []byte(strings.TrimSuffix(schema.valid, "}") + `,"deep":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}")
	}
	cases = append(cases, sweepCase{name: "an unknown field nested 1,000 levels deep", typ: typ, body: nested(1000), unknown: []string{"deep"}})
	bad("nesting 10,001 levels deep", nested(10001), "invalid_json", "")

	// Required strings: absent, empty, white space, not a string.
	for _, f := range schema.required {
		bad(f+" missing", with(f, ""), "invalid_field", f)
		bad(f+" null", with(f, "null"), "invalid_field", f)
		bad(f+" empty", with(f, `""`), "invalid_field", f)
		bad(f+" only white space", with(f, `" \t\r\n\u00a0\u3000\ufeff "`), "invalid_field", f)
		bad(f+" a number", with(f, "42"), "invalid_field", f)
	}
	// Length limits, counted in characters, and optional strings of the wrong type.
	for _, f := range schema.limited {
		limit := 256
		if f == "text" || strings.HasSuffix(f, ".text") {
			limit = 4096
		}
		bad(fmt.Sprintf("%s of %d characters", f, limit+1), with(f, string(sweepQuote(t, strings.Repeat("ж", limit+1)))), "invalid_field", f)
		if f != "text" && !strings.HasSuffix(f, ".text") {
			cases = append(cases, sweepCase{name: f + " with CR LF (header injection)", typ: typ,
				body: with(f, `"Sync failed\r\nBcc: victim@example.com\r\n"`), plain: []string{f}})
		}
		if !slices.Contains(schema.required, f) {
			bad(f+" a number", with(f, "42"), "invalid_field", f)
			bad(f+" an object", with(f, `{"text":"Warning"}`), "invalid_field", f)
		}
	}
	// Hostile HTML is sanitized; markup that leaves nothing is refused.
	for _, h := range hostileHTML {
		cases = append(cases, sweepCase{name: schema.text + " with " + h.what, typ: typ,
			body: with(schema.text, string(sweepQuote(t, h.html))), keep: h.keep})
	}
	bad(schema.text+" only a script", with(schema.text, string(sweepQuote(t, `<script>alert(1)</script>`))), "invalid_field", schema.text)
	bad(schema.text+" only markup that is removed", with(schema.text, string(sweepQuote(t, `<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`))), "invalid_field", schema.text)

	// Dates.
	ahead := time.Now().Add(48 * time.Hour)
	bad("date before 2000", with("date", "946684799"), "invalid_field", "date")
	bad("date before 2000 in milliseconds", with("date", "946684799999"), "invalid_field", "date")
	bad("date negative", with("date", "-1714566795"), "invalid_field", "date")
	bad("date two days ahead", with("date", fmt.Sprint(ahead.Unix())), "invalid_field", "date")
	bad("date two days ahead in milliseconds", with("date", fmt.Sprint(ahead.UnixMilli())), "invalid_field", "date")
	bad("date a string", with("date", `"1714566795"`), "invalid_field", "date")
	bad("date an ISO string", with("date", `"2024-05-01T12:00:00Z"`), "invalid_field", "date")
	bad("date a bool", with("date", "true"), "invalid_field", "date")

	// Links.
	if schema.link != "" {
		links := []struct{ what, raw string }{
			{"javascript:", `"javascript:alert(document.cookie)"`},
			{"JavaScript: in mixed case", `"JaVaScRiPt:alert(1)"`},
			{"data:", `"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="`},
			{"vbscript:", `"vbscript:msgbox(1)"`},
			{"//host", `"//evil.example/contacts"`},
			{"ftp:", `"ftp://files.example.com/dialog.mp3"`},
			{"mailto:", `"mailto:ann@example.com"`},
			{"relative without a slash", `"contacts/list/?term=1"`},
			{"with a NUL", `"/contacts/list/?term=1\u0000"`},
			{"with a newline", `"https://example.com/a\nb"`},
			{"with a bell", `"https://example.com/\u0007"`},
			{"with a tab after the slash", `"/\t/evil.example"`},
			{"with a backslash after the slash", `"/\\evil.example"`},
			{"with credentials", `"https://www.kommo.com@evil.example/"`},
			{"a number", `42`},
			{"an object", `{"href":"/contacts"}`},
		}
		if !schema.anyLink {
			links = append(links, struct{ what, raw string }{"a path", `"/contacts/list/?term=1"`})
		}
		for _, l := range links {
			bad(schema.link+" "+l.what, with(schema.link, l.raw), "invalid_field", schema.link)
		}
	}

	// Unknown members are dropped with a warning naming them.
	cases = append(cases, sweepCase{name: "unknown fields", typ: typ,
		body:    with("color", `"red"`, "onclick", `"alert(1)"`, "Header", `"Shadow"`),
		unknown: []string{"color", "onclick", "Header"}})

	switch typ {
	case "show_notification":
		bad("type info", with("type", `"info"`), "invalid_field", "type")
		bad("type in capitals", with("type", `"CALL"`), "invalid_field", "type")
		bad("text a string", with("text", `"Dialing"`), "invalid_field", "text")
		bad("text an array", with("text", `["Outgoing call","Dialing"]`), "invalid_field", "text")
		cases = append(cases, sweepCase{name: "unknown nested field", typ: typ,
			body: with("text.icon", `"https://example.com/i.png"`), unknown: []string{"text.icon"}})
	case "add_call":
		bad("element.id a string", with("element.id", `"18221265"`), "invalid_field", "element.id")
		bad("element.id 0", with("element.id", "0"), "invalid_field", "element.id")
		bad("element.id negative", with("element.id", "-18221265"), "invalid_field", "element.id")
		bad("element.id a float", with("element.id", "18221265.5"), "invalid_field", "element.id")
		bad("element.id an exponent", with("element.id", "1.8e7"), "invalid_field", "element.id")
		bad("element.id beyond int64", with("element.id", "9223372036854775808"), "invalid_field", "element.id")
		bad("element.id missing", with("element.id", ""), "invalid_field", "element.id")
		bad("element.type unknown", with("element.type", `"deal"`), "invalid_field", "element.type")
		bad("element.type missing", with("element.type", ""), "invalid_field", "element.type")
		bad("element.type a number", with("element.type", "1"), "invalid_field", "element.type")
		bad("element a string", with("element", `"contact:18221265"`), "invalid_field", "element")
		bad("element an array", with("element", `[18221265,"contact"]`), "invalid_field", "element")
		bad("duration negative", with("duration", "-1"), "invalid_field", "duration")
		bad("duration a float", with("duration", "2.5"), "invalid_field", "duration")
		bad("duration a string", with("duration", `"250"`), "invalid_field", "duration")
		bad("duration a bool", with("duration", "true"), "invalid_field", "duration")
		cases = append(cases, sweepCase{name: "unknown nested field", typ: typ,
			body: with("element.color", `"red"`), unknown: []string{"element.color"}})
	}
	return cases
}

// addressCases are valid payloads sent to bad accounts, users and types.
func addressCases() []sweepCase {
	long := strings.Repeat("a", 65)
	var cases []sweepCase
	for _, typ := range []string{"show_message", "add_error"} {
		body := []byte(sweepSchema[typ].valid)
		for _, c := range []struct {
			name, account, user, field string
			nats                       natsOutcome
		}{
			{"account with a dot", "ac.me", "", "account", natsNoRoute},
			{"account with a space", "ac me", "", "account", natsBadSubject},
			{"account of 65 characters", long, "", "account", natsAsHTTP},
			{"account not ASCII", "acmé", "", "account", natsAsHTTP},
			{"account with a slash", "ac/me", "", "account", natsAsHTTP},
			{"account the wildcard *", "*", "", "account", natsAsHTTP},
			{"account the wildcard >", ">", "", "account", natsAsHTTP},
			{"account with a NUL byte", "ac\x00me", "", "account", natsAsHTTP},
			// nats-server keeps no subject index entry for a subject with DEL (0x7f), and
			// a filtered consumer looks messages up by that index.
			{"account with a DEL byte", "ac\x7fme", "", "account", natsAsHTTP},
			{"user with a dot", "", "4.2", "user", natsNoRoute},
			{"user with a space", "", "4 2", "user", natsBadSubject},
			{"user of 65 characters", "", long, "user", natsAsHTTP},
			{"user not ASCII", "", "пользователь", "user", natsAsHTTP},
			{"user with a plus", "", "ann+1", "user", natsAsHTTP},
			{"user the wildcard *", "", "*", "user", natsAsHTTP},
			{"user with a DEL byte", "", "4\x7f2", "user", natsAsHTTP},
		} {
			cases = append(cases, sweepCase{name: typ + " to " + c.name, typ: typ, account: c.account, user: c.user,
				body: body, code: "invalid_field", field: c.field, nats: c.nats})
		}
	}
	for _, typ := range []string{"show_popup", "add_task", "ADD_ERROR", "Show_Message", "add_error_"} {
		cases = append(cases, sweepCase{name: "unknown type " + typ, typ: typ,
			body: []byte(sweepSchema["add_error"].valid), code: "unknown_type", field: "type", nats: natsNoRoute})
	}
	return cases
}

// idCases are valid events with a malformed Nats-Msg-Id (Idempotency-Key over HTTP).
func idCases() []sweepCase {
	var cases []sweepCase
	for _, typ := range []string{"show_message", "add_error"} {
		for _, c := range []struct{ name, id string }{
			{"of 129 characters", strings.Repeat("k", 129)},
			{"with spaces", "call 7781"},
			{"not ASCII", "звонок-7781"},
		} {
			cases = append(cases, sweepCase{name: typ + " with a Nats-Msg-Id " + c.name, typ: typ, id: c.id,
				body: []byte(sweepSchema[typ].valid), code: "invalid_field", field: "Nats-Msg-Id", httpField: "Idempotency-Key"})
		}
	}
	return cases
}

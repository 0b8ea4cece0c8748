package email

import (
	"bytes"
	"flag"
	"mime"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kommo-notify/notify/events"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenHeaders are the headers that do not change between two renderings.
var goldenHeaders = []string{
	"From", "To", "Subject", "Date", "Message-Id", "Auto-Submitted", "X-Auto-Response-Suppress",
	"X-Notify-Event-Id", "X-Notify-Type", "Mime-Version", "Content-Type",
}

var boundaryRe = regexp.MustCompile(`boundary=[^;\s]+`)

// TestGolden renders the seed's examples and compares the parts and the stable
// headers with testdata/. go test ./channels/email -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	s := newSender(t, nowhere{}, nil)
	for _, tc := range []struct {
		name string
		ev   *events.Event
	}{
		{"add_error", validEvent(t, "01HX6Y2Q8R0000000000000001", events.AddError, seedAddError)},
		{"add_call", validEvent(t, "01HX6Y2Q8R0000000000000002", events.AddCall, seedAddCall)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := s.compose(tc.ev, "42", ann())
			if err != nil {
				t.Fatalf("compose: %v", err)
			}
			var raw bytes.Buffer
			if _, err := msg.WriteTo(&raw); err != nil {
				t.Fatalf("write: %v", err)
			}
			m := parse(t, raw.Bytes())
			var head strings.Builder
			for _, name := range goldenHeaders {
				v := m.Header.Get(name)
				if name == "Content-Type" {
					v = boundaryRe.ReplaceAllString(v, "boundary=BOUNDARY")
				}
				head.WriteString(name + ": " + v + "\n")
			}
			golden(t, tc.name+".headers", head.String())
			golden(t, tc.name+".txt", m.Text)
			golden(t, tc.name+".html", m.HTML)
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the rendering (run with -update to accept it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestSubjects(t *testing.T) {
	r := renderer{base: testBase}
	for _, tc := range []struct {
		typ  events.Type
		body string
		want string
	}{
		{events.AddError, `{"text":"x"}`, "Error"},
		{events.AddError, `{"header":"Widget failed","text":"x"}`, "Widget failed"},
		{events.AddCall, `{"text":"x"}`, "Incoming call"},
		{events.AddCall, `{"text":"x","from":"+1 415 523 7743"}`, "Incoming call from +1 415 523 7743"},
		{events.AddCall, `{"text":"x","from":"Jeremy","header":"Missed call"}`, "Missed call"},
	} {
		c, err := r.render(validEvent(t, "e", tc.typ, tc.body), "en")
		if err != nil {
			t.Fatalf("render %s: %v", tc.body, err)
		}
		if c.Subject != tc.want {
			t.Errorf("%s %s: subject %q, want %q", tc.typ, tc.body, c.Subject, tc.want)
		}
	}
}

func TestSubjectEncoding(t *testing.T) {
	s := newSender(t, nowhere{}, nil)
	ev := validEvent(t, "e", events.AddCall, `{"text":"x","from":"Жанна Çelik 📞"}`)
	msg, err := s.compose(ev, "42", ann())
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := msg.WriteTo(&raw); err != nil {
		t.Fatal(err)
	}
	m := parse(t, raw.Bytes())
	if strings.ContainsFunc(m.Header.Get("Subject"), func(r rune) bool { return r > 127 }) {
		t.Errorf("Subject not encoded: %q", m.Header.Get("Subject"))
	}
	if got, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); got != "Incoming call from Жанна Çelik 📞" {
		t.Errorf("Subject decodes to %q", got)
	}
}

func TestFormatDate(t *testing.T) {
	at := time.Date(2024, 5, 1, 9, 3, 0, 0, time.FixedZone("BRT", -3*3600))
	for _, tc := range []struct{ locale, want string }{
		{"", "2024-05-01 12:03 UTC"},
		{"xx", "2024-05-01 12:03 UTC"},
		{"en", "May 1, 2024, 12:03 PM UTC"},
		{"en-US", "May 1, 2024, 12:03 PM UTC"},
		{"en-GB", "1 May 2024, 12:03 UTC"},
		{"pt-BR", "01/05/2024, 12:03 UTC"},
		{"de-AT", "01.05.2024, 12:03 UTC"},
		{"ru", "01.05.2024, 12:03 UTC"},
		{"zh-Hant-TW", "2024/05/01 12:03 UTC"},
	} {
		if got := formatDate(at, tc.locale); got != tc.want {
			t.Errorf("formatDate(%q) = %q, want %q", tc.locale, got, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for sec, want := range map[int64]string{0: "00:00", 59: "00:59", 250: "04:10", 3599: "59:59", 3600: "1:00:00", 3725: "1:02:05"} {
		if got := formatDuration(sec); got != want {
			t.Errorf("formatDuration(%d) = %s, want %s", sec, got, want)
		}
	}
}

func TestAbsoluteHrefs(t *testing.T) {
	r := renderer{base: "https://crm.example"}
	for in, want := range map[string]string{
		`plain`:                           `plain`,
		`<a href="/leads/detail/1">x</a>`: `<a href="https://crm.example/leads/detail/1">x</a>`,
		`<p>a <a href="https://x.example/" target="_blank" rel="noopener noreferrer">b</a></p>`: `<p>a <a href="https://x.example/" target="_blank" rel="noopener noreferrer">b</a></p>`,
		`<b>1 &lt; 2</b> <a href="/a?b=1&amp;c=2">q</a>`:                                        `<b>1 &lt; 2</b> <a href="https://crm.example/a?b=1&amp;c=2">q</a>`,
	} {
		if got := r.absoluteHrefs(in); got != want {
			t.Errorf("absoluteHrefs(%s)\n got %s\nwant %s", in, got, want)
		}
	}
}

func TestMessageID(t *testing.T) {
	a := messageID("ev-1", "acme", "42", "notify.example")
	if a != messageID("ev-1", "acme", "42", "notify.example") {
		t.Error("the Message-ID of one event and recipient changes")
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}@notify\.example$`).MatchString(a) {
		t.Errorf("Message-ID %s", a)
	}
	for _, other := range []string{
		messageID("ev-1", "acme", "43", "notify.example"),
		messageID("ev-2", "acme", "42", "notify.example"),
		messageID("ev-1a", "cme", "42", "notify.example"),
	} {
		if other == a {
			t.Errorf("two deliveries share the Message-ID %s", a)
		}
	}
}

func TestPreview(t *testing.T) {
	long := strings.Repeat("word ", 60)
	got := preview(long, 140)
	if len([]rune(got)) > 141 || !strings.HasSuffix(got, "…") || strings.Contains(got, "  ") {
		t.Errorf("preview = %q", got)
	}
	if preview("short\n text", 140) != "short text" {
		t.Errorf("preview keeps line breaks")
	}
}

// A profile's name with a comma or quotes is quoted, not split into two recipients.
func TestRecipientNameIsQuoted(t *testing.T) {
	s := newSender(t, nowhere{}, nil)
	p := ann()
	p.Name = `Lee, Ann "AL"`
	msg, err := s.compose(validEvent(t, "e", events.AddError, seedAddError), "42", p)
	if err != nil {
		t.Fatal(err)
	}
	rcpts, err := msg.GetRecipients()
	if err != nil || len(rcpts) != 1 || rcpts[0] != "<ann@example.com>" {
		t.Errorf("recipients %v, %v", rcpts, err)
	}
}

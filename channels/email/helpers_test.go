package email

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/channels/email/smtptest"
	"github.com/kommo-notify/notify/events"
)

// The seed's examples, as Kommo's documentation publishes them.
const (
	seedAddError = `{"header":"Error","text":"Failed to set the task! Contact not found!","date":1714566795,"link":"/contacts/list/?term=4951234567"}`
	seedAddCall  = `{"text":"Call from +1 (415) 523-7743","date":1714566795,"from":"Jeremy Watts","to":"Jason Nash","element":{"id":18221265,"type":"contact"},"duration":250,"link":"https://example.com/dialog.mp3"}`
)

const (
	testBase = "https://acme.kommo.example"
	testFrom = "Kommo Notifications <noreply@notify.example>"
)

// accepted is when the test events were accepted: the messages' Date.
var accepted = time.Date(2024, 5, 1, 12, 33, 20, 0, time.UTC)

// profiles is a directory in memory.
type profiles struct {
	mu    sync.Mutex
	users map[string]directory.Profile // by account/user
	ready chan struct{}
}

func newProfiles() *profiles {
	p := &profiles{users: map[string]directory.Profile{}, ready: make(chan struct{})}
	close(p.ready)
	return p
}

func (p *profiles) set(account, user string, prof directory.Profile) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[account+"/"+user] = prof
}

func (p *profiles) Profile(account, user string) (directory.Profile, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prof, ok := p.users[account+"/"+user]
	return prof, ok
}

func (p *profiles) Ready() <-chan struct{} { return p.ready }

// ann is the usual recipient: acme/42.
func ann() directory.Profile {
	return directory.Profile{Email: "ann@example.com", Name: "Ann Lee", Locale: "en", Channels: directory.DefaultChannels}
}

// validEvent is body validated as typ, the way the router gets it.
func validEvent(t testing.TB, id string, typ events.Type, body string) *events.Event {
	t.Helper()
	p, _, err := events.Validate(typ, []byte(body), accepted)
	if err != nil {
		t.Fatalf("validate %s: %v", body, err)
	}
	return &events.Event{
		ID:       id,
		Address:  events.Address{Account: "acme", User: "42", Type: typ},
		Payload:  p,
		Body:     []byte(body),
		Accepted: accepted,
	}
}

// delivery is ev for acme/42.
func delivery(ev *events.Event) *channels.Delivery {
	return &channels.Delivery{Event: ev, User: "42", Attempt: 1}
}

// smtpServer is where a test sender sends.
type smtpServer interface {
	Host() string
	Port() int
}

// nowhere is a server for tests that only compose: nothing is ever dialled.
type nowhere struct{}

func (nowhere) Host() string { return "127.0.0.1" }
func (nowhere) Port() int    { return 9 }

// newSender is a channel sending to srv, with ann in the directory; mods adjust its
// configuration. It is closed when the test ends.
func newSender(t testing.TB, srv smtpServer, dir *profiles, mods ...func(*Config)) *Sender {
	t.Helper()
	if dir == nil {
		dir = newProfiles()
		dir.set("acme", "42", ann())
	}
	cfg := Config{
		Server:     Server{Host: srv.Host(), Port: srv.Port(), TLS: NoTLS},
		From:       testFrom,
		BaseURL:    testBase,
		Recipients: dir,
		HELO:       "dispatcher.test",
	}
	for _, m := range mods {
		m(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(t.Context()) })
	return s
}

// received is a message as a mail client reads it.
type received struct {
	Header mail.Header
	Type   string // the top-level media type
	Text   string // the text/plain part, decoded
	HTML   string // the text/html part, decoded
}

// parse reads raw as a multipart/alternative message with a plain and an HTML part.
func parse(t testing.TB, raw []byte) received {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v\n%s", err, raw)
	}
	r := received{Header: m.Header}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	r.Type = mediaType
	if !strings.HasPrefix(mediaType, "multipart/") {
		t.Fatalf("Content-Type %s, want multipart/alternative", mediaType)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			return r
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		body, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("read part: %v", err)
		}
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			r.Text = string(body)
		case "text/html":
			r.HTML = string(body)
		default:
			t.Fatalf("unexpected part %s", ct)
		}
	}
}

// eventually waits up to 10 seconds for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		<-tick.C
	}
}

// decodeSubject is the Subject header as a person reads it.
func decodeSubject(t testing.TB, h mail.Header) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject %q: %v", h.Get("Subject"), err)
	}
	return s
}

// verbs are the verbs of the commands that connection n carried.
func verbs(cmds []smtptest.Command, n int) []string {
	var v []string
	for _, c := range cmds {
		if c.Conn == n {
			v = append(v, c.Verb)
		}
	}
	return v
}

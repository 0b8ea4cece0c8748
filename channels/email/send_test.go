package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/channels/email/smtptest"
	"github.com/kommo-notify/notify/events"
)

func TestSendCall(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil)
	ev := validEvent(t, "call-1", events.AddCall, seedAddCall)
	if err := s.Send(t.Context(), delivery(ev)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	if msgs[0].From != "noreply@notify.example" || strings.Join(msgs[0].To, ",") != "ann@example.com" {
		t.Errorf("envelope %s -> %v", msgs[0].From, msgs[0].To)
	}
	m := parse(t, msgs[0].Data)
	if m.Type != "multipart/alternative" {
		t.Errorf("Content-Type %s, want multipart/alternative", m.Type)
	}
	for name, want := range map[string]string{
		"From":                     `"Kommo Notifications" <noreply@notify.example>`,
		"To":                       `"Ann Lee" <ann@example.com>`,
		"Message-Id":               "<" + messageID("call-1", "acme", "42", "notify.example") + ">",
		"Auto-Submitted":           "auto-generated",
		"X-Auto-Response-Suppress": "All",
		"X-Notify-Event-Id":        "call-1",
		"X-Notify-Type":            "add_call",
		"Date":                     "Wed, 01 May 2024 12:33:20 +0000",
	} {
		if got := m.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if got := decodeSubject(t, m.Header); got != "Incoming call from Jeremy Watts" {
		t.Errorf("Subject %q", got)
	}
	for _, want := range []string{
		"Call from +1 (415) 523-7743", "Jeremy Watts", "Jason Nash", "04:10",
		"https://acme.kommo.example/contacts/detail/18221265", "https://example.com/dialog.mp3",
		"May 1, 2024, 12:33 PM UTC",
	} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text part lacks %q:\n%s", want, m.Text)
		}
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML part lacks %q", want)
		}
	}
	if !strings.Contains(m.HTML, `href="https://acme.kommo.example/contacts/detail/18221265"`) {
		t.Errorf("HTML part lacks the element's link")
	}
}

func TestSendErrorResolvesPathLinks(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil)
	ev := validEvent(t, "err-1", events.AddError,
		`{"text":"See <a href=\"/leads/detail/7\">the lead</a>","link":"/contacts/list/?term=4951234567"}`)
	if err := s.Send(t.Context(), delivery(ev)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := parse(t, srv.Messages()[0].Data)
	if got := decodeSubject(t, m.Header); got != "Error" {
		t.Errorf("Subject %q, want the default Error", got)
	}
	for _, want := range []string{
		`href="https://acme.kommo.example/leads/detail/7"`,
		`href="https://acme.kommo.example/contacts/list/?term=4951234567"`,
	} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML part lacks %s", want)
		}
	}
	if !strings.Contains(m.Text, "the lead (https://acme.kommo.example/leads/detail/7)") {
		t.Errorf("text part:\n%s", m.Text)
	}
}

func TestSendSkips(t *testing.T) {
	noEmail := ann()
	noEmail.Email = ""
	optedOut := ann()
	optedOut.Channels.Email = false
	for _, tc := range []struct {
		name    string
		profile *directory.Profile
		reason  string
	}{
		{"no profile", nil, channels.ReasonNoAddress},
		{"no address", &noEmail, channels.ReasonNoAddress},
		{"email off", &optedOut, channels.ReasonOptedOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			dir := newProfiles()
			if tc.profile != nil {
				dir.set("acme", "42", *tc.profile)
			}
			s := newSender(t, srv, dir)
			err := s.Send(t.Context(), delivery(validEvent(t, "e", events.AddError, seedAddError)))
			if reason, ok := channels.IsSkip(err); !ok || reason != tc.reason {
				t.Fatalf("Send: %v, want skip %s", err, tc.reason)
			}
			if srv.Conns() != 0 {
				t.Errorf("%d connections for a skipped delivery", srv.Conns())
			}
		})
	}
}

func TestSendWaitsForTheDirectory(t *testing.T) {
	srv := smtptest.Start(t)
	dir := &profiles{users: map[string]directory.Profile{"acme/42": ann()}, ready: make(chan struct{})}
	s := newSender(t, srv, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := s.Send(ctx, delivery(validEvent(t, "e", events.AddError, seedAddError)))
	if _, skip := channels.IsSkip(err); err == nil || skip || channels.IsPermanent(err) {
		t.Fatalf("Send before the directory loaded: %v, want a transient error", err)
	}
	close(dir.ready)
	if err := s.Send(t.Context(), delivery(validEvent(t, "e", events.AddError, seedAddError))); err != nil {
		t.Fatalf("Send once loaded: %v", err)
	}
}

func TestSendHostileContent(t *testing.T) {
	srv := smtptest.Start(t)
	dir := newProfiles()
	hostile := ann()
	hostile.Name = "Ann\r\nBcc: thief@evil.example"
	dir.set("acme", "42", hostile)
	s := newSender(t, srv, dir)
	// Built by hand, not validated: the channel must hold even if a payload skipped
	// the validator.
	ev := &events.Event{
		ID:      "hostile-1",
		Address: events.Address{Account: "acme", User: "42", Type: events.AddError},
		Payload: &events.AddErrorPayload{
			Header: "Alert\r\nBcc: thief@evil.example\r\n\r\n<script>alert(1)</script>",
			Text: `<script>alert(1)</script><img src=x onerror="alert(2)">Hi <b>bold</b> ` +
				`<a href="javascript:alert(3)">x</a> <a href="https://ok.example/">ok</a>`,
			Date: accepted.Unix(),
		},
		Accepted: accepted,
	}
	if err := s.Send(t.Context(), delivery(ev)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msg := srv.Messages()[0]
	if strings.Join(msg.To, ",") != "ann@example.com" {
		t.Errorf("envelope recipients %v, want ann only", msg.To)
	}
	m := parse(t, msg.Data)
	if len(m.Header["Bcc"]) != 0 {
		t.Errorf("a Bcc header was injected: %v", m.Header["Bcc"])
	}
	head, _, _ := strings.Cut(string(msg.Data), "\r\n\r\n")
	if strings.Contains(strings.ToLower(head), "\nbcc:") {
		t.Errorf("header block carries a Bcc line:\n%s", head)
	}
	if got := decodeSubject(t, m.Header); got != "Alert Bcc: thief@evil.example <script>alert(1)</script>" {
		t.Errorf("Subject %q: want the header folded onto one line", got)
	}
	for _, bad := range []string{"<script", "onerror", "javascript:", "<img"} {
		if strings.Contains(strings.ToLower(m.HTML), bad) {
			t.Errorf("HTML part contains %q", bad)
		}
	}
	for _, want := range []string{"<b>bold</b>", `href="https://ok.example/"`, "&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(m.HTML, want) {
			t.Errorf("HTML part lacks %s", want)
		}
	}
}

func TestSendClassifiesServerAnswers(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     smtptest.Fault
		permanent bool
		kept      bool // the session carries the next message
	}{
		{"greylisted at RCPT", smtptest.Reject(smtptest.AtRcpt, 451), false, true},
		{"mailbox full at DATA", smtptest.Reject(smtptest.AtData, 452), false, true},
		{"server closing", smtptest.Reject(smtptest.AtMail, 421), false, false},
		{"no such user", smtptest.Reject(smtptest.AtRcpt, 550), true, true},
		{"refused content", smtptest.Reject(smtptest.AtData, 554), true, true},
		{"sender refused", smtptest.Reject(smtptest.AtMail, 553), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			s := newSender(t, srv, nil, func(c *Config) { c.Connections = 1 })
			srv.Script(tc.fault)
			err := s.Send(t.Context(), delivery(validEvent(t, "e1", events.AddError, seedAddError)))
			if err == nil {
				t.Fatal("Send succeeded against a refusing server")
			}
			if channels.IsPermanent(err) != tc.permanent {
				t.Errorf("Send: %v; permanent %v, want %v", err, channels.IsPermanent(err), tc.permanent)
			}
			if strings.Contains(err.Error(), "ann@example.com") {
				t.Errorf("error carries the address: %v", err)
			}
			if err := s.Send(t.Context(), delivery(validEvent(t, "e2", events.AddError, seedAddError))); err != nil {
				t.Fatalf("the next Send: %v", err)
			}
			if want := map[bool]int{true: 1, false: 2}[tc.kept]; srv.Conns() != want {
				t.Errorf("%d connections, want %d", srv.Conns(), want)
			}
			if n := len(srv.Messages()); n != 1 {
				t.Errorf("%d messages, want 1", n)
			}
		})
	}
}

// A steady flow over one session costs the transactions and nothing else: no NOOP
// before a message, no RSET after an accepted one (the reply to the end of DATA ends
// the transaction), one EHLO for the session and QUIT at Close.
func TestSendOneTransactionPerMessage(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil, func(c *Config) { c.Connections = 1 })
	const n = 5
	for i := range n {
		if err := s.Send(t.Context(), delivery(validEvent(t, fmt.Sprint("e", i), events.AddCall, seedAddCall))); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []string{"EHLO"}
	for range n {
		want = append(want, "MAIL", "RCPT", "DATA")
	}
	want = append(want, "QUIT")
	eventually(t, "the server read QUIT", func() bool {
		cmds := srv.Commands()
		return len(cmds) > 0 && cmds[len(cmds)-1].Verb == "QUIT"
	})
	if got := verbs(srv.Commands(), 1); !slices.Equal(got, want) {
		t.Errorf("commands %v, want %v", got, want)
	}
	if srv.Conns() != 1 {
		t.Errorf("%d connections, want 1", srv.Conns())
	}
	if got := len(srv.Messages()); got != n {
		t.Errorf("%d messages, want %d", got, n)
	}
}

// What the client says after a refusal: RSET after a refused MAIL or RCPT, so the
// session carries the next message; nothing after a refusal at the end of DATA, which
// ends the transaction; a new session after 421. The sink advertises PIPELINING, so
// DATA leaves with MAIL and RCPT and the server reads it even when they were refused
// (go-smtp answers it 502); TestSendSequentialWithoutPipelining covers the other path.
func TestSendCommandsAfterRefusal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault smtptest.Fault
		want  [][]string // the commands of each connection
	}{
		{"no such user", smtptest.Reject(smtptest.AtRcpt, 550),
			[][]string{{"EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"}}},
		{"greylisted", smtptest.Reject(smtptest.AtRcpt, 451),
			[][]string{{"EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"}}},
		{"sender refused", smtptest.Reject(smtptest.AtMail, 553),
			[][]string{{"EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"}}},
		{"refused content", smtptest.Reject(smtptest.AtData, 554),
			[][]string{{"EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA"}}},
		{"server closing", smtptest.Reject(smtptest.AtMail, 421),
			[][]string{{"EHLO", "MAIL", "RCPT", "DATA"}, {"EHLO", "MAIL", "RCPT", "DATA"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			s := newSender(t, srv, nil, func(c *Config) { c.Connections = 1 })
			srv.Script(tc.fault)
			if err := s.Send(t.Context(), delivery(validEvent(t, "e1", events.AddError, seedAddError))); err == nil {
				t.Fatal("Send succeeded against a refusing server")
			}
			if err := s.Send(t.Context(), delivery(validEvent(t, "e2", events.AddError, seedAddError))); err != nil {
				t.Fatalf("the next Send: %v", err)
			}
			if srv.Conns() != len(tc.want) {
				t.Fatalf("%d connections, want %d", srv.Conns(), len(tc.want))
			}
			for i, want := range tc.want {
				if got := verbs(srv.Commands(), i+1); !slices.Equal(got, want) {
					t.Errorf("connection %d: commands %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

// The connection died after the final "." and before the reply: the server kept the
// message, the client cannot know. It retries (at least once), and the resend
// carries the same Message-ID.
func TestSendLostReplyIsRetried(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil)
	srv.Script(smtptest.Drop(smtptest.AtData))
	d := delivery(validEvent(t, "e1", events.AddError, seedAddError))
	err := s.Send(t.Context(), d)
	if err == nil || channels.IsPermanent(err) {
		t.Fatalf("Send: %v, want a transient error", err)
	}
	d.Attempt++
	if err := s.Send(t.Context(), d); err != nil {
		t.Fatalf("retry: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	if a, b := parse(t, msgs[0].Data).Header.Get("Message-Id"), parse(t, msgs[1].Data).Header.Get("Message-Id"); a != b {
		t.Errorf("Message-IDs %s and %s differ: a resend must be recognisable", a, b)
	}
}

func TestSendDroppedBeforeDataIsRetried(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil)
	srv.Script(smtptest.Drop(smtptest.AtRcpt))
	err := s.Send(t.Context(), delivery(validEvent(t, "e1", events.AddError, seedAddError)))
	if err == nil || channels.IsPermanent(err) {
		t.Fatalf("Send: %v, want a transient error", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d messages, want 0", n)
	}
}

// A server that closed the idle connections (restart, idle timeout) costs a redial,
// not a failed delivery.
func TestSendRedialsStaleConnections(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil, func(c *Config) { c.Connections = 1 })
	for i := range 3 {
		if err := s.Send(t.Context(), delivery(validEvent(t, fmt.Sprint("e", i), events.AddError, seedAddError))); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		srv.DropConnections()
	}
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("%d messages, want 3", n)
	}
	if srv.Conns() != 3 {
		t.Errorf("%d connections, want 3", srv.Conns())
	}
}

// A server that times an idle session out often says 421 before it closes it; the
// client reads that reply to its next MAIL. Nothing was taken, so the message goes out
// on a new session within the same Send, once.
func TestSendRedialsAfterIdleTimeoutReply(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault smtptest.Fault
	}{
		{"421 to MAIL", smtptest.Reject(smtptest.AtMail, 421)},
		{"421 to RCPT", smtptest.Reject(smtptest.AtRcpt, 421)},
		{"closed at MAIL", smtptest.Drop(smtptest.AtMail)},
		{"closed at RCPT", smtptest.Drop(smtptest.AtRcpt)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t)
			s := newSender(t, srv, nil, func(c *Config) { c.Connections = 1 })
			if err := s.Send(t.Context(), delivery(validEvent(t, "e1", events.AddError, seedAddError))); err != nil {
				t.Fatalf("Send: %v", err)
			}
			srv.Script(tc.fault)
			if err := s.Send(t.Context(), delivery(validEvent(t, "e2", events.AddError, seedAddError))); err != nil {
				t.Fatalf("Send on the timed-out session: %v", err)
			}
			if n := len(srv.Messages()); n != 2 {
				t.Errorf("%d messages, want 2", n)
			}
			if srv.Conns() != 2 {
				t.Errorf("%d connections, want 2", srv.Conns())
			}
		})
	}
}

func TestSendReusesConnections(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil, func(c *Config) { c.Connections = 2 })
	const n = 50
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			return s.Send(t.Context(), delivery(validEvent(t, fmt.Sprint("e", i), events.AddCall, seedAddCall)))
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := len(srv.Messages()); got != n {
		t.Fatalf("%d messages, want %d", got, n)
	}
	if srv.Conns() > 2 {
		t.Errorf("%d dials for %d messages over 2 connections", srv.Conns(), n)
	}
	ids := map[string]bool{}
	for _, m := range srv.Messages() {
		ids[parse(t, m.Data).Header.Get("Message-Id")] = true
	}
	if len(ids) != n {
		t.Errorf("%d distinct Message-IDs for %d events", len(ids), n)
	}
}

// A server that stops answering holds a Send only until its context ends, and the
// connection goes back to the pool, redialled by the next Send.
func TestSendRespectsContext(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil, func(c *Config) { c.Connections = 1 })
	srv.Script(smtptest.Hang(smtptest.AtData))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Send(ctx, delivery(validEvent(t, "e1", events.AddError, seedAddError)))
	if err == nil || channels.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send: %v, want a transient deadline error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Send returned after %s", took)
	}
	if err := s.Send(t.Context(), delivery(validEvent(t, "e2", events.AddError, seedAddError))); err != nil {
		t.Fatalf("the next Send: %v", err)
	}
}

// With every connection busy, a Send waits for one no longer than its context.
func TestSendWaitsForAConnectionWithinContext(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil, func(c *Config) { c.Connections = 1 })
	srv.Script(smtptest.Hang(smtptest.AtMail))
	hung := make(chan error, 1)
	hangCtx, stopHang := context.WithCancel(t.Context())
	defer stopHang()
	go func() { hung <- s.Send(hangCtx, delivery(validEvent(t, "e1", events.AddError, seedAddError))) }()
	eventually(t, "the first Send holds the connection", func() bool { return srv.Sessions() == 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := s.Send(ctx, delivery(validEvent(t, "e2", events.AddError, seedAddError)))
	if err == nil || !strings.Contains(err.Error(), "wait for a free SMTP connection") {
		t.Fatalf("Send while the pool is busy: %v", err)
	}
	stopHang()
	if err := <-hung; err == nil {
		t.Fatal("the hung Send succeeded")
	}
}

func TestSendTimeout(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil, func(c *Config) { c.Timeout = time.Second })
	srv.Script(smtptest.Hang(smtptest.AtRcpt))
	err := s.Send(t.Context(), delivery(validEvent(t, "e1", events.AddError, seedAddError)))
	if !errors.Is(err, context.DeadlineExceeded) || channels.IsPermanent(err) {
		t.Fatalf("Send: %v, want a transient deadline error after Config.Timeout", err)
	}
}

func TestSendSecuredAndAuthenticated(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []smtptest.Option
		mode TLSMode
	}{
		{"plain with auth on the loopback", nil, NoTLS},
		{"starttls", []smtptest.Option{smtptest.WithSTARTTLS()}, StartTLS},
		{"implicit tls", []smtptest.Option{smtptest.WithImplicitTLS()}, ImplicitTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, append(tc.opts, smtptest.WithAuth("notify", "s3cret"))...)
			s := newSender(t, srv, nil, func(c *Config) {
				c.Server = Server{Host: srv.Host(), Port: srv.Port(), TLS: tc.mode, Username: "notify", Password: "s3cret"}
				c.TLSConfig = &tls.Config{RootCAs: srv.RootCAs(), MinVersion: tls.VersionTLS12}
			})
			for i := range 2 {
				if err := s.Send(t.Context(), delivery(validEvent(t, fmt.Sprint("e", i), events.AddError, seedAddError))); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
			if srv.Conns() != 1 {
				t.Errorf("%d connections, want 1", srv.Conns())
			}
		})
	}
}

func TestSendWrongPasswordIsTransient(t *testing.T) {
	srv := smtptest.Start(t, smtptest.WithAuth("notify", "s3cret"))
	s := newSender(t, srv, nil, func(c *Config) {
		c.Server = Server{Host: srv.Host(), Port: srv.Port(), TLS: NoTLS, Username: "notify", Password: "wrong"}
	})
	err := s.Send(t.Context(), delivery(validEvent(t, "e1", events.AddError, seedAddError)))
	if err == nil || channels.IsPermanent(err) {
		t.Fatalf("Send: %v, want a transient error", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error repeats the password: %v", err)
	}
}

func TestCloseQuits(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil, func(c *Config) { c.Connections = 2 })
	var g errgroup.Group
	for i := range 4 {
		g.Go(func() error {
			return s.Send(t.Context(), delivery(validEvent(t, fmt.Sprint("e", i), events.AddError, seedAddError)))
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	eventually(t, "every connection closed", func() bool { return srv.Open() == 0 })
	err := s.Send(t.Context(), delivery(validEvent(t, "late", events.AddError, seedAddError)))
	if err == nil || channels.IsPermanent(err) {
		t.Errorf("Send after Close: %v, want a transient error", err)
	}
}

func TestSendRefusesPopups(t *testing.T) {
	srv := smtptest.Start(t)
	s := newSender(t, srv, nil)
	ev := validEvent(t, "p", events.ShowMessage, `{"header":"Warning","text":"Connection established"}`)
	if err := s.Send(t.Context(), delivery(ev)); !channels.IsPermanent(err) {
		t.Fatalf("Send(show_message): %v, want permanent", err)
	}
}

package email

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
)

// The lines a message to ann is sent with. The MAIL parameters are those go-mail's
// Mail adds for a server that advertises 8BITMIME and SMTPUTF8: the sequential test
// expects the same line from go-mail itself.
const (
	mailLine = "MAIL FROM:<noreply@notify.example> BODY=8BITMIME SMTPUTF8"
	rcptLine = "RCPT TO:<ann@example.com>"
)

var (
	pipelining = []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"}
	sequential = []string{"8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"}
)

// group reads the pipelined MAIL, RCPT and DATA, all before any reply.
func group(c *rawConn) {
	c.expect(mailLine)
	c.expect(rcptLine)
	c.expect("DATA")
}

// acceptPipelined takes one pipelined message and returns its content.
func acceptPipelined(c *rawConn) []byte {
	group(c)
	c.reply("250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead")
	data := c.message()
	c.reply("250 2.0.0 queued")
	return data
}

func quit(c *rawConn) {
	c.expect("QUIT")
	c.reply("221 2.0.0 bye")
}

// rawSender is a channel with one connection to srv and a Send timeout short enough
// that a client waiting for a reply the server holds fails the test quickly.
func rawSender(t *testing.T, srv smtpServer) *Sender {
	t.Helper()
	return newSender(t, srv, nil, func(c *Config) {
		c.Connections = 1
		c.Timeout = 5 * time.Second
	})
}

// With PIPELINING, MAIL, RCPT and DATA leave together: the server answers none of
// them before it has read all three, which deadlocks a client that waits for the
// reply to MAIL (it fails at the Send timeout). Two messages share the session.
func TestSendPipelinesTheEnvelope(t *testing.T) {
	var got [][]byte
	srv := startRaw(t, func(c *rawConn) {
		c.greet(pipelining...)
		got = append(got, acceptPipelined(c), acceptPipelined(c))
		quit(c)
	})
	s := rawSender(t, srv)
	for i := range 2 {
		if err := s.Send(t.Context(), delivery(validEvent(t, fmt.Sprint("e", i), events.AddCall, seedAddCall))); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	srv.wait()
	if srv.Conns() != 1 {
		t.Errorf("%d connections, want 1", srv.Conns())
	}
	for i, data := range got {
		m := parse(t, data)
		if want := "<" + messageID(fmt.Sprint("e", i), "acme", "42", "notify.example") + ">"; m.Header.Get("Message-Id") != want {
			t.Errorf("message %d: Message-Id %q, want %q", i, m.Header.Get("Message-Id"), want)
		}
	}
}

// Without PIPELINING each command waits for its reply (the server fails a command that
// arrives before the reply to the previous one), with go-mail's own MAIL line, and a
// refused RCPT is followed by RSET, not DATA.
func TestSendSequentialWithoutPipelining(t *testing.T) {
	accept := func(c *rawConn) {
		c.expect(mailLine)
		c.reply("250 2.1.0 ok")
		c.expect(rcptLine)
		c.reply("250 2.1.5 ok")
		c.expect("DATA")
		c.reply("354 go ahead")
		c.message()
		c.reply("250 2.0.0 queued")
	}
	srv := startRaw(t, func(c *rawConn) {
		c.greet(sequential...)
		accept(c)
		c.expect(mailLine)
		c.reply("250 2.1.0 ok")
		c.expect(rcptLine)
		c.reply("550 5.1.1 <ann@example.com>: no such user")
		c.expect("RSET")
		c.reply("250 2.0.0 ok")
		accept(c)
		quit(c)
	})
	s := rawSender(t, srv)
	send := func(id string) error {
		return s.Send(t.Context(), delivery(validEvent(t, id, events.AddError, seedAddError)))
	}
	if err := send("e1"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := send("e2"); !channels.IsPermanent(err) || !strings.Contains(err.Error(), "RCPT TO: 550") {
		t.Fatalf("Send to a refused recipient: %v, want a permanent RCPT TO: 550", err)
	}
	if err := send("e3"); err != nil {
		t.Fatalf("Send after the refusal: %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	srv.wait()
	if srv.Conns() != 1 {
		t.Errorf("%d connections, want 1", srv.Conns())
	}
}

// A refusal inside a pipelined group: every reply of the group is read, the first
// failing one names the step, and the session is cleaned for the next message (RSET,
// or after a 354 that RFC 2920 forbids, the lone "." and then RSET) or abandoned.
func TestSendPipelinedRefusals(t *testing.T) {
	for _, tc := range []struct {
		name      string
		refuse    func(c *rawConn) // the first transaction, which fails
		next      func(c *rawConn) // the second, accepted: on the same connection, or a new one
		redial    bool
		permanent bool
		step      string // in the error
	}{
		{
			name: "RCPT refused, DATA 554",
			refuse: func(c *rawConn) {
				group(c)
				c.reply("250 2.1.0 ok", "550 5.1.1 <ann@example.com>: no such user", "554 5.5.1 no valid recipients")
				c.expect("RSET")
				c.reply("250 2.0.0 ok")
			},
			permanent: true, step: "RCPT TO: 550",
		},
		{
			name: "RCPT greylisted, DATA 503",
			refuse: func(c *rawConn) {
				group(c)
				c.reply("250 2.1.0 ok", "451 4.7.1 greylisted", "503 5.5.1 no recipients")
				c.expect("RSET")
				c.reply("250 2.0.0 ok")
			},
			step: "RCPT TO: 451",
		},
		{
			name: "MAIL refused, RCPT and DATA 503",
			refuse: func(c *rawConn) {
				group(c)
				c.reply("553 5.7.1 sender refused", "503 5.5.1 MAIL first", "503 5.5.1 MAIL first")
				c.expect("RSET")
				c.reply("250 2.0.0 ok")
			},
			permanent: true, step: "MAIL FROM: 553",
		},
		{
			name: "354 after a refused RCPT",
			refuse: func(c *rawConn) {
				group(c)
				c.reply("250 2.1.0 ok", "550 5.1.1 <ann@example.com>: no such user", "354 go ahead")
				c.expect(".")
				c.reply("554 5.5.1 no valid recipients")
				c.expect("RSET")
				c.reply("250 2.0.0 ok")
			},
			permanent: true, step: "RCPT TO: 550",
		},
		{
			name: "354 after a refused MAIL",
			refuse: func(c *rawConn) {
				group(c)
				c.reply("451 4.3.0 try later", "503 5.5.1 MAIL first", "354 go ahead")
				c.expect(".")
				c.reply("503 5.5.1 MAIL first")
				c.expect("RSET")
				c.reply("250 2.0.0 ok")
			},
			step: "MAIL FROM: 451",
		},
		{
			name: "MAIL refused, then the connection closes",
			refuse: func(c *rawConn) {
				group(c)
				c.reply("550 5.7.1 sender refused")
			},
			redial: true, permanent: true, step: "MAIL FROM: 550",
		},
		{
			name: "DATA refused",
			refuse: func(c *rawConn) {
				group(c)
				c.reply("250 2.1.0 ok", "250 2.1.5 ok", "554 5.3.4 not now")
				c.closed() // MAIL and RCPT stand: the session is dropped
			},
			redial: true, permanent: true, step: "DATA: 554",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scripts := []func(*rawConn){func(c *rawConn) {
				c.greet(pipelining...)
				tc.refuse(c)
				if !tc.redial {
					acceptPipelined(c)
					quit(c)
				}
			}}
			if tc.redial {
				scripts = append(scripts, func(c *rawConn) {
					c.greet(pipelining...)
					acceptPipelined(c)
					quit(c)
				})
			}
			srv := startRaw(t, scripts...)
			s := rawSender(t, srv)
			err := s.Send(t.Context(), delivery(validEvent(t, "e1", events.AddError, seedAddError)))
			if err == nil || channels.IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), tc.step) {
				t.Fatalf("Send: %v; want an error at %s, permanent %v", err, tc.step, tc.permanent)
			}
			if strings.Contains(err.Error(), "ann@example.com") {
				t.Errorf("error carries the address: %v", err)
			}
			if err := s.Send(t.Context(), delivery(validEvent(t, "e2", events.AddError, seedAddError))); err != nil {
				t.Fatalf("the next Send: %v", err)
			}
			if err := s.Close(t.Context()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			srv.wait()
			if want := map[bool]int{false: 1, true: 2}[tc.redial]; srv.Conns() != want {
				t.Errorf("%d connections, want %d", srv.Conns(), want)
			}
		})
	}
}

// With two recipients, one refused, a server that answers DATA with 354 would pass
// an empty message to the other if the client ended it with ".": the client abandons
// the session instead, which aborts the transaction.
func TestSendPipelinedPartialRecipientsAbandonsSession(t *testing.T) {
	srv := startRaw(t, func(c *rawConn) {
		c.greet(pipelining...)
		c.expect(mailLine)
		c.expect(rcptLine)
		c.expect("RCPT TO:<bob@example.com>")
		c.expect("DATA")
		c.reply("250 2.1.0 ok", "250 2.1.5 ok", "550 5.1.1 no such user", "354 go ahead")
		c.closed()
	})
	cfg := Config{Server: Server{Host: srv.Host(), Port: srv.Port(), TLS: NoTLS}, HELO: "dispatcher.test", Timeout: 5 * time.Second}
	c, err := newConn(&cfg)
	if err != nil {
		t.Fatalf("newConn: %v", err)
	}
	if _, err := c.connect(t.Context()); err != nil {
		t.Fatalf("connect: %v", err)
	}
	msg := mail.NewMsg()
	if err := msg.From("noreply@notify.example"); err != nil {
		t.Fatal(err)
	}
	if err := msg.To("ann@example.com", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	msg.SetBodyString(mail.TypeTextPlain, "hello")
	env, err := envelopeOf(msg)
	if err != nil {
		t.Fatalf("envelope: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	done := c.guard(ctx) // a client that waits for a held reply fails at 5s
	v := classify(c.send(msg, env), "bob@example.com")
	done()
	if !channels.IsPermanent(v.err) || !strings.Contains(v.err.Error(), "RCPT TO: 550") || v.keep || v.stale {
		t.Fatalf("classify = {err: %v, keep: %v, stale: %v}, want a permanent RCPT TO: 550, session dropped", v.err, v.keep, v.stale)
	}
	c.drop()
	srv.wait()
}

func TestEnvelopeRefusesLineBreaks(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  envelope
		ok   bool
	}{
		{"plain", envelope{from: "<a@example.com>", to: []string{"<b@example.com>"}}, true},
		{"LF in the sender", envelope{from: "<a@example.com>\nRCPT TO:<x@evil.example>", to: []string{"<b@example.com>"}}, false},
		{"CR in a recipient", envelope{from: "<a@example.com>", to: []string{"<b@example.com>", "<c@example.com>\r"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.env.check(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, errLineBreak)) {
				t.Fatalf("check: %v, want ok %v", err, tc.ok)
			}
		})
	}
}

package bench

import (
	"bytes"
	"io"
	"log"
	"net"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpSink is the SMTP server the email scenarios send to: a real SMTP server
// (emersion/go-smtp, as the project's test sink) on 127.0.0.1 that accepts every
// message, hands each one's X-Notify-Event-Id to onMessage the moment it has the
// whole message, and keeps nothing. It is the harness's own and not the test kit
// (channels/email/smtptest), which is for tests only.
type smtpSink struct {
	srv       *smtp.Server
	ln        net.Listener
	onMessage func(id string, size int)
	messages  atomic.Int64
	conns     atomic.Int64
}

func startSMTPSink(onMessage func(id string, size int)) (*smtpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &smtpSink{ln: ln, onMessage: onMessage}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		s.conns.Add(1)
		return &sinkSession{s: s}, nil
	}))
	s.srv.Domain = "bench.local"
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *smtpSink) port() int    { return s.ln.Addr().(*net.TCPAddr).Port }
func (s *smtpSink) close() error { return s.srv.Close() }

type sinkSession struct {
	s   *smtpSink
	buf bytes.Buffer
}

func (ss *sinkSession) Reset()                               {}
func (ss *sinkSession) Logout() error                        { return nil }
func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	ss.buf.Reset()
	if _, err := ss.buf.ReadFrom(r); err != nil {
		return err
	}
	ss.s.messages.Add(1)
	if ss.s.onMessage != nil {
		ss.s.onMessage(headerValue(ss.buf.Bytes(), "X-Notify-Event-Id"), ss.buf.Len())
	}
	return nil
}

// headerValue finds a header of a message's header section (before the first empty
// line); names compare case-insensitively, folded values are not unfolded.
func headerValue(msg []byte, name string) string {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			return ""
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

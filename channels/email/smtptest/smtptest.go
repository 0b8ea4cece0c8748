// Package smtptest is a real SMTP server for tests: github.com/emersion/go-smtp
// listening on 127.0.0.1:0 in the test process. It keeps every message it accepts,
// counts the connections it was dialled on, records the commands it reads on them
// (without TLS), and fails on cue: a Script of faults says what happens to the next
// transactions (a 451 or a 550 at a given stage, a dropped connection, a server that
// stops answering). Stop and Restart take it off the network and bring it back on the
// same address, like a mail host that is down for a while.
//
// It is a test kit: it imports testing and must not be imported by production code.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Stage is the point of a transaction a Fault strikes at.
type Stage int

const (
	AtMail Stage = iota + 1 // the reply to MAIL FROM
	AtRcpt                  // the reply to RCPT TO
	// AtData is the reply to the end of DATA, after the content was read. A dropped
	// connection here keeps the message: the server took it, but the client never
	// heard so (the at-least-once window of every SMTP client).
	AtData
)

func (s Stage) String() string {
	switch s {
	case AtMail:
		return "MAIL"
	case AtRcpt:
		return "RCPT"
	case AtData:
		return "DATA"
	}
	return "stage(" + strconv.Itoa(int(s)) + ")"
}

// Fault is what the server does to one transaction instead of accepting it.
type Fault struct {
	At   Stage
	Code int  // the reply, 4xx or 5xx, when neither Drop nor Hang is set
	Drop bool // close the connection instead of replying
	Hang bool // never reply: hold the transaction until the server is closed
}

// Reject replies code at stage at: 451 is temporary, 550 permanent.
func Reject(at Stage, code int) Fault { return Fault{At: at, Code: code} }

// Drop closes the connection at stage at instead of replying.
func Drop(at Stage) Fault { return Fault{At: at, Drop: true} }

// Hang stops answering at stage at, like a server that is stuck.
func Hang(at Stage) Fault { return Fault{At: at, Hang: true} }

// Message is one message the server accepted.
type Message struct {
	From string
	To   []string
	Data []byte // as received: headers and body, CRLF line ends
	Conn int    // which connection carried it, 1 for the first one accepted
}

// Command is one command the server read.
type Command struct {
	Verb string // upper case: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT...
	Conn int    // which connection carried it, as in Message
}

// Option configures Start.
type Option func(*Server)

// WithAuth requires AUTH PLAIN with these credentials (allowed without TLS: it is a
// loopback sink).
func WithAuth(username, password string) Option {
	return func(s *Server) { s.user, s.pass = username, password }
}

// WithSTARTTLS offers STARTTLS with a self-signed certificate for 127.0.0.1 and
// localhost; RootCAs trusts it.
func WithSTARTTLS() Option { return func(s *Server) { s.tlsMode = "starttls" } }

// WithImplicitTLS speaks TLS from the first byte (SMTPS, port 465 style).
func WithImplicitTLS() Option { return func(s *Server) { s.tlsMode = "tls" } }

// Server is a running sink. Its methods are safe for concurrent use.
type Server struct {
	srv     *smtp.Server
	ln      net.Listener
	closed  chan struct{}
	once    sync.Once
	user    string
	pass    string
	tlsMode string
	roots   *x509.CertPool
	tlsLn   *tls.Config // implicit TLS: Restart wraps its listener in it too

	mu       sync.Mutex
	script   []Fault
	messages []Message
	conns    int                     // connections accepted
	sessions int                     // sessions begun (one per connection greeted)
	commands []Command               // read on connections without TLS
	open     map[*countedConn]string // open connections
	change   chan struct{}           // closed and replaced whenever messages grows
	current  *countingListener       // the listener in use; nil while stopped
}

// Start listens on 127.0.0.1:0 and serves until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{closed: make(chan struct{}), open: map[*countedConn]string{}, change: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s.current = &countingListener{Listener: ln, s: s}
	s.ln = s.current
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "smtptest.local"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.ErrorLog = log.New(io.Discard, "", 0) // t.Log panics once the test is over
	if s.tlsMode != "" {
		cert, roots, err := selfSigned()
		if err != nil {
			t.Fatalf("smtptest: certificate: %v", err)
		}
		s.roots = roots
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if s.tlsMode == "tls" {
			s.tlsLn = cfg
			s.ln = tls.NewListener(s.ln, cfg)
		} else {
			s.srv.TLSConfig = cfg
		}
	}
	go func() { _ = s.srv.Serve(s.ln) }()
	t.Cleanup(s.Close)
	return s
}

// Host is the address the server listens on, 127.0.0.1.
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Addr is host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// RootCAs trusts the server's certificate (nil without TLS).
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// Script queues faults: each transaction (a MAIL FROM) takes the next one, and once
// the queue is empty transactions succeed again.
func (s *Server) Script(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, faults...)
}

// Messages returns the messages accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// WaitMessages waits until n messages were accepted, failing the test after 10 seconds.
func (s *Server) WaitMessages(t testing.TB, n int) []Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		got, change := len(s.messages), s.change
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-change:
		case <-deadline:
			t.Fatalf("smtptest: %d messages after 10s, want %d", got, n)
		}
	}
}

// Commands returns the commands read so far, in order. Only connections without TLS
// are read: none with WithImplicitTLS, and with WithSTARTTLS those up to STARTTLS.
func (s *Server) Commands() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Command(nil), s.commands...)
}

// Conns is the number of connections the server accepted: the client's dials.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Sessions is the number of SMTP sessions begun: one per greeting, so a STARTTLS
// begins a second one on its connection.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Open is the number of connections open now.
func (s *Server) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// DropConnections closes every open connection, like a server that restarts or
// times idle clients out.
func (s *Server) DropConnections() {
	s.mu.Lock()
	open := make([]*countedConn, 0, len(s.open))
	for c := range s.open {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}

// Stop takes the server off the network, like a mail host that crashed or became
// unreachable: it stops listening, so a dial is refused rather than answered with an
// error reply, and closes every open connection. Messages, counters and the script
// are kept, and a hung transaction stays hung until Close. Restart brings the server
// back; stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	ln := s.current
	s.current = nil
	if ln != nil {
		ln.stopped = true
	}
	s.mu.Unlock()
	if ln != nil {
		_ = ln.Close() // Serve returns; the port is free
	}
	s.DropConnections()
}

// Restart listens again on the address Start chose and serves as before, with the
// same options, messages and counters. It fails the test if the port was taken in
// the meantime or the server was closed; a server that is not stopped is left as it is.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		t.Fatal("smtptest: Restart after Close")
	default:
	}
	if s.current != nil {
		return
	}
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("smtptest: listen again on %s: %v", s.Addr(), err)
	}
	s.current = &countingListener{Listener: ln, s: s}
	var serve net.Listener = s.current
	if s.tlsLn != nil {
		serve = tls.NewListener(serve, s.tlsLn)
	}
	go func() { _ = s.srv.Serve(serve) }()
}

// Close stops the server and releases hung transactions. Start registers it with
// t.Cleanup; calling it earlier is fine.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		_ = s.srv.Close()
		// A listener of Restart whose Serve has not registered it with srv yet.
		s.mu.Lock()
		ln := s.current
		s.current = nil
		s.mu.Unlock()
		if ln != nil {
			_ = ln.Close()
		}
	})
}

// next takes the fault for a new transaction, if any.
func (s *Server) next() (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) == 0 {
		return Fault{}, false
	}
	f := s.script[0]
	s.script = s.script[1:]
	return f, true
}

func (s *Server) keep(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.change)
	s.change = make(chan struct{})
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
	cc := underlying(c.Conn())
	n := 0
	if cc != nil {
		n = cc.n
	}
	return &session{s: s, conn: c, n: n}, nil
}

// underlying finds the counted connection under any TLS layer.
func underlying(c net.Conn) *countedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	cc, _ := c.(*countedConn)
	return cc
}

// session is one SMTP connection's state.
type session struct {
	s      *Server
	conn   *smtp.Conn
	n      int
	fault  *Fault // the current transaction's fault
	from   string
	to     []string
	authed bool
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.fault, ss.from, ss.to = nil, from, nil
	if f, ok := ss.s.next(); ok {
		ss.fault = &f
	}
	return ss.strike(AtMail)
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.strike(AtRcpt); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: ss.from, To: ss.to, Data: bytes.Clone(data), Conn: ss.n}
	if f := ss.fault; f != nil && f.At == AtData && f.Drop {
		ss.s.keep(m) // taken, but the reply is lost
	}
	if err := ss.strike(AtData); err != nil {
		return err
	}
	ss.s.keep(m)
	return nil
}

// Reset runs after every transaction once its reply is written, and for RSET.
func (ss *session) Reset() { ss.fault, ss.from, ss.to = nil, "", nil }

func (ss *session) Logout() error { return nil }

// strike applies the transaction's fault if it is due at stage.
func (ss *session) strike(stage Stage) error {
	f := ss.fault
	if f == nil || f.At != stage {
		return nil
	}
	switch {
	case f.Drop:
		_ = ss.conn.Conn().Close()
		return errors.New("smtptest: connection dropped")
	case f.Hang:
		<-ss.s.closed
		return errors.New("smtptest: server closed")
	}
	return &smtp.SMTPError{
		Code:         f.Code,
		EnhancedCode: smtp.EnhancedCode{f.Code / 100, 0, 0},
		Message:      fmt.Sprintf("smtptest: scripted %d at %s", f.Code, stage),
	}
}

// countingListener counts and tracks the connections it accepts.
type countingListener struct {
	net.Listener
	s       *Server
	stopped bool // guarded by s.mu: Stop took this listener down
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if l.stopped { // accepted just before Stop closed the listener: keep nothing
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.s.conns++
	cc := &countedConn{Conn: c, s: l.s, n: l.s.conns, plain: l.s.tlsMode != "tls"}
	l.s.open[cc] = c.RemoteAddr().String()
	return cc, nil
}

// countedConn is an accepted connection. Its Read and Write run on the connection's
// goroutine in go-smtp, one at a time; Close may come from anywhere.
type countedConn struct {
	net.Conn
	s    *Server
	n    int
	once sync.Once

	// The client's side is read for commands while plain.
	plain bool
	line  []byte // the part of a line read so far
	data  bool   // between the reply 354 and the message's final "."
	auth  bool   // a 334 challenge is out: the next line is its answer
	last  string // the last command's verb
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.plain {
		c.record(p[:n])
	}
	return n, err
}

// Write sees the server's replies, which say how to read the client's next lines: a
// client sends the message only after 354 and an AUTH answer only after 334, even
// with PIPELINING (RFC 2920).
func (c *countedConn) Write(p []byte) (int, error) {
	if c.plain {
		switch code, _, _ := bytes.Cut(p, []byte(" ")); string(code) {
		case "354":
			c.data = true
		case "334":
			c.auth = true
		case "220":
			if c.last == "STARTTLS" {
				c.plain = false // the rest is encrypted
			}
		}
	}
	return c.Conn.Write(p)
}

// record notes the command verbs among the complete lines of the client's bytes.
func (c *countedConn) record(b []byte) {
	c.line = append(c.line, b...)
	rest := c.line
	for {
		i := bytes.Index(rest, []byte("\r\n"))
		if i < 0 {
			break
		}
		line := rest[:i]
		rest = rest[i+2:]
		switch {
		case c.data:
			c.data = string(line) != "."
		case c.auth:
			c.auth = false
		default:
			verb, _, _ := bytes.Cut(line, []byte(" "))
			c.last = strings.ToUpper(string(verb))
			c.s.mu.Lock()
			c.s.commands = append(c.s.commands, Command{Verb: c.last, Conn: c.n})
			c.s.mu.Unlock()
		}
	}
	c.line = append(c.line[:0], rest...)
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.open, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

package email

import (
	"bufio"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawServer is a scripted SMTP server on 127.0.0.1:0 for what go-smtp cannot be made
// to do: leave PIPELINING out of its EHLO reply, hold its replies until a whole group
// of commands has arrived, or answer DATA with 354 after a refused RCPT. It plays one
// script per connection, in the order the client dials; a connection more fails the
// test.
type rawServer struct {
	t      *testing.T
	ln     net.Listener
	done   chan struct{} // closed when the last script has returned
	exited chan struct{} // the accept loop is over

	mu    sync.Mutex
	conn  net.Conn // the connection being served, closed by the cleanup
	conns int
}

func startRaw(t *testing.T, scripts ...func(*rawConn)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &rawServer{t: t, ln: ln, done: make(chan struct{}), exited: make(chan struct{})}
	go s.serve(scripts)
	t.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		if s.conn != nil {
			_ = s.conn.Close()
		}
		s.mu.Unlock()
		<-s.exited
	})
	return s
}

func (s *rawServer) Host() string { return "127.0.0.1" }
func (s *rawServer) Port() int    { return s.ln.Addr().(*net.TCPAddr).Port }

// Conns is the number of connections accepted.
func (s *rawServer) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// wait waits until every script has run to its end.
func (s *rawServer) wait() {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Fatal("raw SMTP server: the scripts did not finish within 10s")
	}
}

func (s *rawServer) serve(scripts []func(*rawConn)) {
	defer close(s.exited)
	for i := 0; ; i++ {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.conn = conn
		s.mu.Unlock()
		if i >= len(scripts) {
			s.t.Errorf("raw SMTP server: connection %d, want %d", i+1, len(scripts))
			_ = conn.Close()
			continue
		}
		c := &rawConn{t: s.t, n: i + 1, conn: conn, r: bufio.NewReader(conn), deadline: time.Now().Add(10 * time.Second)}
		_ = conn.SetDeadline(c.deadline)
		c.run(scripts[i])
		_ = conn.Close()
		if i == len(scripts)-1 {
			close(s.done)
		}
	}
}

// rawConn is one scripted connection. Its methods fail the test and end the script
// when the client does not say what the script expects.
type rawConn struct {
	t        *testing.T
	n        int
	conn     net.Conn
	r        *bufio.Reader
	deadline time.Time
	// strict: the server did not advertise PIPELINING, so the client must wait for
	// the reply to each command before it sends the next.
	strict bool
}

// errScript ends a script that went off course; run recovers it.
var errScript = errors.New("script failed")

func (c *rawConn) run(script func(*rawConn)) {
	defer func() {
		if r := recover(); r != nil && r != errScript {
			panic(r)
		}
	}()
	script(c)
}

func (c *rawConn) fail(format string, args ...any) {
	c.t.Errorf("raw SMTP connection %d: "+format, append([]any{c.n}, args...)...)
	panic(errScript)
}

// greet says 220 and answers EHLO with these extensions.
func (c *rawConn) greet(extensions ...string) {
	c.reply("220 raw.test ESMTP")
	if line := c.line(); !strings.HasPrefix(line, "EHLO ") {
		c.fail("got %q, want EHLO", line)
	}
	lines := append([]string{"raw.test"}, extensions...)
	for i := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		lines[i] = "250" + sep + lines[i]
	}
	c.reply(lines...)
	c.strict = !slices.Contains(extensions, "PIPELINING")
}

// expect reads the next command and fails unless it is want.
func (c *rawConn) expect(want string) {
	if got := c.line(); got != want {
		c.fail("got %q, want %q", got, want)
	}
	c.quiet(want)
}

// quiet fails a strict connection on which the client sends anything more before
// the reply to what it just sent. A pipelining client's next command is already
// there, in the same segment; the window only guards against a split one.
func (c *rawConn) quiet(after string) {
	if !c.strict {
		return
	}
	if c.r.Buffered() == 0 {
		_ = c.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, _ = c.r.Peek(1)
		_ = c.conn.SetReadDeadline(c.deadline)
	}
	if c.r.Buffered() > 0 {
		next, _ := c.r.Peek(c.r.Buffered())
		c.fail("the client sent %q before the reply to %q", next, after)
	}
}

// message reads the content after 354 up to its final ".", undoing the dot-stuffing.
func (c *rawConn) message() []byte {
	var b []byte
	for {
		line := c.line()
		if line == "." {
			c.quiet(".")
			return b
		}
		b = append(b, strings.TrimPrefix(line, ".")...)
		b = append(b, "\r\n"...)
	}
}

// closed expects the client to close the connection without sending anything more.
func (c *rawConn) closed() {
	line, err := c.r.ReadString('\n')
	if err != io.EOF || line != "" {
		c.fail("got %q (%v), want the connection closed", line, err)
	}
}

// reply writes the lines, CRLF-ended, in one write.
func (c *rawConn) reply(lines ...string) {
	var b []byte
	for _, l := range lines {
		b = append(b, l...)
		b = append(b, "\r\n"...)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.fail("write %q: %v", lines, err)
	}
}

func (c *rawConn) line() string {
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.fail("read: %v (after %q)", err, line)
	}
	if !strings.HasSuffix(line, "\r\n") {
		c.fail("line %s without CRLF", strconv.Quote(line))
	}
	return strings.TrimSuffix(line, "\r\n")
}

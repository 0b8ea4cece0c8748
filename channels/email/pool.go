package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

var (
	// errClosed is returned by a Send after Close.
	errClosed = errors.New("email: channel closed")
	// errCut is a dial that lost the race with the end of its Send's context.
	errCut = errors.New("the send's context ended")
)

// pool holds a fixed number of SMTP connections. Each carries one session, one
// transaction at a time; a Send borrows one for a single message.
// Connections are dialled when first needed and redialled when broken, and stay open
// between messages, so a steady flow of mail costs one TLS handshake and one AUTH per
// connection rather than per message. The most recently used live connection is lent
// first: under a light load one session carries everything and the others are never
// dialled.
type pool struct {
	free    chan struct{} // a token per connection not borrowed
	closing chan struct{}
	once    sync.Once

	mu    sync.Mutex
	stack []*conn // not borrowed: closed ones at the bottom, the warmest on top
}

func newPool(cfg *Config) (*pool, error) {
	p := &pool{free: make(chan struct{}, cfg.Connections), closing: make(chan struct{})}
	for range cfg.Connections {
		c, err := newConn(cfg)
		if err != nil {
			return nil, err
		}
		p.stack = append(p.stack, c)
		p.free <- struct{}{}
	}
	return p, nil
}

// get borrows a connection, waiting for one to be free for as long as ctx allows.
func (p *pool) get(ctx context.Context) (*conn, error) {
	select {
	case <-p.closing:
		return nil, errClosed
	default:
	}
	select {
	case <-p.free:
	case <-p.closing:
		return nil, errClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a free SMTP connection: %w", context.Cause(ctx))
	}
	return p.pop(), nil
}

// pop takes the top of the stack; the caller holds a token, so there is one.
func (p *pool) pop() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	return c
}

// put returns a borrowed connection: on top if its session is open, else at the bottom.
func (p *pool) put(c *conn) {
	p.mu.Lock()
	if c.session != nil {
		p.stack = append(p.stack, c)
	} else {
		p.stack = append([]*conn{c}, p.stack...)
	}
	p.mu.Unlock()
	p.free <- struct{}{}
}

// close says goodbye (QUIT) on every connection once it is returned, until ctx
// ends. Only the first call does anything.
func (p *pool) close(ctx context.Context) error {
	first := false
	p.once.Do(func() { close(p.closing); first = true })
	if !first {
		return nil
	}
	for range cap(p.free) {
		select {
		case <-p.free:
		case <-ctx.Done():
			return fmt.Errorf("email: close: connections still busy: %w", ctx.Err())
		}
		p.pop().quit(ctx)
	}
	return nil
}

// conn is one pooled connection. go-mail's Client opens its sessions (dial, TLS,
// EHLO, AUTH); the transactions are ours (see send). Only the Send that borrowed it
// touches session; mu guards what the context watcher shares with it.
type conn struct {
	client   *mail.Client
	dialer   net.Dialer
	tls      *tls.Config   // non-nil for implicit TLS: the handshake is ours, see dial
	backstop time.Duration // the I/O deadline of a dial and of each transaction
	// session is open and ended its last transaction cleanly: it may carry the next
	// one. nil when there is none.
	session *smtp.Client

	mu    sync.Mutex
	raw   net.Conn // the TCP connection under any TLS, nil before the first dial
	watch uint64   // the current watch; a late watcher of an earlier one does nothing
	cut   bool     // the current watch's context ended and closed raw
}

func newConn(cfg *Config) (*conn, error) {
	// A backstop: the Send's context cuts the connection first (see guard).
	c := &conn{backstop: cfg.Timeout + 5*time.Second}
	tlsConfig := clientTLS(cfg)
	opts := []mail.Option{
		mail.WithPort(cfg.Server.Port),
		mail.WithTimeout(c.backstop),
		mail.WithDialContextFunc(c.dial),
		mail.WithTLSConfig(tlsConfig),
	}
	switch cfg.Server.TLS {
	case StartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case ImplicitTLS:
		c.tls = tlsConfig
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS)) // TLS already, no STARTTLS on top
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if cfg.HELO != "" {
		opts = append(opts, mail.WithHELO(cfg.HELO))
	}
	if cfg.Server.Username != "" {
		// The server's strongest offer. PLAIN and LOGIN refuse to send the password
		// over a connection without TLS unless the server is the loopback.
		opts = append(opts,
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1,
				mail.SMTPAuthPlain, mail.SMTPAuthLogin, mail.SMTPAuthCramMD5),
			mail.WithUsername(cfg.Server.Username),
			mail.WithPassword(cfg.Server.Password))
	}
	client, err := mail.NewClient(cfg.Server.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("email: SMTP client: %w", err)
	}
	c.client = client
	return c, nil
}

func clientTLS(cfg *Config) *tls.Config {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		t = cfg.TLSConfig.Clone()
	}
	if t.ServerName == "" {
		t.ServerName = cfg.Server.Host
	}
	return t
}

// dial is the client's DialContextFunc. It keeps the TCP connection so a watcher can
// cut it, and does the implicit-TLS handshake itself: go-mail skips its own TLS dialer
// when given a dial function.
func (c *conn) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	raw, err := c.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.raw = raw
	cut := c.cut
	c.mu.Unlock()
	if cut { // the Send's context ended while the TCP handshake finished
		_ = raw.Close()
		return nil, errCut
	}
	if c.tls == nil {
		return raw, nil
	}
	tc := tls.Client(raw, c.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, err
	}
	return tc, nil
}

// guard cuts the connection when ctx ends before done is called, so a Send blocked on
// a silent server returns at once: go-mail's I/O only knows deadlines. done
// reports whether the cut happened, in which case the session is gone.
func (c *conn) guard(ctx context.Context) (done func() (cut bool)) {
	c.mu.Lock()
	c.watch++
	watch := c.watch
	c.cut = false
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.watch != watch {
			return // this Send is over; the connection belongs to another
		}
		c.cut = true
		if c.raw != nil {
			_ = c.raw.Close()
		}
	})
	return func() bool {
		stop()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.watch++ // a watcher that started but has not run yet now does nothing
		return c.cut
	}
}

// connect opens a session unless one is open: TCP, TLS, EHLO, AUTH, all go-mail's.
func (c *conn) connect(ctx context.Context) (dialled bool, err error) {
	if c.session != nil {
		return false, nil
	}
	session, err := c.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		c.drop() // a failed EHLO or AUTH leaves the connection open
		return true, err
	}
	c.session = session
	return true, nil
}

// drop abandons the session without a word: it is broken or in an unknown state.
func (c *conn) drop() {
	c.session = nil
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.raw != nil {
		_ = c.raw.Close()
		c.raw = nil
	}
}

// quit ends an open session politely. A failed QUIT (the server already closed an
// idle session) changes nothing: the connection is closed either way.
func (c *conn) quit(ctx context.Context) {
	if c.session == nil {
		return
	}
	done := c.guard(ctx)
	// The deadline of the last transaction may have passed while the session idled.
	if c.session.UpdateDeadline(c.backstop) == nil {
		_ = c.client.CloseWithSMTPClient(c.session)
	}
	done()
	c.drop()
}

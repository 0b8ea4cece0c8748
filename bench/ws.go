package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sync/errgroup"
)

// fleetSpec says how to open a fleet of websocket clients.
type fleetSpec struct {
	n        int
	url      func(i int) string // the websocket URL of client i
	locals   []net.IP           // source addresses, used in turn (nil: the kernel picks)
	parallel int                // dials at a time
	hello    bool               // wait for the hello frame before a client counts as connected
	// stalled picks clients that never read after their hello: slow clients, whose
	// socket buffers fill up (nil: none).
	stalled func(i int) bool
	// onFrame gets every frame after the hello, from the client's reader goroutine;
	// data is only valid during the call.
	onFrame func(i int, data []byte)
	// onClose is told when a client's connection ends while the fleet is open, with
	// the close status (-1 when the connection broke without a close frame).
	onClose func(i int, status websocket.StatusCode)
}

// fleet is a set of websocket clients (wsConn), each with a goroutine reading its
// frames.
type fleet struct {
	conns   []*wsConn
	readers sync.WaitGroup
	closing atomic.Bool
}

// dialFleet opens spec.n clients, spec.parallel at a time, and returns once every one
// is connected (and has its hello, with spec.hello); connect holds the time from
// each dial to that moment.
func dialFleet(ctx context.Context, spec fleetSpec) (*fleet, *Recorder, error) {
	f := &fleet{conns: make([]*wsConn, spec.n)}
	dials := dialers(spec.locals)
	connect := &Recorder{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(spec.parallel, 1))
	for i := range spec.n {
		g.Go(func() error {
			start := time.Now()
			dctx, dcancel := context.WithTimeout(gctx, 30*time.Second)
			c, err := dialWS(dctx, dials[i%len(dials)], spec.url(i))
			dcancel()
			if err != nil {
				return fmt.Errorf("client %d: %w", i, err)
			}
			if spec.hello {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, data, err := c.ReadMessage()
				_ = c.SetReadDeadline(time.Time{})
				if err != nil {
					c.CloseNow()
					return fmt.Errorf("client %d: hello: %w", i, err)
				}
				var hello struct{ Kind string }
				if json.Unmarshal(data, &hello) != nil || hello.Kind != "hello" {
					c.CloseNow()
					return fmt.Errorf("client %d: first frame is not a hello: %.100s", i, data)
				}
			}
			connect.Add(time.Since(start))
			f.conns[i] = c
			if spec.stalled == nil || !spec.stalled(i) {
				f.readers.Go(func() { f.read(i, c, spec) })
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		f.close()
		return nil, nil, err
	}
	return f, connect, nil
}

// read hands every message of c to spec.onFrame until the connection ends. No read
// deadline: close ends every read by closing the connections.
func (f *fleet) read(i int, c *wsConn, spec fleetSpec) {
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			if spec.onClose != nil && !f.closing.Load() {
				spec.onClose(i, wsCloseStatus(err))
			}
			return
		}
		if spec.onFrame != nil {
			spec.onFrame(i, data)
		}
	}
}

// close drops every client at once (no close handshake: thousands of handshakes
// would measure the close, not the scenario) and waits for the readers.
func (f *fleet) close() {
	f.closing.Store(true)
	for _, c := range f.conns {
		if c != nil {
			c.CloseNow()
		}
	}
	f.readers.Wait()
}

// dialers returns one dial function per source address (one with the kernel's
// choice when there is none), so a fleet spreads over several loopback addresses and
// is not bounded by one address's ephemeral ports.
func dialers(locals []net.IP) []dialFunc {
	if len(locals) == 0 {
		locals = []net.IP{nil}
	}
	out := make([]dialFunc, len(locals))
	for i, ip := range locals {
		d := &net.Dialer{Timeout: 30 * time.Second}
		if ip != nil {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
		out[i] = lingerless(d)
	}
	return out
}

// lingerless dials with d and makes closing the connection reset it: a harness that
// opens tens of thousands of connections run after run must not leave each in
// TIME_WAIT for a minute, holding the ephemeral ports the next run needs.
func lingerless(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		return c, err
	}
}

// loopbacks returns n source addresses 127.0.0.2, 127.0.0.3, ... (skipping the .0
// and .255 of every /24): Linux routes all of 127.0.0.0/8 to the loopback
// interface, and each address has its own ephemeral ports.
func loopbacks(n int) []net.IP {
	out := make([]net.IP, 0, n)
	for i := 2; len(out) < n; i++ {
		if b := byte(i % 256); b != 0 && b != 255 {
			out = append(out, net.IPv4(127, byte(i/65536%256), byte(i/256%256), b))
		}
	}
	return out
}

package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/channels/relay"
	"github.com/kommo-notify/notify/events/natstest"
	"github.com/kommo-notify/notify/events/token"
)

const wsTestWait = 10 * time.Second

// pattern is n bytes that differ from message to message (seed) and along the message.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i*7+seed)%26)
	}
	return b
}

func wsTestURL(s *httptest.Server) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + "/ws?x=1"
}

func dialTest(t *testing.T, url string) *wsConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wsTestWait)
	defer cancel()
	c, err := dialWS(ctx, dialers(nil)[0], url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	_ = c.SetReadDeadline(time.Now().Add(wsTestWait))
	return c
}

// TestWSClientAgainstLibrary has coder/websocket's server side (the library the hub's
// and the bare relay's handshakes use) send messages of every length encoding, a
// binary one, fragmented ones with a ping between their fragments, pings that must be
// answered with their payload, and a close with a code that must be answered.
func TestWSClientAgainstLibrary(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 1000, 2047, 2048, 2049, 65535, 65536, 300_000, wsReadLimit}
	fragments := [][]int{{10, 200, 70_000}, {0, 0, 5}, {125, 126}, {3000, 3000, 3000}}
	serverErr := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serverErr <- func() error {
			if r.URL.RequestURI() != "/ws?x=1" {
				return fmt.Errorf("request URI %q", r.URL.RequestURI())
			}
			if r.Header.Get("Origin") != "" {
				return fmt.Errorf("an Origin header %q", r.Header.Get("Origin"))
			}
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
			if err != nil {
				return err
			}
			defer c.CloseNow()
			ctx := c.CloseRead(context.Background()) // handles the client's pongs and close
			ctx, cancel := context.WithTimeout(ctx, wsTestWait)
			defer cancel()
			for k, n := range sizes {
				if err := c.Write(ctx, websocket.MessageText, pattern(k, n)); err != nil {
					return fmt.Errorf("message of %d bytes: %w", n, err)
				}
			}
			if err := c.Ping(ctx); err != nil {
				return fmt.Errorf("ping between messages: %w", err)
			}
			if err := c.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2, 255}); err != nil {
				return err
			}
			for k, parts := range fragments {
				mw, err := c.Writer(ctx, websocket.MessageText)
				if err != nil {
					return err
				}
				for j, n := range parts {
					if _, err := mw.Write(pattern(100*k+j, n)); err != nil {
						return err
					}
					if j == 0 {
						if err := c.Ping(ctx); err != nil {
							return fmt.Errorf("ping inside a fragmented message: %w", err)
						}
					}
				}
				if err := mw.Close(); err != nil {
					return err
				}
			}
			// Close returns nil only once the client has answered with its own close.
			if err := c.Close(4000, "bye now"); err != nil {
				return fmt.Errorf("close handshake: %w", err)
			}
			return nil
		}()
	}))
	t.Cleanup(srv.Close)

	c := dialTest(t, wsTestURL(srv))
	for k, n := range sizes {
		op, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("message of %d bytes: %v", n, err)
		}
		if op != wsText || !bytes.Equal(data, pattern(k, n)) {
			t.Fatalf("message of %d bytes: op %d, %d bytes, not the ones sent", n, op, len(data))
		}
	}
	if op, data, err := c.ReadMessage(); err != nil || op != wsBinary || !bytes.Equal(data, []byte{0, 1, 2, 255}) {
		t.Fatalf("binary message: op %d, %v, %v", op, data, err)
	}
	for k, parts := range fragments {
		var want []byte
		for j, n := range parts {
			want = append(want, pattern(100*k+j, n)...)
		}
		op, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("fragmented message %v: %v", parts, err)
		}
		if op != wsText || !bytes.Equal(data, want) {
			t.Fatalf("fragmented message %v: op %d, %d bytes, not the %d sent", parts, op, len(data), len(want))
		}
	}
	_, _, err := c.ReadMessage()
	var ce *wsCloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye now" || wsCloseStatus(err) != 4000 {
		t.Fatalf("after the close: %v", err)
	}
	select {
	case err := <-serverErr:
		if err != nil {
			t.Fatal("server:", err)
		}
	case <-time.After(wsTestWait):
		t.Fatal("the server did not finish")
	}
}

// rawServer upgrades by hand, checking the client's request, then runs script on the
// connection: frames exactly as a test wants them, valid or not.
func rawServer(t *testing.T, script func(conn net.Conn, br *bufio.Reader) error) (*httptest.Server, <-chan error) {
	t.Helper()
	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done <- func() error {
			key := r.Header.Get("Sec-WebSocket-Key")
			switch {
			case r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") ||
				!headerHasToken(r.Header, "Connection", "upgrade") || r.Header.Get("Sec-WebSocket-Version") != "13":
				return fmt.Errorf("not an upgrade: %s %v", r.Method, r.Header)
			case len(key) != 24:
				return fmt.Errorf("Sec-WebSocket-Key %q is not 16 bytes in base64", key)
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return err
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(wsTestWait))
			_, err = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+wsAccept(key)+"\r\n\r\n")
			if err != nil {
				return err
			}
			return script(conn, brw.Reader)
		}()
	}))
	t.Cleanup(srv.Close)
	return srv, done
}

// serverFrame is one unmasked frame; ext forces the length's encoding (0, 126, 127).
func serverFrame(b0 byte, ext int, payload []byte) []byte {
	n := len(payload)
	var f []byte
	switch {
	case ext == 127 || (ext == 0 && n > 0xffff):
		f = binary.BigEndian.AppendUint64([]byte{b0, 127}, uint64(n))
	case ext == 126 || (ext == 0 && n > 125):
		f = binary.BigEndian.AppendUint16([]byte{b0, 126}, uint16(n))
	default:
		f = []byte{b0, byte(n)}
	}
	return append(f, payload...)
}

// clientFrame reads one frame of the client, which must be final, masked and short.
func clientFrame(br *bufio.Reader) (op byte, payload []byte, err error) {
	var h [6]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0xf0 != 0x80 || h[1]&0x80 == 0 || h[1]&0x7f > 125 {
		return 0, nil, fmt.Errorf("client frame header %#x %#x: not final, masked and short", h[0], h[1])
	}
	payload = make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(br, payload); err != nil {
		return 0, nil, err
	}
	for i := range payload {
		payload[i] ^= h[2+i&3]
	}
	return h[0] & 0x0f, payload, nil
}

func expectClientFrame(br *bufio.Reader, op byte, payload []byte) error {
	gop, got, err := clientFrame(br)
	if err != nil {
		return err
	}
	if gop != op || !bytes.Equal(got, payload) {
		return fmt.Errorf("client sent op %#x %q, want op %#x %q", gop, got, op, payload)
	}
	return nil
}

func TestWSClientFrames(t *testing.T) {
	big := pattern(7, 70_000)
	tests := []struct {
		name   string
		script func(conn net.Conn, br *bufio.Reader) error
		want   [][]byte // the messages the client reads
		code   websocket.StatusCode
		err    string // what the error after the messages says, when it is not a close
	}{{
		name: "frames in the 101's segment, non-minimal lengths",
		script: func(conn net.Conn, br *bufio.Reader) error {
			var out []byte
			out = append(out, serverFrame(0x81, 0, []byte(`{"kind":"hello"}`))...)
			out = append(out, serverFrame(0x81, 126, []byte("short in 16 bits"))...)
			out = append(out, serverFrame(0x81, 127, []byte("short in 64 bits"))...)
			out = append(out, serverFrame(0x81, 0, big)...)
			out = append(out, serverFrame(0x88, 0, binary.BigEndian.AppendUint16(nil, 1001))...)
			if _, err := conn.Write(out); err != nil {
				return err
			}
			return expectClientFrame(br, wsClose, binary.BigEndian.AppendUint16(nil, 1001))
		},
		want: [][]byte{[]byte(`{"kind":"hello"}`), []byte("short in 16 bits"), []byte("short in 64 bits"), big},
		code: websocket.StatusGoingAway,
	}, {
		name: "pings answered with their payload, also between fragments; pongs skipped",
		script: func(conn net.Conn, br *bufio.Reader) error {
			steps := []struct {
				frame []byte
				pong  []byte
			}{
				{serverFrame(0x89, 0, nil), []byte{}},
				{serverFrame(0x01, 0, []byte("one ")), nil},
				{serverFrame(0x89, 0, []byte("mid")), []byte("mid")},
				{serverFrame(0x8a, 0, []byte("unasked pong")), nil},
				{serverFrame(0x00, 0, []byte("two ")), nil},
				{serverFrame(0x89, 0, pattern(1, 125)), pattern(1, 125)},
				{serverFrame(0x80, 0, []byte("three")), nil},
			}
			for _, s := range steps {
				if _, err := conn.Write(s.frame); err != nil {
					return err
				}
				if s.pong != nil {
					if err := expectClientFrame(br, wsPong, s.pong); err != nil {
						return err
					}
				}
			}
			_, err := conn.Write(serverFrame(0x88, 0, append(binary.BigEndian.AppendUint16(nil, 4321), "why"...)))
			if err == nil {
				err = expectClientFrame(br, wsClose, binary.BigEndian.AppendUint16(nil, 4321))
			}
			return err
		},
		want: [][]byte{[]byte("one two three")},
		code: 4321,
	}, {
		name: "a close without a status is answered without one",
		script: func(conn net.Conn, br *bufio.Reader) error {
			if _, err := conn.Write(append(serverFrame(0x81, 0, []byte("x")), serverFrame(0x88, 0, nil)...)); err != nil {
				return err
			}
			return expectClientFrame(br, wsClose, []byte{})
		},
		want: [][]byte{[]byte("x")},
		code: websocket.StatusNoStatusRcvd,
	}, {
		name: "a connection cut without a close",
		script: func(conn net.Conn, _ *bufio.Reader) error {
			_, err := conn.Write(append(serverFrame(0x81, 0, []byte("x")), 0x81, 10, 'p', 'a', 'r'))
			return err
		},
		want: [][]byte{[]byte("x")},
		code: -1,
		err:  "EOF",
	}, {
		name:   "a masked server frame",
		script: writeRaw([]byte{0x81, 0x81, 1, 2, 3, 4, 'x' ^ 1}),
		code:   -1,
		err:    "protocol violation",
	}, {
		name:   "an extension bit",
		script: writeRaw(serverFrame(0xc1, 0, []byte("x"))),
		code:   -1,
		err:    "protocol violation",
	}, {
		name:   "a continuation without a message",
		script: writeRaw(serverFrame(0x80, 0, []byte("x"))),
		code:   -1,
		err:    "continuation without a message",
	}, {
		name:   "a message inside a fragmented one",
		script: writeRaw(append(serverFrame(0x01, 0, []byte("x")), serverFrame(0x81, 0, []byte("y"))...)),
		code:   -1,
		err:    "new message inside",
	}, {
		name:   "a fragmented ping",
		script: writeRaw(serverFrame(0x09, 0, []byte("x"))),
		code:   -1,
		err:    "control frame",
	}, {
		name:   "a long ping",
		script: writeRaw(serverFrame(0x89, 126, pattern(0, 126))),
		code:   -1,
		err:    "control frame",
	}, {
		name:   "an unknown opcode",
		script: writeRaw(serverFrame(0x83, 0, []byte("x"))),
		code:   -1,
		err:    "opcode",
	}, {
		name:   "a message over the read limit",
		script: writeRaw(append(serverFrame(0x01, 0, make([]byte, wsReadLimit)), 0x80, 127, 0, 0, 0, 0, 0, 0, 0, 1)),
		code:   -1,
		err:    "message over",
	}, {
		name:   "a length of 2^63",
		script: writeRaw([]byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}),
		code:   -1,
		err:    "message over",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, done := rawServer(t, tt.script)
			c := dialTest(t, wsTestURL(srv))
			for i, want := range tt.want {
				op, data, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if op != wsText || !bytes.Equal(data, want) {
					t.Fatalf("message %d: op %d %.40q, want %.40q", i, op, data, want)
				}
			}
			_, data, err := c.ReadMessage()
			if err == nil {
				t.Fatalf("a message %.40q, want the end", data)
			}
			if got := wsCloseStatus(err); got != tt.code {
				t.Errorf("close status %d (%v), want %d", got, err, tt.code)
			}
			if tt.err != "" && !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %q, want %q in it", err, tt.err)
			}
			_ = c.CloseNow()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal("server:", err)
				}
			case <-time.After(wsTestWait):
				t.Fatal("the server did not finish")
			}
		})
	}
}

func writeRaw(b []byte) func(net.Conn, *bufio.Reader) error {
	return func(conn net.Conn, _ *bufio.Reader) error {
		_, err := conn.Write(b)
		return err
	}
}

func TestWSClientHandshake(t *testing.T) {
	answer := func(resp string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, strings.ReplaceAll(resp, "ACCEPT", wsAccept(r.Header.Get("Sec-WebSocket-Key"))))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	tests := []struct {
		name, resp, err string
	}{
		{"refused", "HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nno token, no", "401 Unauthorized: no token, no"},
		{"wrong accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n", "Sec-WebSocket-Accept"},
		{"no upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ACCEPT\r\n\r\n", "Upgrade"},
		{"no connection upgrade", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Accept: ACCEPT\r\n\r\n", "Connection"},
		{"an extension", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ACCEPT\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", "extensions"},
		{"cut", "HTTP/1.1 101 Switch", "upgrade answer"},
		{"accepted", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: ACCEPT\r\n\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := answer(tt.resp)
			c, err := dialWS(t.Context(), dialers(nil)[0], wsTestURL(srv))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				_ = c.CloseNow()
				return
			}
			if err == nil {
				_ = c.CloseNow()
				t.Fatal("dialled")
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %q, want %q in it", err, tt.err)
			}
		})
	}

	t.Run("context ends the handshake", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		accepted := make(chan net.Conn, 1)
		go func() {
			if c, err := l.Accept(); err == nil {
				accepted <- c // never answers
			}
		}()
		ctx, cancel := context.WithCancel(t.Context())
		res := make(chan error, 1)
		go func() {
			_, err := dialWS(ctx, dialers(nil)[0], "ws://"+l.Addr().String()+"/ws")
			res <- err
		}()
		select {
		case c := <-accepted:
			t.Cleanup(func() { _ = c.Close() })
		case <-time.After(wsTestWait):
			t.Fatal("no dial")
		}
		cancel()
		select {
		case err := <-res:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
		case <-time.After(wsTestWait):
			t.Fatal("the handshake did not end with its context")
		}
	})
	if _, err := dialWS(t.Context(), dialers(nil)[0], "wss://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), "only ws://") {
		t.Errorf("wss: %v", err)
	}
}

// TestFleetAgainstHub runs a fleet against the real hub: hellos, frames to every
// client, pings answered by the reading clients (only the stalled one is dropped for
// its pong), and the hub's close on shutdown reported with its status.
func TestFleetAgainstHub(t *testing.T) {
	ns := natstest.Start(t)
	signer, err := token.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	hub, err := relay.NewHub(relay.HubConfig{Conn: ns.Conn(t), Tokens: signer, Registerer: reg,
		PingInterval: 20 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hctx, stopHub := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); _ = hub.Run(hctx) }()
	t.Cleanup(func() { stopHub(); <-hubDone })
	srv := httptest.NewServer(hub)
	t.Cleanup(srv.Close)

	const n = 8
	const stalled = 3
	tokens := make([]string, n)
	for i := range tokens {
		if tokens[i], err = signer.Mint("acc", userName(i), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	type frame struct {
		i  int
		id string
	}
	frames := make(chan frame, 100)
	var mu sync.Mutex
	closes := map[int]websocket.StatusCode{}
	var closed atomic.Int64
	allClosed := make(chan struct{})
	f, connect, err := dialFleet(t.Context(), fleetSpec{
		n:        n,
		url:      func(i int) string { return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws?token=" + tokens[i] },
		locals:   loopbacks(2),
		parallel: 4,
		hello:    true,
		stalled:  func(i int) bool { return i == stalled },
		onFrame: func(i int, data []byte) {
			if _, id, err := frameID(data); err == nil {
				frames <- frame{i, id}
			}
		},
		onClose: func(i int, code websocket.StatusCode) {
			mu.Lock()
			closes[i] = code
			mu.Unlock()
			if closed.Add(1) == n-1 {
				close(allClosed)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	if connect.Len() != n {
		t.Fatalf("%d connect times", connect.Len())
	}

	// The stalled client does not answer pings; the others do, so it is dropped alone.
	if err := waitFor(t.Context(), 10*time.Millisecond, wsTestWait,
		func() bool { return pingDrops(t, reg) >= 1 }, func() int64 { return 0 }); err != nil {
		t.Fatal("the stalled client was not dropped for its pong:", err)
	}
	nc := ns.Conn(t)
	if err := nc.Publish("ui.acc._all", []byte(`{"kind":"show_message","id":"b-1-1"}`)); err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for len(got) < n-1 {
		select {
		case fr := <-frames:
			if fr.id != "b-1-1" || fr.i == stalled {
				t.Fatalf("client %d got %q", fr.i, fr.id)
			}
			got[fr.i] = true
		case <-time.After(wsTestWait):
			t.Fatalf("frames reached %d clients of %d", len(got), n-1)
		}
	}
	if d := pingDrops(t, reg); d != 1 || closed.Load() != 0 {
		t.Fatalf("%v dropped for their pong, %d closed: the reading clients must answer pings", d, closed.Load())
	}

	stopHub()
	select {
	case <-allClosed:
	case <-time.After(wsTestWait):
		t.Fatalf("%d of %d clients told of the close", closed.Load(), n-1)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, code := range closes {
		if code != websocket.StatusGoingAway {
			t.Errorf("client %d: close status %d, want %d", i, code, websocket.StatusGoingAway)
		}
	}
}

func pingDrops(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "notify_ws_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == "ping_timeout" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

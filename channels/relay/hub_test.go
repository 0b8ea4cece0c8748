package relay_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/relay"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
	"github.com/kommo-notify/notify/events/token"
)

const wait = 10 * time.Second

var secret = []byte("0123456789abcdef0123456789abcdef")

// rig is a hub served over HTTP with the relay channel publishing into it.
type rig struct {
	nats   *natstest.Server
	nc     *nats.Conn
	signer *token.Signer
	relay  *relay.Relay
	hub    *relay.Hub
	http   *httptest.Server
	reg    *prometheus.Registry
	stop   context.CancelFunc
	done   chan struct{}
}

func newRig(t *testing.T, adjust func(*relay.HubConfig)) *rig {
	t.Helper()
	r := &rig{nats: natstest.Start(t), reg: prometheus.NewRegistry(), done: make(chan struct{})}
	r.nc = r.nats.Conn(t)
	var err error
	if r.signer, err = token.NewSigner(secret); err != nil {
		t.Fatal(err)
	}
	cfg := relay.HubConfig{Conn: r.nats.Conn(t), Tokens: r.signer, Registerer: r.reg}
	if adjust != nil {
		adjust(&cfg)
	}
	if r.hub, err = relay.NewHub(cfg); err != nil {
		t.Fatal(err)
	}
	if r.relay, err = relay.New(relay.Config{Conn: r.nc}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { defer close(r.done); _ = r.hub.Run(ctx) }()
	r.http = httptest.NewServer(r.hub)
	t.Cleanup(func() { r.shutdown(); r.http.Close() })
	return r
}

func (r *rig) shutdown() {
	r.stop()
	<-r.done
}

func (r *rig) token(t *testing.T, account, user string) string {
	t.Helper()
	tok, err := r.signer.Mint(account, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (r *rig) url(tok string) string {
	return "ws" + strings.TrimPrefix(r.http.URL, "http") + "/?token=" + tok
}

// tab is one browser tab: a websocket that has read its hello.
type tab struct {
	ws     *websocket.Conn
	hello  relay.HelloFrame
	frames chan []byte
	closed chan error // the error that ended reading: a close status, or another failure
}

// open connects as account/user and reads the hello; reading then goes on in the
// background into frames.
func (r *rig) open(t *testing.T, account, user string) *tab {
	t.Helper()
	return r.openWith(t, r.token(t, account, user), nil)
}

func (r *rig) openWith(t *testing.T, tok string, header http.Header, opts ...*websocket.DialOptions) *tab {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	o := &websocket.DialOptions{}
	if len(opts) > 0 {
		o = opts[0]
	}
	o.HTTPHeader = header
	ws, resp, err := websocket.Dial(ctx, r.url(tok), o)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (status %d)", err, status)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	c := &tab{ws: ws, frames: make(chan []byte, 1024), closed: make(chan error, 1)}
	_, data, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read hello: %v", err)
	}
	if err := json.Unmarshal(data, &c.hello); err != nil || c.hello.Kind != "hello" {
		t.Fatalf("first frame %s is not a hello", data)
	}
	go func() {
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				c.closed <- err
				return
			}
			c.frames <- data
		}
	}()
	return c
}

// next returns the next frame, failing after wait.
func (c *tab) next(t *testing.T) relay.PopupFrame {
	t.Helper()
	select {
	case data := <-c.frames:
		var f relay.PopupFrame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %s: %v", data, err)
		}
		return f
	case err := <-c.closed:
		t.Fatalf("connection ended: %v", err)
	case <-time.After(wait):
		t.Fatal("no frame")
	}
	return relay.PopupFrame{}
}

// send routes ev to user through the relay channel, as the router does.
func (r *rig) send(t *testing.T, account, user, id string) {
	t.Helper()
	ev := &events.Event{ID: id, Address: events.Address{Account: account, User: user, Type: events.ShowMessage},
		Body: []byte(`{"header":"h","text":"` + id + `","date":1714566795}`)}
	if err := r.relay.Send(t.Context(), &channels.Delivery{Event: ev, User: user, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
}

// barrier proves that everything sent to a tab before it has been delivered or never
// will be: it sends a marker to the tab's user and waits for it, collecting what came first.
func (r *rig) barrier(t *testing.T, c *tab) []string {
	t.Helper()
	marker := "barrier-" + time.Now().Format("150405.000000000")
	r.send(t, c.hello.Account, c.hello.User, marker)
	var before []string
	for {
		f := c.next(t)
		if f.ID == marker {
			return before
		}
		before = append(before, f.ID)
	}
}

func TestHelloAndEveryTabOfTheUser(t *testing.T) {
	r := newRig(t, nil)
	tabs := []*tab{r.open(t, "acme", "42"), r.open(t, "acme", "42"), r.open(t, "acme", "42")}
	if h := tabs[0].hello; h.Account != "acme" || h.User != "42" || h.Unread != 0 || h.Seq != 0 {
		t.Errorf("hello %+v", h)
	}
	other := r.open(t, "acme", "43")
	sameIDOtherAccount := r.open(t, "globex", "42")

	// Sent right after the hellos: the subscription was in place before each hello.
	r.send(t, "acme", "42", "e1")
	for i, c := range tabs {
		if f := c.next(t); f.ID != "e1" || f.Kind != "popup" || f.Type != events.ShowMessage {
			t.Errorf("tab %d got %+v", i, f)
		}
	}
	for name, c := range map[string]*tab{"acme/43": other, "globex/42": sameIDOtherAccount} {
		if got := r.barrier(t, c); len(got) != 0 {
			t.Errorf("%s received %v", name, got)
		}
	}
	if got := metricValue(t, r.reg, "notify_ws_connections", nil); got != 5 {
		t.Errorf("notify_ws_connections = %v, want 5", got)
	}
}

func TestAllReachesEveryConnectedUserOfTheAccountOnly(t *testing.T) {
	r := newRig(t, nil)
	a42, a43, g42 := r.open(t, "acme", "42"), r.open(t, "acme", "43"), r.open(t, "globex", "42")
	r.send(t, "acme", events.AllUsers, "all-1")
	for name, c := range map[string]*tab{"acme/42": a42, "acme/43": a43} {
		if f := c.next(t); f.ID != "all-1" {
			t.Errorf("%s got %+v", name, f)
		}
	}
	if got := r.barrier(t, g42); len(got) != 0 {
		t.Errorf("globex/42 received %v", got)
	}
}

func TestRefusedConnections(t *testing.T) {
	r := newRig(t, func(c *relay.HubConfig) { c.AllowedOrigins = []string{"crm.example.com", "*.kommo.test:8443"} })
	forger, _ := token.NewSigner([]byte("another secret, another secret!!"))
	forged, _ := forger.Mint("acme", "42", time.Hour)
	expired := expiredToken(t)
	good := r.token(t, "acme", "42")
	cases := []struct {
		name   string
		token  string
		origin string
		status int
	}{
		{"no token", "", "", http.StatusUnauthorized},
		{"garbage token", "abc.def.ghi", "", http.StatusUnauthorized},
		{"forged token", forged, "", http.StatusUnauthorized},
		{"expired token", expired, "", http.StatusUnauthorized},
		{"alg none", noneToken("acme", "42"), "", http.StatusUnauthorized},
		{"foreign origin", good, "https://evil.example", http.StatusForbidden},
		{"lookalike origin", good, "https://crm.example.com.evil.example", http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			ws, resp, err := websocket.Dial(ctx, r.url(tc.token), &websocket.DialOptions{HTTPHeader: h})
			if err == nil {
				ws.CloseNow()
				t.Fatal("connected")
			}
			if resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("response %v, want status %d (%v)", resp, tc.status, err)
			}
		})
	}
	for _, origin := range []string{"https://crm.example.com", "https://eu.kommo.test:8443", r.http.URL} {
		t.Run("allowed "+origin, func(t *testing.T) {
			r.openWith(t, good, http.Header{"Origin": {origin}})
		})
	}
}

func TestSlowClientIsDroppedOthersKeepReceiving(t *testing.T) {
	r := newRig(t, func(c *relay.HubConfig) { c.QueueSize = 4 })
	fast := r.open(t, "acme", "42")
	slow := r.openRaw(t, "acme", "42") // never reads past its hello

	big := strings.Repeat("x", 256<<10)
	frame, _ := json.Marshal(relay.PopupFrame{Kind: "popup", Type: events.ShowMessage, ID: "big", Payload: json.RawMessage(`"` + big + `"`)})
	dropped := func() float64 {
		return metricValue(t, r.reg, "notify_ws_dropped_total", map[string]string{"reason": "slow"})
	}
	received := 0
	for i := 0; dropped() == 0; i++ {
		if i == 2000 {
			t.Fatal("the slow client was never dropped")
		}
		if err := r.nc.Publish(channels.UISubject("acme", "42"), frame); err != nil {
			t.Fatal(err)
		}
		fast.next(t) // the fast tab keeps up, frame by frame
		received++
	}
	// The slow client sees the policy-violation close once it reads.
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for {
		_, _, err := slow.Read(ctx)
		if err == nil {
			continue
		}
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Fatalf("slow client ended with %v, want a policy-violation close", err)
		}
		break
	}
	r.send(t, "acme", "42", "after")
	if f := fast.next(t); f.ID != "after" {
		t.Errorf("fast tab got %+v after the drop", f)
	}
	t.Logf("fast tab received %d large frames while the slow one fell behind", received)
}

func TestExpiringTokenClosesTheConnection(t *testing.T) {
	r := newRig(t, nil)
	tok, err := r.signer.Mint("acme", "42", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := r.openWith(t, tok, nil)
	select {
	case err := <-c.closed:
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "token expired" {
			t.Errorf("closed with %v", err)
		}
	case <-time.After(wait):
		t.Fatal("not closed after the token expired")
	}
}

func TestShutdownSaysGoingAway(t *testing.T) {
	r := newRig(t, nil)
	c := r.open(t, "acme", "42")
	r.shutdown()
	select {
	case err := <-c.closed:
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Errorf("closed with %v", err)
		}
	case <-time.After(wait):
		t.Fatal("not closed on shutdown")
	}
	if got := metricValue(t, r.reg, "notify_ws_connections", nil); got != 0 {
		t.Errorf("notify_ws_connections = %v after shutdown", got)
	}
}

// openRaw connects and reads the hello, then leaves reading to the test.
func (r *rig) openRaw(t *testing.T, account, user string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, r.url(r.token(t, account, user)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}
	return ws
}

func expiredToken(t *testing.T) string {
	t.Helper()
	// Minted by hand: the signer refuses a non-positive ttl.
	return handToken(`{"alg":"HS256","typ":"JWT"}`, `{"acc":"acme","sub":"42","exp":1000000000}`, secret)
}

func noneToken(account, user string) string {
	exp := time.Now().Add(time.Hour).Unix()
	return handToken(`{"alg":"none","typ":"JWT"}`, `{"acc":"`+account+`","sub":"`+user+`","exp":`+itoa(exp)+`}`, nil)
}

// metricValue reads one series from the registry: the one whose labels include labels.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == k && l.GetValue() == v)
				}
				if !found {
					continue series
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// handToken signs a token by hand, so tests can make what the signer refuses to.
func handToken(header, payload string, key []byte) string {
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	if key == nil {
		return unsigned + "."
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestTabsLeavingInAnyOrder closes tabs from the middle, the end and the start of their
// groups: the others keep receiving their user's frames and the account's broadcasts.
func TestTabsLeavingInAnyOrder(t *testing.T) {
	r := newRig(t, nil)
	a := []*tab{r.open(t, "acme", "42"), r.open(t, "acme", "42"), r.open(t, "acme", "42"), r.open(t, "acme", "42")}
	b := []*tab{r.open(t, "acme", "43"), r.open(t, "acme", "43")}
	open := 6
	for _, gone := range []*tab{a[1], a[3], b[0], a[0]} {
		gone.ws.CloseNow()
		open--
		waitFor(t, func() bool { return metricValue(t, r.reg, "notify_ws_connections", nil) == float64(open) })
	}
	r.send(t, "acme", "42", "to-42")
	if f := a[2].next(t); f.ID != "to-42" {
		t.Errorf("the last tab of 42 got %+v", f)
	}
	r.send(t, "acme", events.AllUsers, "to-all")
	for _, c := range []*tab{a[2], b[1]} {
		if f := c.next(t); f.ID != "to-all" {
			t.Errorf("%s got %+v", c.hello.User, f)
		}
	}
	if got := r.barrier(t, b[1]); len(got) != 0 {
		t.Errorf("43 received %v", got)
	}
}

// waitFor polls cond until it holds, failing after wait.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClientThatCannotTakeItsFramesIsDropped: a client that stops reading while its
// queue still has room is dropped once a batch is not written within the write timeout.
func TestClientThatCannotTakeItsFramesIsDropped(t *testing.T) {
	r := newRig(t, func(c *relay.HubConfig) { c.WriteTimeout = 200 * time.Millisecond })
	r.openRaw(t, "acme", "42") // never reads past its hello
	frame, _ := json.Marshal(relay.PopupFrame{Kind: "popup", Type: events.ShowMessage, ID: "big",
		Payload: json.RawMessage(`"` + strings.Repeat("x", 256<<10) + `"`)})
	dropped := func() float64 {
		return metricValue(t, r.reg, "notify_ws_dropped_total", map[string]string{"reason": "write_error"})
	}
	// 200 frames of 256 KiB fill any loopback socket buffer and stay below the queue's bound.
	for range 200 {
		if err := r.nc.Publish(channels.UISubject("acme", "42"), frame); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return dropped() == 1 })
	if slow := metricValue(t, r.reg, "notify_ws_dropped_total", map[string]string{"reason": "slow"}); slow != 0 {
		t.Errorf("dropped as slow %v times", slow)
	}
	waitFor(t, func() bool { return metricValue(t, r.reg, "notify_ws_connections", nil) == 0 })
}

// A relay with its own hub hands it its frames directly; the server, told not to echo
// them, sends them to the other dispatchers only. Every tab gets each frame once.
func TestRelayHandsItsOwnHubEachFrameOnce(t *testing.T) {
	remote := newRig(t, nil) // another dispatcher on the same NATS
	local := &rig{nats: remote.nats, nc: remote.nats.Conn(t, nats.NoEcho()), signer: remote.signer,
		reg: prometheus.NewRegistry(), done: make(chan struct{})}
	var err error
	if local.hub, err = relay.NewHub(relay.HubConfig{Conn: local.nc, Tokens: local.signer, Registerer: local.reg}); err != nil {
		t.Fatal(err)
	}
	if local.relay, err = relay.New(relay.Config{Conn: local.nc, Hub: local.hub}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	local.stop = cancel
	go func() { defer close(local.done); _ = local.hub.Run(ctx) }()
	local.http = httptest.NewServer(local.hub)
	t.Cleanup(func() { local.shutdown(); local.http.Close() })

	tabs := []*tab{local.open(t, "acme", "42"), local.open(t, "acme", "7"), remote.open(t, "acme", "42")}
	local.send(t, "acme", "42", "one")
	local.send(t, "acme", events.AllUsers, "all")
	for i, want := range [][]string{{"one", "all"}, {"all"}, {"one", "all"}} {
		for _, id := range want {
			if f := tabs[i].next(t); f.ID != id {
				t.Fatalf("tab %d: frame %q, want %q", i, f.ID, id)
			}
		}
	}
	// The remote relay's marker reaches both hubs through NATS; nothing may come first.
	remote.send(t, "acme", events.AllUsers, "marker")
	for i, c := range tabs {
		if f := c.next(t); f.ID != "marker" {
			t.Fatalf("tab %d got %q twice", i, f.ID)
		}
	}
}

func TestRelayRefusesAHubThatWouldGetFramesTwice(t *testing.T) {
	r := newRig(t, nil)
	if _, err := relay.New(relay.Config{Conn: r.nc, Hub: r.hub}); err == nil {
		t.Fatal("a relay on another connection than its hub's was accepted")
	}
	nc := r.nats.Conn(t)
	hub, err := relay.NewHub(relay.HubConfig{Conn: nc, Tokens: r.signer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := relay.New(relay.Config{Conn: nc, Hub: hub}); err == nil || !strings.Contains(err.Error(), "NoEcho") {
		t.Fatalf("a shared connection without NoEcho: %v", err)
	}
}

// TestPingsKeepTheAnsweringAndDropTheSilent: the hub's pinger pings every connection;
// a tab that reads answers and stays, one that never reads is dropped for no pong.
func TestPingsKeepTheAnsweringAndDropTheSilent(t *testing.T) {
	r := newRig(t, func(c *relay.HubConfig) { c.PingInterval, c.WriteTimeout = 50*time.Millisecond, 200*time.Millisecond })
	pings := make(chan struct{}, 100)
	alive := r.openWith(t, r.token(t, "acme", "42"), nil, &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true
		},
	})
	silent := r.openRaw(t, "acme", "43") // reads nothing: its pongs never go
	noPong := func() float64 {
		return metricValue(t, r.reg, "notify_ws_dropped_total", map[string]string{"reason": "ping_timeout"})
	}
	waitFor(t, func() bool { return noPong() == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for { // the pings, then the close
		_, _, err := silent.Read(ctx)
		if err == nil {
			continue
		}
		if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
			t.Errorf("the silent client ended with %v, want a policy-violation close", err)
		}
		break
	}
	waitFor(t, func() bool { return metricValue(t, r.reg, "notify_ws_connections", nil) == 1 })
	// Rounds later the answering tab is still served.
	for range len(pings) {
		<-pings
	}
	for range 3 {
		select {
		case <-pings:
		case <-ctx.Done():
			t.Fatal("no more pings")
		}
	}
	if got := r.barrier(t, alive); len(got) != 0 {
		t.Errorf("received %v", got)
	}
	if got := noPong(); got != 1 {
		t.Errorf("dropped for no pong %v times, want once", got)
	}
}

// TestClientCloseIsAnswered: a tab that closes gets the server's close frame back (a
// clean close handshake) and leaves the hub.
func TestClientCloseIsAnswered(t *testing.T) {
	r := newRig(t, nil)
	c := r.openRaw(t, "acme", "42")
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	waitFor(t, func() bool { return metricValue(t, r.reg, "notify_ws_connections", nil) == 0 })
}

// rawClient is a websocket client written by hand, to send what a library would not.
type rawClient struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialRaw upgrades a TCP connection by hand, sending early right after the request,
// before the server has answered, and reads the answer and the hello.
func (r *rig) dialRaw(t *testing.T, account, user string, early []byte) *rawClient {
	t.Helper()
	addr := strings.TrimPrefix(r.http.URL, "http://")
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(wait))
	req := "GET /?token=" + r.token(t, account, user) + " HTTP/1.1\r\nHost: " + addr +
		"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := conn.Write(append([]byte(req), early...)); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{conn: conn, br: bufio.NewReader(conn)}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	if op, p := c.frame(t); op != 0x1 || !strings.Contains(string(p), `"hello"`) {
		t.Fatalf("first frame %x %s, want the hello", op, p)
	}
	return c
}

// frame reads one frame from the server: unmasked, final, as the hub sends them.
func (c *rawClient) frame(t *testing.T) (op byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		t.Fatalf("frame header %x: not final or masked", h)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		io.ReadFull(c.br, x[:])
		n = int(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		io.ReadFull(c.br, x[:])
		n = int(binary.BigEndian.Uint64(x[:]))
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, payload
}

// clientFrame is a frame as a client sends it: masked (with a fixed key).
func clientFrame(first byte, payload []byte, masked bool) []byte {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b := []byte{first}
	maskBit := byte(0)
	if masked {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, maskBit|byte(n))
	case n <= 0xffff:
		b = append(b, maskBit|126, byte(n>>8), byte(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	b = append(b, key[:]...)
	for i, x := range payload {
		b = append(b, x^key[i&3])
	}
	return b
}

// TestFramesSentWithTheUpgradeAreRead: a client may send frames right behind its
// request; the bytes the HTTP server read early are the connection's first. A ping
// gets its pong, after the hello, with its payload.
func TestFramesSentWithTheUpgradeAreRead(t *testing.T) {
	r := newRig(t, nil)
	c := r.dialRaw(t, "acme", "42", clientFrame(0x89, []byte("early"), true))
	if op, p := c.frame(t); op != 0xa || string(p) != "early" {
		t.Fatalf("frame %x %q, want the pong to the early ping", op, p)
	}
	// And a fragmented request (a text frame and its continuation) is read whole:
	// a resume without a center answers "resumed".
	_, _ = c.conn.Write(append(clientFrame(0x01, []byte(`{"op":"res`), true), clientFrame(0x80, []byte(`ume","after":0}`), true)...))
	if op, p := c.frame(t); op != 0x1 || !strings.Contains(string(p), `"resumed"`) {
		t.Fatalf("frame %x %s, want the resumed frame", op, p)
	}
}

// TestProtocolViolationsCloseTheConnection: what a client must not send ends its
// connection with the close code RFC 6455 gives it.
func TestProtocolViolationsCloseTheConnection(t *testing.T) {
	cases := []struct {
		name  string
		frame []byte
		code  websocket.StatusCode
	}{
		{"unmasked", clientFrame(0x81, []byte(`{}`), false), websocket.StatusProtocolError},
		{"reserved bits", clientFrame(0xc1, []byte(`{}`), true), websocket.StatusProtocolError},
		{"unknown opcode", clientFrame(0x83, nil, true), websocket.StatusProtocolError},
		{"fragmented control", clientFrame(0x09, nil, true), websocket.StatusProtocolError},
		{"continuation alone", clientFrame(0x80, []byte("x"), true), websocket.StatusProtocolError},
		{"above the read limit", clientFrame(0x81, make([]byte, 5000), true), websocket.StatusMessageTooBig},
		{"fragments above the read limit", append(clientFrame(0x01, make([]byte, 3000), true), clientFrame(0x80, make([]byte, 3000), true)...), websocket.StatusMessageTooBig},
	}
	r := newRig(t, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := r.dialRaw(t, "acme", "42", nil)
			if _, err := c.conn.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			op, p := c.frame(t)
			if op != 0x8 || len(p) < 2 || websocket.StatusCode(binary.BigEndian.Uint16(p)) != tc.code {
				t.Fatalf("frame %x %q, want a close with %v", op, p, tc.code)
			}
			// The connection ends after the close frame (here the client never answers).
			if _, err := c.br.ReadByte(); err == nil {
				t.Fatal("more after the close frame")
			}
		})
	}
	waitFor(t, func() bool { return metricValue(t, r.reg, "notify_ws_connections", nil) == 0 })
}

// TestBackloggedFramesArriveWholeAndInOrder: frames that a full socket takes in
// pieces (a write that takes part of a frame leaves the rest to a writer goroutine)
// reach a client that reads late complete and in order.
func TestBackloggedFramesArriveWholeAndInOrder(t *testing.T) {
	r := newRig(t, func(c *relay.HubConfig) { c.QueueSize = 1024 })
	c := r.openRaw(t, "acme", "42")
	const n = 200
	big := strings.Repeat("y", 64<<10)
	for i := range n {
		frame, _ := json.Marshal(relay.PopupFrame{Kind: "popup", Type: events.ShowMessage, ID: strconv.Itoa(i), Payload: json.RawMessage(`"` + big + `"`)})
		if err := r.nc.Publish(channels.UISubject("acme", "42"), frame); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for i := range n {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var f relay.PopupFrame
		if err := json.Unmarshal(data, &f); err != nil || f.ID != strconv.Itoa(i) || len(f.Payload) != len(big)+2 {
			t.Fatalf("frame %d: id %q, %d bytes of payload, %v", i, f.ID, len(f.Payload), err)
		}
	}
}

// Frames NATS drops because the fan-out cannot take them (a slow consumer) are
// counted, and the count stays when the subscription goes with its last tab.
func TestFramesDroppedByNATSAreCounted(t *testing.T) {
	r := &rig{nats: natstest.Start(t), reg: prometheus.NewRegistry()}
	r.nc = r.nats.Conn(t)
	var err error
	if r.signer, err = token.NewSigner(secret); err != nil {
		t.Fatal(err)
	}
	// The hub does not Run: nothing takes the frames, so its buffer fills up.
	if r.hub, err = relay.NewHub(relay.HubConfig{Conn: r.nats.Conn(t), Tokens: r.signer, Registerer: r.reg}); err != nil {
		t.Fatal(err)
	}
	r.http = httptest.NewServer(r.hub)
	t.Cleanup(r.http.Close)
	dropped := func() float64 {
		return metricValue(t, r.reg, "notify_nats_dropped_total", map[string]string{"consumer": "hub"})
	}
	if got := dropped(); got != 0 {
		t.Fatalf("dropped %v before any frame", got)
	}
	c := r.open(t, "acme", "42")
	const sent = 1<<16 + 1000 // the hub's buffer and then some
	for i := range sent {
		if err := r.nc.Publish(channels.UISubject("acme", "42"), []byte(itoa(int64(i)))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return dropped() >= 1000 })
	got := dropped()
	_ = c.ws.CloseNow()
	waitFor(t, func() bool { return metricValue(t, r.reg, "notify_ws_connections", nil) == 0 })
	if after := dropped(); after < got {
		t.Fatalf("dropped fell from %v to %v when the subscription went", got, after)
	}
}

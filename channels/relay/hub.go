package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/token"
)

// Verifier checks a user token; *token.Signer is one.
type Verifier interface {
	Verify(tok string) (token.User, error)
}

// Center is what the hub asks the notification center for: the hello's unread count
// and latest seq, and the replay that answers a resume. Without one the hello says
// 0 and a resume replays nothing.
type Center interface {
	State(ctx context.Context, account, user string) (unread int64, seq uint64, err error)
	// Resume sends, in seq order, the frame of every center item of the user with a seq
	// above after, then returns the latest seq and unread count.
	Resume(ctx context.Context, account, user string, after uint64, send func(frame []byte) error) (seq uint64, unread int64, err error)
}

// HubConfig configures the websocket hub.
type HubConfig struct {
	Conn   *nats.Conn // subscriptions for connected users; stays the caller's
	Tokens Verifier
	// AllowedOrigins are host or host:port patterns (path.Match, * as wildcard) of the
	// pages allowed to open a websocket; the host the hub is reached at is always allowed.
	AllowedOrigins []string
	Center         Center
	QueueSize      int           // frames buffered per connection before it counts as slow: 256
	PingInterval   time.Duration // every connection is pinged this often, by one hub-wide ticker: 25s
	// WriteTimeout: the frames waiting (one batch) not written, or a ping not answered,
	// in this time drop the client: 10s.
	WriteTimeout time.Duration
	Registerer   prometheus.Registerer
	Logger       *slog.Logger
}

func (c *HubConfig) setDefaults() {
	if c.QueueSize == 0 {
		c.QueueSize = 256
	}
	if c.PingInterval == 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work.
func (c *HubConfig) Validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("relay hub: a NATS connection is required")
	case c.Tokens == nil:
		return errors.New("relay hub: a token verifier is required")
	case c.QueueSize < 1:
		return errors.New("relay hub: queue size must be at least 1")
	}
	for _, p := range c.AllowedOrigins {
		if strings.Contains(p, "://") || strings.TrimSpace(p) == "" {
			return fmt.Errorf("relay hub: allowed origin %q must be a host or host:port pattern", p)
		}
	}
	return nil
}

// Hub holds the websockets of the users connected to this dispatcher. It subscribes
// on NATS only for them (ui.<account>.<user>, and ui.<account>._all per account with
// someone connected), so any number of dispatchers behind a load balancer deliver
// each frame to each tab exactly once. Frames arrive encoded and go out unchanged.
type Hub struct {
	cfg     HubConfig
	log     *slog.Logger
	metrics *hubMetrics
	msgs    chan *nats.Msg // every subscription delivers here; one goroutine fans out

	mu     sync.RWMutex
	groups map[string]*group // by subject: ui.<account>.<user> or ui.<account>._all
	closed bool
	active sync.WaitGroup // connections that joined, until they have closed
	// dropped is what the subscriptions already let go had dropped as a slow
	// consumer; the live ones say their own (notify_nats_dropped_total). Under mu.
	dropped uint64
}

// group is the connections behind one subject and the subscription that feeds them.
// A slice rather than a set: most groups are the one or two tabs of a user, and a map
// costs hundreds of bytes each; each conn knows its position in its groups.
type group struct {
	conns []*conn
	sub   *nats.Subscription
}

// fanoutBuffer is how many frames may wait for the fan-out goroutine before NATS
// counts this dispatcher as a slow consumer. Fan-out never blocks on a client, so it
// only fills if the process is starved of CPU.
const fanoutBuffer = 1 << 16

// NewHub returns a hub; Run must be running for frames to flow.
func NewHub(cfg HubConfig) (*Hub, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:    cfg,
		log:    cfg.Logger.With("channel", channels.Relay),
		msgs:   make(chan *nats.Msg, fanoutBuffer),
		groups: make(map[string]*group),
	}
	h.metrics = newHubMetrics(cfg.Registerer, h.natsDropped)
	return h, nil
}

// natsDropped counts the frames NATS dropped before the fan-out could take them
// (the subscriptions' slow-consumer drops), for notify_nats_dropped_total.
func (h *Hub) natsDropped() float64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := h.dropped
	for _, g := range h.groups {
		if d, err := g.sub.Dropped(); err == nil {
			n += uint64(d)
		}
	}
	return float64(n)
}

// unsubscribe ends g's subscription and keeps its count of drops. Under h.mu.
func (h *Hub) unsubscribe(g *group) {
	if d, err := g.sub.Dropped(); err == nil {
		h.dropped += uint64(d)
	}
	_ = g.sub.Unsubscribe()
}

// Run fans frames out to connections and pings them until ctx ends, then closes every
// connection with "going away" so browsers reconnect to another dispatcher.
func (h *Hub) Run(ctx context.Context) error {
	var pinger sync.WaitGroup
	pingCtx, stopPinger := context.WithCancel(ctx)
	pinger.Go(func() { h.pinger(pingCtx) })
	defer h.shutdown()
	defer pinger.Wait()
	defer stopPinger()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-h.msgs:
			h.fanout(m.Subject, m.Data)
		}
	}
}

// fanout hands frame to every connection behind subject. Run calls it for what NATS
// delivers, and a relay with this hub for its own frames, concurrently. The frame is
// framed for the websocket once, here, and the same bytes go to every connection.
func (h *Hub) fanout(subject string, frame []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	g := h.groups[subject]
	if g == nil || len(g.conns) == 0 {
		return
	}
	wire := textFrame(frame)
	// Most frames are written at once by enqueue (a syscall each): a broadcast to a
	// large group is split over the cores rather than written from one.
	parts := min(runtime.GOMAXPROCS(0), len(g.conns)/fanoutChunk)
	if parts < 2 {
		for _, c := range g.conns {
			c.enqueue(wire)
		}
		return
	}
	var wg sync.WaitGroup
	for p := range parts {
		part := g.conns[p*len(g.conns)/parts : (p+1)*len(g.conns)/parts]
		wg.Go(func() {
			for _, c := range part {
				c.enqueue(wire)
			}
		})
	}
	wg.Wait()
}

// fanoutChunk is the fewest connections of a group worth a goroutine of the fan-out.
const fanoutChunk = 512

// pinger pings every connection each PingInterval, one hub-wide ticker rather than one
// per connection, and drops those whose pong has not come a write timeout later.
func (h *Hub) pinger(ctx context.Context) {
	tick := time.NewTicker(h.cfg.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h.each((*conn).ping)
		wait := time.NewTimer(h.cfg.WriteTimeout)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
		h.each((*conn).checkPong)
	}
}

// each calls f for every connection, once each (every connection is in its user's group).
func (h *Hub) each(f func(*conn)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for subject, g := range h.groups {
		for _, c := range g.conns {
			if c.subjects[0] == subject {
				f(c)
			}
		}
	}
}

func (h *Hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	var all []*conn
	for subject, g := range h.groups {
		h.unsubscribe(g)
		all = append(all, g.conns...)
		delete(h.groups, subject)
	}
	h.mu.Unlock()
	for _, c := range all {
		c.drop(websocket.StatusGoingAway, "server shutting down", "")
	}
	// Let the close frames go out before the process moves on; a peer that does not
	// answer the handshake is cut off by the websocket library's own timeout.
	h.active.Wait()
}

// join subscribes c to its user's and its account's subjects, creating the
// subscriptions for the first connection, and waits until the server has them, so
// whatever is published after the hello reaches the connection.
func (h *Hub) join(ctx context.Context, c *conn) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("relay hub: shutting down")
	}
	h.active.Add(1) // leave marks it done, on every path
	for k, subject := range c.subjects {
		if k > 0 && subject == c.subjects[0] {
			break // a user named like the broadcast: one group
		}
		g := h.groups[subject]
		if g == nil {
			sub, err := h.cfg.Conn.ChanSubscribe(subject, h.msgs)
			if err != nil {
				h.mu.Unlock()
				h.leave(c)
				return fmt.Errorf("subscribe %s: %w", subject, err)
			}
			g = &group{sub: sub}
			h.groups[subject] = g
		}
		c.pos[k] = len(g.conns)
		g.conns = append(g.conns, c)
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.WriteTimeout)
	defer cancel()
	if err := h.cfg.Conn.FlushWithContext(ctx); err != nil {
		h.leave(c)
		return fmt.Errorf("flush subscriptions: %w", err)
	}
	return nil
}

// leave removes c and drops the subscriptions nobody needs any more.
func (h *Hub) leave(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.active.Done()
	for k, subject := range c.subjects {
		g := h.groups[subject]
		if g == nil {
			continue
		}
		i := c.pos[k]
		if i >= len(g.conns) || g.conns[i] != c {
			continue // never joined this one (or a user named like the broadcast)
		}
		last := len(g.conns) - 1
		if moved := g.conns[last]; i != last {
			g.conns[i] = moved
			moved.pos[moved.slot(subject)] = i
		}
		g.conns[last] = nil
		g.conns = g.conns[:last]
		if len(g.conns) == 0 {
			h.unsubscribe(g)
			delete(h.groups, subject)
		}
	}
}

// ServeHTTP is GET /ws: authenticate, check the origin, upgrade, say hello, then
// forward frames until the client leaves or falls behind.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if tok == "" {
		tok, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	user, err := h.cfg.Tokens.Verify(tok)
	if err != nil {
		h.log.Debug("websocket refused", "reason", "token", "error", err)
		writeError(w, http.StatusUnauthorized, events.CodeUnauthorized, "a valid user token is required")
		return
	}
	// The library does the handshake; the hub takes the connection from there and
	// lets the library's Conn go (wire.go).
	hw := &smallHijack{ResponseWriter: w}
	ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{
		OriginPatterns:  h.cfg.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled, // idle sockets stay small
	})
	if err != nil {
		h.log.Debug("websocket refused", "reason", "handshake", "error", err)
		return // Accept has answered (403 for a foreign origin)
	}
	// Closed at once, which closes nothing of the connection (libraryConn) and takes
	// the Conn's finalizer away: the Conn refers to itself, so with a finalizer it
	// would never be collected.
	_ = ws.CloseNow()

	// r.Context() must not be used after Accept: the connection has its own life.
	c := newConn(h, hw.conn, user)
	c.in = hw.in
	// The set-up's context: the connection has none of its own while idle (a resume
	// makes one), and the center's answer for the hello is bounded like a write.
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.WriteTimeout)
	defer cancel()
	if err := h.join(ctx, c); err != nil {
		h.log.Warn("websocket join", "error", err)
		_ = c.raw.SetWriteDeadline(time.Now().Add(closeTimeout))
		_, _ = c.raw.Write(closeFrame(websocket.StatusInternalError, "try again"))
		c.cut()
		return
	}
	h.metrics.connections.Inc()
	c.expiry = time.AfterFunc(time.Until(user.Expires), func() {
		c.drop(websocket.StatusPolicyViolation, "token expired", dropTokenExpired)
	})
	if err := c.hello(ctx); err != nil {
		h.log.Warn("websocket hello", "account", c.user.Account, "user", c.user.User, "error", err)
		c.drop(websocket.StatusInternalError, "try again", "")
	}
	c.releaseWrites() // the frames that waited for the hello, or the close
	// The handler returns: its frames hold the request and the HTTP server's
	// per-request state (about 3 KB). The reader is a fresh goroutine, so it parks
	// with the smallest stack. The hub owns it: joined, the conn is in h.active until
	// the reader makes it leave, and shutdown waits for that.
	go c.readLoop()
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(events.ErrorBody{Error: &events.Error{Code: code, Message: message}})
}

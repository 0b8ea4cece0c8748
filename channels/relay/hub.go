package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
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
	PingInterval   time.Duration // 25s
	WriteTimeout   time.Duration // the frames waiting (one batch) or a ping not written in this time drop the client: 10s
	Registerer     prometheus.Registerer
	Logger         *slog.Logger
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
	return &Hub{
		cfg:     cfg,
		log:     cfg.Logger.With("channel", channels.Relay),
		metrics: newHubMetrics(cfg.Registerer),
		msgs:    make(chan *nats.Msg, fanoutBuffer),
		groups:  make(map[string]*group),
	}, nil
}

// Run fans frames out to connections until ctx ends, then closes every connection
// with "going away" so browsers reconnect to another dispatcher.
func (h *Hub) Run(ctx context.Context) error {
	defer h.shutdown()
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
// delivers, and a relay with this hub for its own frames, concurrently.
func (h *Hub) fanout(subject string, frame []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if g := h.groups[subject]; g != nil {
		for _, c := range g.conns {
			c.enqueue(frame)
		}
	}
}

func (h *Hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	var all []*conn
	for subject, g := range h.groups {
		_ = g.sub.Unsubscribe()
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
			_ = g.sub.Unsubscribe()
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
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  h.cfg.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled, // idle sockets stay small
	})
	if err != nil {
		h.log.Debug("websocket refused", "reason", "handshake", "error", err)
		return // Accept has answered (403 for a foreign origin)
	}
	ws.SetReadLimit(maxClientFrame)

	// r.Context() must not be used after Accept: the connection has its own life.
	c := newConn(h, ws, user)
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.join(ctx, c); err != nil {
		h.log.Warn("websocket join", "error", err)
		_ = ws.Close(websocket.StatusInternalError, "try again")
		cancel()
		return
	}
	h.metrics.connections.Inc()
	// The handler returns: the websocket is hijacked and needs it no more, and its
	// frames hold the request and the HTTP server's per-request state (about 3 KB)
	// for the connection's whole life. The hub owns the goroutine: joined, it is in
	// h.active until it leaves, and shutdown waits for that.
	go h.serveConn(ctx, cancel, c)
}

// serveConn says hello, then forwards frames until the client leaves or is dropped.
func (h *Hub) serveConn(ctx context.Context, cancel context.CancelFunc, c *conn) {
	defer c.ws.CloseNow()
	defer cancel()
	// The gauge first: leave lets shutdown return, and the gauge must say 0 by then.
	defer func() { h.metrics.connections.Dec(); h.leave(c) }()
	if err := c.hello(ctx); err != nil {
		h.log.Warn("websocket hello", "account", c.user.Account, "user", c.user.User, "error", err)
		_ = c.ws.Close(websocket.StatusInternalError, "try again")
		return
	}
	c.serve(ctx, cancel)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(events.ErrorBody{Error: &events.Error{Code: code, Message: message}})
}

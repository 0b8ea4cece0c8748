package bench

import (
	"context"
	"encoding/json"
	"flag"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/events"
)

// The bare relay is the baseline of popup and broadcast: a bare NATS subscriber that
// writes the bytes it gets to websocket connections, with nothing of the dispatcher
// (no decode, validation, routing, tokens or center). It is what any websocket fan-out
// over NATS must do at least: one subscription, a bounded queue and a writer per
// connection (websocket writes block), the same websocket library and settings as the
// hub. A message on <prefix>.<user> goes to that user's connections, one on
// <prefix>._all to every connection.

// rawPrefix is the subject prefix of the baselines' raw frames.
const rawPrefix = "bench.raw"

type bareConn struct {
	ws    *websocket.Conn
	queue chan []byte
	done  chan struct{}
	once  sync.Once
}

type bareRelay struct {
	mu      sync.RWMutex
	byUser  map[string]map[*bareConn]struct{}
	all     map[*bareConn]struct{}
	dropped atomic.Int64
	queue   int
}

type bareReady struct {
	Addr string `json:"addr"`
}

type bareResult struct {
	Dropped int64 `json:"dropped"`
}

func runBareRelay(ctx context.Context, fs *flag.FlagSet, args []string, out *json.Encoder) error {
	natsURL := fs.String("nats", "", "NATS URL")
	prefix := fs.String("prefix", rawPrefix, "subject prefix")
	queue := fs.Int("queue", 256, "frames queued per connection")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nc, err := nats.Connect(*natsURL, nats.Name("bench-bare-relay"))
	if err != nil {
		return err
	}
	defer nc.Close()
	r := &bareRelay{byUser: map[string]map[*bareConn]struct{}{}, all: map[*bareConn]struct{}{}, queue: *queue}
	sub, err := nc.Subscribe(*prefix+".>", func(m *nats.Msg) {
		user := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		r.fanout(user, m.Data)
	})
	if err != nil {
		return err
	}
	_ = sub.SetPendingLimits(-1, -1) // as the hub's channel, never drop for being behind
	if err := nc.Flush(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	if err := out.Encode(bareReady{Addr: ln.Addr().String()}); err != nil {
		return err
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	_ = srv.Close()
	r.mu.Lock()
	for c := range r.all {
		c.ws.CloseNow()
	}
	r.mu.Unlock()
	return out.Encode(bareResult{Dropped: r.dropped.Load()})
}

func (r *bareRelay) fanout(user string, frame []byte) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	set := r.all
	if user != events.AllUsers {
		set = r.byUser[user]
	}
	for c := range set {
		select {
		case c.queue <- frame:
		default:
			r.dropped.Add(1)
			c.drop()
		}
	}
}

func (c *bareConn) drop() { c.once.Do(func() { close(c.done) }) }

// ServeHTTP is /ws?user=<user>: no token, the user is who the query says.
func (r *bareRelay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	user := req.URL.Query().Get("user")
	ws, err := websocket.Accept(w, req, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	c := &bareConn{ws: ws, queue: make(chan []byte, r.queue), done: make(chan struct{})}
	r.mu.Lock()
	if r.byUser[user] == nil {
		r.byUser[user] = map[*bareConn]struct{}{}
	}
	r.byUser[user][c] = struct{}{}
	r.all[c] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.byUser[user], c)
		delete(r.all, c)
		r.mu.Unlock()
		ws.CloseNow()
	}()
	ctx := ws.CloseRead(context.Background())
	// Registered: say so, as the hub's hello does, so the client knows that whatever
	// is published from now on reaches it.
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"kind":"hello"}`)); err != nil {
		return
	}
	for {
		select {
		case frame := <-c.queue:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := ws.Write(wctx, websocket.MessageText, frame)
			cancel()
			if err != nil {
				return
			}
		case <-c.done:
			_ = ws.Close(websocket.StatusPolicyViolation, "too slow")
			return
		case <-ctx.Done():
			return
		}
	}
}

package relay

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/token"
)

// maxClientFrame bounds what a browser may send: it only ever sends small requests.
const maxClientFrame = 4 << 10

// conn is one browser tab. The fan-out goroutine hands it frames through a bounded
// queue and never waits for it; one goroutine writes, one reads.
type conn struct {
	h        *Hub
	ws       *websocket.Conn
	user     token.User
	subjects []string
	queue    chan []byte
	done     chan struct{} // closed when the connection is being dropped
	dropOnce sync.Once
	// Set once before done is closed: the close frame serve sends.
	closeCode websocket.StatusCode
	closeMsg  string
}

func newConn(h *Hub, ws *websocket.Conn, user token.User) *conn {
	return &conn{
		h:    h,
		ws:   ws,
		user: user,
		subjects: []string{
			channels.UISubject(user.Account, user.User),
			channels.UISubject(user.Account, events.AllUsers),
		},
		queue: make(chan []byte, h.cfg.QueueSize),
		done:  make(chan struct{}),
	}
}

// enqueue offers a frame without blocking. A client whose queue is full cannot keep
// up: it is dropped with a policy-violation close rather than slowing anyone else.
func (c *conn) enqueue(frame []byte) {
	select {
	case c.queue <- frame:
	case <-c.done:
	default:
		c.drop(websocket.StatusPolicyViolation, "too slow: frames were dropped", dropSlow)
	}
}

// drop asks for the connection to end with a close frame saying why, without blocking
// the caller: serve sends the close frame (the handshake waits for the peer). The
// first call wins. reason is the metric's label, empty for a normal end.
func (c *conn) drop(code websocket.StatusCode, message, reason string) {
	c.dropOnce.Do(func() {
		c.closeCode, c.closeMsg = code, message
		if reason != "" {
			c.h.metrics.dropped[reason].Inc()
			c.h.log.Info("websocket dropped", "account", c.user.Account, "user", c.user.User, "reason", reason)
		}
		close(c.done)
	})
}

func (c *conn) write(ctx context.Context, frame []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.h.cfg.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, frame)
}

// hello tells the tab who it is and where the user's center stands.
func (c *conn) hello(ctx context.Context) error {
	f := HelloFrame{Kind: "hello", Account: c.user.Account, User: c.user.User}
	if center := c.h.cfg.Center; center != nil {
		var err error
		if f.Unread, f.Seq, err = center.State(ctx, c.user.Account, c.user.User); err != nil {
			return err
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return c.write(ctx, b)
}

// serve writes queued frames and pings until the client goes, falls behind, stops
// answering, or its token expires, and then sends the close frame saying why.
func (c *conn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var reader sync.WaitGroup
	reader.Go(func() { c.read(ctx, cancel) })
	defer reader.Wait()
	defer cancel()
	defer func() {
		select {
		case <-c.done:
			_ = c.ws.Close(c.closeCode, c.closeMsg)
		default: // the client left
		}
	}()

	ping := time.NewTicker(c.h.cfg.PingInterval)
	defer ping.Stop()
	expiry := time.NewTimer(time.Until(c.user.Expires))
	defer expiry.Stop()
	for {
		select {
		case frame := <-c.queue:
			if err := c.write(ctx, frame); err != nil {
				c.drop(websocket.StatusPolicyViolation, "write failed", dropWriteError)
				return
			}
		case <-ping.C:
			pctx, pcancel := context.WithTimeout(ctx, c.h.cfg.WriteTimeout)
			err := c.ws.Ping(pctx)
			pcancel()
			if err != nil && ctx.Err() == nil {
				c.drop(websocket.StatusPolicyViolation, "no pong", dropPingTimeout)
				return
			}
		case <-expiry.C:
			c.drop(websocket.StatusPolicyViolation, "token expired", dropTokenExpired)
			return
		case <-c.done:
			return
		case <-ctx.Done(): // the reader ended: the client left
			return
		}
	}
}

// clientRequest is what a browser may send.
type clientRequest struct {
	Op    string `json:"op"`
	After uint64 `json:"after"`
}

// read serves the client's requests (resume) and notices when it leaves. It also
// keeps pings working: pongs are read here.
func (c *conn) read(ctx context.Context, done context.CancelFunc) {
	defer done()
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		var req clientRequest
		if typ != websocket.MessageText || json.Unmarshal(data, &req) != nil {
			continue // tolerate what a future client may send
		}
		if req.Op == "resume" {
			if err := c.resume(ctx, req.After); err != nil {
				c.h.log.Warn("resume", "account", c.user.Account, "user", c.user.User, "error", err)
				c.drop(websocket.StatusInternalError, "resume failed, reconnect", "")
				return
			}
		}
	}
}

// resume replays the center items the tab missed, then says where it stands. It
// writes directly rather than through the queue: a long replay is not a slow client.
func (c *conn) resume(ctx context.Context, after uint64) error {
	send := func(frame []byte) error { return c.write(ctx, frame) }
	f := ResumedFrame{Kind: "center", Op: "resumed"}
	if center := c.h.cfg.Center; center != nil {
		var err error
		if f.Seq, f.Unread, err = center.Resume(ctx, c.user.Account, c.user.User, after, send); err != nil {
			return err
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return send(b)
}

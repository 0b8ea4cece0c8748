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
// queue and never waits for it; one goroutine writes, one reads. The writer takes
// every frame that waits and writes them under one deadline: a client that cannot
// take them within the write timeout is dropped.
type conn struct {
	h        *Hub
	ws       *websocket.Conn
	user     token.User
	subjects [2]string // the user's subject, then the account's broadcast
	pos      [2]int    // c's index in the group of each subject, under the hub's lock
	queue    frameQueue
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
		subjects: [2]string{
			channels.UISubject(user.Account, user.User),
			channels.UISubject(user.Account, events.AllUsers),
		},
		queue: newFrameQueue(h.cfg.QueueSize),
		done:  make(chan struct{}),
	}
}

// slot is the index of subject in c.subjects.
func (c *conn) slot(subject string) int {
	if c.subjects[0] == subject {
		return 0
	}
	return 1
}

// enqueue offers a frame without blocking. A client whose queue is full cannot keep
// up: it is dropped with a policy-violation close rather than slowing anyone else.
func (c *conn) enqueue(frame []byte) {
	select {
	case <-c.done: // nobody will write it
		return
	default:
	}
	if !c.queue.push(frame) {
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

// writeBatch writes frames in order under one deadline: a context and its timer per
// batch rather than per frame, which showed in profiles of the pop-up path.
func (c *conn) writeBatch(ctx context.Context, frames [][]byte) error {
	if len(frames) == 0 { // a token that raced with the take before it
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.h.cfg.WriteTimeout)
	defer cancel()
	for _, frame := range frames {
		if err := c.ws.Write(ctx, websocket.MessageText, frame); err != nil {
			return err
		}
	}
	return nil
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
// answering, or its token expires, and then sends the close frame saying why. cancel
// ends ctx; the reader calls it when the client leaves.
func (c *conn) serve(ctx context.Context, cancel context.CancelFunc) {
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
	var batch [][]byte
	for {
		select {
		case <-c.queue.ready:
			batch = c.queue.take(batch)
			if err := c.writeBatch(ctx, batch); err != nil {
				c.drop(websocket.StatusPolicyViolation, "write failed", dropWriteError)
				return
			}
			batch = release(batch)
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
// keeps pings working: pongs are read here. Its reads take no context: every way
// serve ends closes the websocket, which ends the read, and an idle read with a
// context would hold a registration on it for the connection's whole life.
func (c *conn) read(ctx context.Context, done context.CancelFunc) {
	defer done()
	for {
		typ, data, err := c.ws.Read(context.Background())
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

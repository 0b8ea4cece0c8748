package relay

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/token"
)

// maxClientFrame bounds what a browser may send: it only ever sends small requests.
const maxClientFrame = 4 << 10

// closeTimeout bounds the close handshake: writing the close frame, then waiting for
// the client's (the websocket library's figure).
const closeTimeout = 5 * time.Second

// conn is one browser tab. The fan-out goroutine hands it frames through a bounded
// queue and never waits for it. An idle conn has one goroutine, its reader (pongs,
// resume requests, the client's close or leaving), parked with a minimal stack; a
// writer goroutine exists only while frames wait: the first frame queued starts one,
// and it takes every frame that waits and writes them under one deadline until the
// queue is empty. A client that cannot take them within the write timeout is dropped.
// Pings come from the hub's pinger, the token's expiry from a timer: nothing ticks
// per connection. wire.go has the protocol.
type conn struct {
	h        *Hub
	raw      net.Conn        // the hijacked connection: every frame is written here
	rc       syscall.RawConn // raw's, for writes that must not block (nil: none)
	in       io.Reader       // what the reader reads: raw, after bytes the server read early
	user     token.User
	subjects [2]string // the user's subject, then the account's broadcast
	pos      [2]int    // c's index in the group of each subject, under the hub's lock
	queue    frameQueue
	// cancelResume ends the context of a resume in progress: a drop cancels the
	// center's replay. A conn holds no context of its own while idle.
	cancelResume atomic.Pointer[context.CancelFunc]
	expiry       *time.Timer
	// awaitingPong is set by the pinger when it queues a ping and cleared by the pong.
	awaitingPong atomic.Bool
	// The close handshake: whichever side's close frame comes second cuts the connection.
	closeSent, closeReceived atomic.Bool
	dropOnce                 sync.Once
	// Set once before the queue closes: the close frame the holder of the write side sends.
	closeCode websocket.StatusCode
	closeMsg  string
	hdr       [14]byte // the reader's frame header
}

func newConn(h *Hub, raw net.Conn, user token.User) *conn {
	c := &conn{
		h:    h,
		raw:  raw,
		in:   raw,
		user: user,
		subjects: [2]string{
			channels.UISubject(user.Account, user.User),
			channels.UISubject(user.Account, events.AllUsers),
		},
		queue: newFrameQueue(h.cfg.QueueSize),
	}
	if sc, ok := raw.(syscall.Conn); ok {
		c.rc, _ = sc.SyscallConn()
	}
	return c
}

// slot is the index of subject in c.subjects.
func (c *conn) slot(subject string) int {
	if c.subjects[0] == subject {
		return 0
	}
	return 1
}

// enqueue offers a framed frame (appendFrame) without blocking, and starts a writer
// if none runs. A client whose queue is full cannot keep up: it is dropped with a
// policy-violation close rather than slowing anyone else.
func (c *conn) enqueue(frame []byte) {
	ok, start := c.queue.push(frame)
	if !ok {
		c.drop(websocket.StatusPolicyViolation, "too slow: frames were dropped", dropSlow)
	}
	if start {
		c.writeSome()
	}
}

// writeSome is for a new holder of the write side, on the goroutine that queued the
// frame, which must not block: it writes the frame at once if the socket has room for
// it, as it mostly has, so a frame costs no goroutine and no deadline. Whatever is
// left (a socket that is full, a frame half written, several frames) goes to a
// writer goroutine.
func (c *conn) writeSome() {
	frame, ok := c.queue.takeOne()
	if !ok || c.rc == nil {
		go c.writeLoop()
		return
	}
	n, err := writeNonBlocking(c.rc, frame)
	if err != nil {
		c.writeFailed()
		return
	}
	if n < len(frame) {
		c.queue.unshift(frame[n:])
		go c.writeLoop()
		return
	}
	switch c.queue.release() {
	case turnWrite:
		go c.writeLoop()
	case turnClose:
		go c.sendClose()
	}
}

// dropped reports whether the connection is being dropped (or has ended).
func (c *conn) dropped() bool { return c.queue.isClosing() }

// drop asks for the connection to end with a close frame saying why, without blocking
// the caller: the holder of the write side sends the close frame once its write is
// done, or a goroutine started here if nobody holds it. The first call wins. reason
// is the metric's label, empty for a normal end; code 0 cuts the connection without
// a close frame (the client is gone, or a frame may be half written).
func (c *conn) drop(code websocket.StatusCode, message, reason string) {
	c.dropOnce.Do(func() {
		c.closeCode, c.closeMsg = code, message
		if reason != "" {
			c.h.metrics.dropped[reason].Inc()
			c.h.log.Info("websocket dropped", "account", c.user.Account, "user", c.user.User, "reason", reason)
		}
		if cancel := c.cancelResume.Load(); cancel != nil {
			(*cancel)()
		}
		if _, acquired := c.queue.close(); acquired {
			if code == 0 {
				c.cut()
			} else {
				go c.sendClose()
			}
		}
	})
}

// sendClose is for the holder of the write side of a closing connection: it sends
// the close frame, and cuts the connection once the client's close has come too, or
// after closeTimeout. The reader ends with the connection.
func (c *conn) sendClose() {
	if c.closeCode == 0 || c.raw.SetWriteDeadline(time.Now().Add(closeTimeout)) != nil {
		c.cut()
		return
	}
	if _, err := c.raw.Write(closeFrame(c.closeCode, c.closeMsg)); err != nil {
		c.cut()
		return
	}
	c.closeSent.Store(true)
	if c.closeReceived.Load() { // the reader may have seen it before closeSent was set
		c.cut()
		return
	}
	time.AfterFunc(closeTimeout, c.cut)
}

// cut closes the connection without a word; the reader ends.
func (c *conn) cut() {
	_ = c.raw.Close()
}

// writeLoop is the writer goroutine: a holder of the write side started it. It
// writes what waits, batch by batch, and ends when the queue is empty.
func (c *conn) writeLoop() {
	var batch [][]byte
	for {
		var next turn
		batch, next = c.queue.take(batch)
		switch next {
		case turnDone:
			return
		case turnClose:
			c.sendClose()
			return
		}
		if err := c.write(batch...); err != nil {
			c.writeFailed()
			return
		}
		// Cleared while the write side is still held: the next holder may be writeSome,
		// which takes no deadline and must not meet a stale one.
		c.clearDeadline()
	}
}

// write writes framed frames in order under one deadline: one per batch rather than
// a context and its timer per frame, which showed in profiles of the pop-up path. It
// leaves the deadline set: the holder clears it before it lets the write side go.
func (c *conn) write(frames ...[]byte) error {
	if err := c.raw.SetWriteDeadline(time.Now().Add(c.h.cfg.WriteTimeout)); err != nil {
		return err
	}
	return writeFrames(c.raw, frames)
}

// clearDeadline lifts the write deadline before the write side is let go.
func (c *conn) clearDeadline() {
	_ = c.raw.SetWriteDeadline(time.Time{})
}

// writeFailed drops a client whose write failed or timed out. A frame may be half
// written: no close frame can follow it, so the connection is cut.
func (c *conn) writeFailed() {
	c.drop(websocket.StatusPolicyViolation, "write failed", dropWriteError)
	c.cut()
}

// ping queues a ping (the hub's pinger calls it for every connection), marking the
// connection as waiting for its pong.
func (c *conn) ping() {
	c.awaitingPong.Store(true)
	c.enqueue(pingFrame)
}

// checkPong drops a connection whose last ping has had no pong (the pinger calls it
// a write timeout after the ping).
func (c *conn) checkPong() {
	if c.awaitingPong.Load() {
		c.drop(websocket.StatusPolicyViolation, "no pong", dropPingTimeout)
	}
}

// hello tells the tab who it is and where the user's center stands. The caller holds
// the write side (a new conn's queue starts held), so it goes before any frame.
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
	if err := c.write(textFrame(b)); err != nil {
		c.drop(0, "", "") // a frame may be half written: no close frame can follow
		return err
	}
	return nil
}

// releaseWrites lets the write side go after the hello or a resume: it starts a
// writer for the frames that waited meanwhile, or closes a connection dropped
// meanwhile.
func (c *conn) releaseWrites() {
	c.clearDeadline()
	switch c.queue.release() {
	case turnWrite:
		go c.writeLoop()
	case turnClose:
		c.sendClose()
	}
}

// clientRequest is what a browser may send.
type clientRequest struct {
	Op    string `json:"op"`
	After uint64 `json:"after"`
}

// request serves one message of the client (resume), on the reader's goroutine.
func (c *conn) request(typ byte, data []byte) {
	var req clientRequest
	if typ != opText || json.Unmarshal(data, &req) != nil {
		return // tolerate what a future client may send
	}
	if req.Op == "resume" {
		ctx, cancel := context.WithCancel(context.Background())
		c.cancelResume.Store(&cancel) // before resume takes the write side: a drop after it cancels
		err := c.resume(ctx, req.After)
		c.cancelResume.Store(nil)
		cancel()
		if err != nil {
			c.h.log.Warn("resume", "account", c.user.Account, "user", c.user.User, "error", err)
			c.drop(websocket.StatusInternalError, "resume failed, reconnect", "")
		}
	}
}

// resume replays the center items the tab missed, then says where it stands. It
// holds the write side for the whole replay and writes each frame under its own
// deadline rather than through the queue: a long replay is not a slow client. The
// pop-ups that arrive meanwhile wait in the queue and follow it.
func (c *conn) resume(ctx context.Context, after uint64) error {
	if !c.queue.acquire() {
		return nil // dropped meanwhile: the close is on its way
	}
	defer c.releaseWrites()
	var writeErr error
	defer func() {
		if writeErr != nil { // a frame may be half written: no close frame can follow
			c.drop(0, "", "")
		}
	}()
	send := func(frame []byte) error {
		writeErr = c.write(textFrame(frame))
		return writeErr
	}
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

package relay

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/coder/websocket"
)

// errProtocol is a frame the server side of RFC 6455 must refuse; errTooBig a
// message above maxClientFrame.
var (
	errProtocol = errors.New("websocket protocol violation")
	errTooBig   = errors.New("message too big")
)

// readLoop is the conn's reader: it reads the client's frames until the connection
// ends, then ends the conn. It answers pings, takes pongs, serves requests, and does
// the client's half of the close handshake. Parked between frames, it holds a small
// stack and no buffer (the frame header goes into c.hdr).
func (c *conn) readLoop() {
	defer c.end()
	var msg []byte // the fragments of a message so far
	var msgOp byte
	for {
		op, fin, payload, err := c.readFrame()
		switch {
		case errors.Is(err, errTooBig):
			c.refuse(websocket.StatusMessageTooBig, "message too big")
			return
		case errors.Is(err, errProtocol):
			c.refuse(websocket.StatusProtocolError, err.Error())
			return
		case err != nil: // the client left, or the connection was cut
			return
		}
		switch op {
		case opPing:
			c.enqueue(appendFrameOp(nil, opPong, payload))
		case opPong:
			c.awaitingPong.Store(false)
		case opClose:
			c.closeReceived.Store(true)
			if c.closeSent.Load() { // the answer to ours
				return
			}
			code := websocket.StatusNoStatusRcvd // answered with a close without a status
			if len(payload) >= 2 {
				code = websocket.StatusCode(binary.BigEndian.Uint16(payload))
			}
			c.drop(code, "", "") // the answer is sent, then the connection cut
		case opText, opBinary:
			if msg != nil {
				c.refuse(websocket.StatusProtocolError, "a new message inside a fragmented one")
				return
			}
			if !fin {
				msg, msgOp = payload, op
				if msg == nil {
					msg = []byte{}
				}
				continue
			}
			if !c.closeReceived.Load() {
				c.request(op, payload)
			}
		case opContinuation:
			if msg == nil {
				c.refuse(websocket.StatusProtocolError, "a continuation without a message")
				return
			}
			if len(msg)+len(payload) > maxClientFrame {
				c.refuse(websocket.StatusMessageTooBig, "message too big")
				return
			}
			msg = append(msg, payload...)
			if fin {
				if !c.closeReceived.Load() {
					c.request(msgOp, msg)
				}
				msg = nil
			}
		default:
			c.refuse(websocket.StatusProtocolError, "unknown opcode")
			return
		}
	}
}

// refuse drops the client for what it sent and discards what it sends after, until
// the close handshake (or its timeout) cuts the connection.
func (c *conn) refuse(code websocket.StatusCode, reason string) {
	c.closeReceived.Store(true) // nothing more is read as frames: cut right after the close frame
	c.drop(code, reason, "")
	_, _ = io.Copy(io.Discard, c.in)
}

// readFrame reads one frame of the client, unmasked. A client's frames are masked
// (RFC 6455, section 5.1), carry no extension bits (none is negotiated), and a
// control frame is final and at most 125 bytes.
func (c *conn) readFrame() (op byte, fin bool, payload []byte, err error) {
	h := c.hdr[:]
	if _, err = io.ReadFull(c.in, h[:2]); err != nil {
		return 0, false, nil, err
	}
	fin, op = h[0]&finBit != 0, h[0]&0x0f
	if h[0]&0x70 != 0 || h[1]&0x80 == 0 {
		return 0, false, nil, errProtocol
	}
	n, ext := uint64(h[1]&0x7f), 0
	switch n {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	if _, err = io.ReadFull(c.in, h[2:2+ext+4]); err != nil {
		return 0, false, nil, err
	}
	switch ext {
	case 2:
		n = uint64(binary.BigEndian.Uint16(h[2:]))
	case 8:
		n = binary.BigEndian.Uint64(h[2:])
	}
	if op >= opClose && (n > 125 || !fin) {
		return 0, false, nil, errProtocol
	}
	if n > maxClientFrame {
		return 0, false, nil, errTooBig
	}
	if n == 0 {
		return op, fin, nil, nil
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(c.in, payload); err != nil {
		return 0, false, nil, err
	}
	mask := h[2+ext : 6+ext]
	for i := range payload {
		payload[i] ^= mask[i&3]
	}
	return op, fin, payload, nil
}

// end is the reader's last act: nothing more is written, the connection is closed,
// and the conn leaves the hub.
func (c *conn) end() {
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.drop(0, "", "")
	c.cut()
	// The gauge first: leave lets shutdown return, and the gauge must say 0 by then.
	c.h.metrics.connections.Dec()
	c.h.leave(c)
}

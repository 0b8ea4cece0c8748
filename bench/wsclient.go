package bench

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// wsConn is the client side of RFC 6455 that a browser tab needs here, and no more:
// the upgrade by hand, server frames in (text and binary messages, fragmented or not,
// pings, pongs, the close), masked frames out (pongs and the answer to a close). The
// fleet's clients use it instead of a websocket library because in a broadcast they
// share two cores with the dispatcher: a message costs one parse of its header from a
// small buffer and no allocation once the connection's message buffer has grown, not a
// Reader with its locks, context and per-message state. Half its read syscalls find
// nothing (net.Conn's Read tries the socket before it waits for the poller); a
// variant that read inside RawConn.Read and waited first saved them, but measured no
// less CPU per frame in broadcast, so reads stay on the net.Conn.
//
// Reads (ReadMessage) belong to one goroutine; CloseNow may be called from any.
type wsConn struct {
	nc  net.Conn
	br  *bufio.Reader
	hdr [8]byte // a frame's extended length
	ctl [125]byte
	msg []byte // the message being read; reused by the next
	// wmu orders the frames the client writes (pongs, its close) on the connection.
	wmu sync.Mutex
}

const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xa

	// wsReadBuffer is the bufio.Reader of a connection: a broadcast frame and its
	// header in one read, without holding much for each of tens of thousands of
	// idle clients (larger messages are read past it, straight into the message).
	wsReadBuffer = 2 << 10
	// wsReadLimit is the largest message a client takes, as coder/websocket's
	// SetReadLimit did for the harness.
	wsReadLimit = 1 << 20
	// wsGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
	wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
	// wsWriteTimeout bounds the client's own frames: a pong or a close answer that
	// cannot be written in this time gives the connection up.
	wsWriteTimeout = 10 * time.Second
)

var errWSProtocol = errors.New("websocket: protocol violation by the server")

// wsCloseError is how a connection ended with the server's close frame: its status
// code (StatusNoStatusRcvd for a close frame without one).
type wsCloseError struct {
	Code   websocket.StatusCode
	Reason string
}

func (e *wsCloseError) Error() string {
	return fmt.Sprintf("websocket closed: status %d %q", int(e.Code), e.Reason)
}

// wsCloseStatus is the close status of the error that ended a connection, -1 when it
// broke without a close frame (as coder/websocket's CloseStatus).
func wsCloseStatus(err error) websocket.StatusCode {
	if ce, ok := errors.AsType[*wsCloseError](err); ok {
		return ce.Code
	}
	return -1
}

// dialFunc opens the TCP connection of a websocket, as net.Dialer.DialContext does.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dialWS opens a websocket to rawURL (ws:// only) over a connection from dial: the
// HTTP/1.1 upgrade, written by hand, and the server's 101 with the right
// Sec-WebSocket-Accept. No Origin is sent: a request without one is accepted by
// coder/websocket's Accept (the hub's and the bare relay's), as a non-browser client.
func dialWS(ctx context.Context, dial dialFunc, rawURL string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("websocket: scheme %q: only ws:// is supported", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &wsConn{nc: nc, br: bufio.NewReaderSize(nc, wsReadBuffer)}
	if err := c.handshake(ctx, u); err != nil {
		_ = nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *wsConn) handshake(ctx context.Context, u *url.URL) error {
	// The context bounds the handshake through the connection's deadline: a
	// cancellation sets it in the past, which ends the read or write under way.
	if d, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if stop() {
			_ = c.nc.SetDeadline(time.Time{})
		}
	}()

	var key [16]byte
	binary.LittleEndian.PutUint64(key[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(key[8:], rand.Uint64())
	k := base64.StdEncoding.EncodeToString(key[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + k + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c.nc, req); err != nil {
		return ctxErr(ctx, fmt.Errorf("websocket: upgrade request: %w", err))
	}
	// A 1xx answer has no body: ReadResponse leaves whatever follows the headers (the
	// server's first frames) in c.br.
	resp, err := http.ReadResponse(c.br, &http.Request{Method: http.MethodGet, URL: u})
	if err != nil {
		return ctxErr(ctx, fmt.Errorf("websocket: upgrade answer: %w", err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		return fmt.Errorf("websocket: upgrade refused: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	switch {
	case !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket"):
		return fmt.Errorf("websocket: upgrade answer with Upgrade %q", resp.Header.Get("Upgrade"))
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return fmt.Errorf("websocket: upgrade answer with Connection %q", resp.Header.Get("Connection"))
	case resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(k):
		return fmt.Errorf("websocket: upgrade answer with Sec-WebSocket-Accept %q, not the key's", resp.Header.Get("Sec-WebSocket-Accept"))
	case resp.Header.Get("Sec-WebSocket-Extensions") != "":
		return fmt.Errorf("websocket: upgrade answer with extensions %q, none asked for", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	return nil
}

// ctxErr prefers the context's error to err when the context has ended: the
// deadline it set is what failed the read or write.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// wsAccept is the Sec-WebSocket-Accept a server must answer key with.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// ReadMessage returns the next text or binary message, whole (the fragments of a
// fragmented one put together), answering pings and skipping pongs on the way. The
// data is valid until the next call. A close frame from the server is answered, the
// connection closed, and a *wsCloseError returned.
func (c *wsConn) ReadMessage() (op byte, data []byte, err error) {
	c.msg = c.msg[:0]
	var msgOp byte // the opcode of the message whose fragments are being read, 0 before
	for {
		b0, err := c.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		b1, err := c.br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		fin, fop := b0&0x80 != 0, b0&0x0f
		// No extension is negotiated, and a server's frames are never masked.
		if b0&0x70 != 0 || b1&0x80 != 0 {
			return 0, nil, fmt.Errorf("%w: header %#x %#x", errWSProtocol, b0, b1)
		}
		n := uint64(b1 & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, c.hdr[:2]); err != nil {
				return 0, nil, err
			}
			n = uint64(binary.BigEndian.Uint16(c.hdr[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, c.hdr[:8]); err != nil {
				return 0, nil, err
			}
			n = binary.BigEndian.Uint64(c.hdr[:8])
		}

		if fop >= wsClose { // a control frame: final and short, even between fragments
			if !fin || n > 125 {
				return 0, nil, fmt.Errorf("%w: control frame %#x of %d bytes, final %v", errWSProtocol, fop, n, fin)
			}
			p := c.ctl[:n]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, nil, err
			}
			switch fop {
			case wsPing:
				if err := c.writeFrame(wsPong, p); err != nil {
					return 0, nil, err
				}
			case wsPong:
			case wsClose:
				return 0, nil, c.closed(p)
			default:
				return 0, nil, fmt.Errorf("%w: opcode %#x", errWSProtocol, fop)
			}
			continue
		}

		switch fop {
		case wsText, wsBinary:
			if msgOp != 0 {
				return 0, nil, fmt.Errorf("%w: a new message inside a fragmented one", errWSProtocol)
			}
			msgOp = fop
		case wsContinuation:
			if msgOp == 0 {
				return 0, nil, fmt.Errorf("%w: a continuation without a message", errWSProtocol)
			}
		default:
			return 0, nil, fmt.Errorf("%w: opcode %#x", errWSProtocol, fop)
		}
		if n > uint64(wsReadLimit-len(c.msg)) {
			return 0, nil, fmt.Errorf("websocket: message over %d bytes", wsReadLimit)
		}
		start := len(c.msg)
		c.msg = slices.Grow(c.msg, int(n))[:start+int(n)]
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return 0, nil, err
		}
		if fin {
			return msgOp, c.msg, nil
		}
	}
}

// closed answers the server's close frame with payload p (its status echoed, as
// RFC 6455 section 5.5.1 asks), closes the connection, and returns the error that
// ends reading.
func (c *wsConn) closed(p []byte) error {
	ce := &wsCloseError{Code: websocket.StatusNoStatusRcvd}
	var answer []byte
	switch {
	case len(p) == 1:
		_ = c.CloseNow()
		return fmt.Errorf("%w: a close frame of one byte", errWSProtocol)
	case len(p) >= 2:
		ce.Code = websocket.StatusCode(binary.BigEndian.Uint16(p))
		ce.Reason = string(p[2:])
		answer = p[:2]
	}
	_ = c.writeFrame(wsClose, answer)
	_ = c.CloseNow()
	return ce
}

// writeFrame writes payload (at most 125 bytes: the client writes control frames
// only) as one final, masked frame of opcode op.
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	if len(payload) > 125 {
		return fmt.Errorf("websocket: a control frame of %d bytes", len(payload))
	}
	var f [2 + 4 + 125]byte
	f[0] = 0x80 | op
	f[1] = 0x80 | byte(len(payload))
	binary.LittleEndian.PutUint32(f[2:6], rand.Uint32())
	mask := f[2:6]
	for i, b := range payload {
		f[6+i] = b ^ mask[i&3]
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	_, err := c.nc.Write(f[:6+len(payload)])
	return err
}

// SetReadDeadline bounds the reads under way and to come (zero: no bound).
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// CloseNow closes the connection without a close handshake.
func (c *wsConn) CloseNow() error { return c.nc.Close() }

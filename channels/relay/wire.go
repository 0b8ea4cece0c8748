package relay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// The hub speaks the websocket protocol itself once coder/websocket has done the
// handshake (Accept: the origin check, the upgrade's headers, the hijack). A
// connection then costs its conn, a reader goroutine that parks with a minimal stack,
// and no buffer: the library's Conn (its state, locks, buffers and the goroutine its
// reads need) is let go. Data frames are framed once for every connection (like the
// payload is encoded once), each write is one syscall of framed bytes, and a write is
// bounded by a deadline on the connection rather than a context and a timer.
//
// The server side of RFC 6455 that a push socket needs: unmasked frames out (text,
// ping, pong, close), masked frames in (pongs, the client's small requests, its
// pings and its close), the close handshake both ways.

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
	finBit         = 0x80
)

// pingFrame is a websocket ping with no payload, as the server sends it (unmasked).
var pingFrame = []byte{finBit | opPing, 0x00}

// appendFrame appends payload as one unmasked, final text frame.
func appendFrame(dst, payload []byte) []byte {
	return appendFrameOp(dst, opText, payload)
}

// appendFrameOp appends payload as one unmasked, final frame of opcode op: the
// server side of RFC 6455, section 5.2.
func appendFrameOp(dst []byte, op byte, payload []byte) []byte {
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, finBit|op, byte(n))
	case n <= 0xffff:
		dst = append(dst, finBit|op, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, finBit|op, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// closeFrame is a close frame with code and reason (at most 123 bytes; longer is cut).
// StatusNoStatusRcvd, which never travels, sends a close frame without a status.
func closeFrame(code websocket.StatusCode, reason string) []byte {
	if code == websocket.StatusNoStatusRcvd {
		return []byte{finBit | opClose, 0}
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	p = append(p, reason[:min(len(reason), 123)]...)
	return appendFrameOp(make([]byte, 0, 2+len(p)), opClose, p)
}

// textFrame is payload framed, in a slice of its own.
func textFrame(payload []byte) []byte {
	return appendFrame(make([]byte, 0, len(payload)+10), payload)
}

// coalesceSize is the buffer several small frames are copied into to go out in one
// write. It is borrowed from a pool for the write only, never held by a connection.
const coalesceSize = 16 << 10

var coalesceBuffers = sync.Pool{New: func() any { b := make([]byte, 0, coalesceSize); return &b }}

// writeFrames writes framed frames in order, as few writes as it takes: one for a
// single frame, and for several one per coalesceSize of them (a frame that large
// goes out on its own). Not writev: the runtime keeps a connection's largest iovec
// array for the connection's life.
func writeFrames(w io.Writer, frames [][]byte) error {
	if len(frames) == 1 {
		_, err := w.Write(frames[0])
		return err
	}
	bp := coalesceBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		*bp = buf[:0]
		coalesceBuffers.Put(bp)
	}()
	for _, f := range frames {
		if len(buf)+len(f) > coalesceSize && len(buf) > 0 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if len(f) >= coalesceSize {
			if _, err := w.Write(f); err != nil {
				return err
			}
			continue
		}
		buf = append(buf, f...)
	}
	if len(buf) > 0 {
		_, err := w.Write(buf)
		return err
	}
	return nil
}

// smallHijack is the http.ResponseWriter handed to websocket.Accept. Its Hijack keeps
// the connection for the hub and gives the library, whose Conn the hub lets go, a
// connection whose Close does nothing and buffers of the smallest size, so the HTTP
// server's 4 KiB reader and writer are not kept either.
type smallHijack struct {
	http.ResponseWriter
	conn net.Conn // set by Hijack
	// in is what the hub reads the client's frames from: the connection, after any
	// bytes the server had read past the request (a client may send its first frames
	// before the upgrade's answer).
	in io.Reader
}

func (w *smallHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn, w.in = conn, conn
	if n := brw.Reader.Buffered(); n > 0 {
		carried, _ := brw.Reader.Peek(n)
		w.in = io.MultiReader(bytes.NewReader(bytes.Clone(carried)), conn)
	}
	lib := libraryConn{conn}
	return lib, bufio.NewReadWriter(bufio.NewReaderSize(lib, 16), bufio.NewWriterSize(lib, 16)), nil
}

// libraryConn is the connection as the websocket library holds it: the hub closes
// the library's Conn right after Accept (which takes its finalizer away), and that
// close must not close the connection, which is the hub's.
type libraryConn struct{ net.Conn }

func (libraryConn) Close() error { return nil }

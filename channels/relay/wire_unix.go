//go:build unix

package relay

import "syscall"

// writeNonBlocking writes what the socket takes of frame now, without waiting for
// room: n is how much. A full socket is not an error (n is 0).
func writeNonBlocking(rc syscall.RawConn, frame []byte) (n int, err error) {
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for n < len(frame) {
			var m int
			m, werr = syscall.Write(int(fd), frame[n:])
			if werr == syscall.EINTR {
				continue
			}
			if m <= 0 || werr != nil {
				break
			}
			n += m
		}
		return true // never wait
	})
	switch {
	case err != nil:
		return n, err
	case werr == syscall.EAGAIN:
		return n, nil
	}
	return n, werr
}

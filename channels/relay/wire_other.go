//go:build !unix

package relay

import "syscall"

// writeNonBlocking writes nothing where the hub does not know how to write without
// blocking: every frame goes to a writer goroutine.
func writeNonBlocking(syscall.RawConn, []byte) (int, error) { return 0, nil }

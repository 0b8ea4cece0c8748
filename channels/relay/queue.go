package relay

import "sync"

// keepFrames is the most slots a queue keeps between bursts: a burst may grow a queue
// to its bound, but an idle connection should not keep paying for that.
const keepFrames = 8

// frameQueue is a connection's bounded queue of frames waiting for its writer. It holds
// no storage until a frame waits and grows with the backlog up to its bound, so an idle
// connection costs a few words instead of a buffer of the bound. push never blocks: the
// fan-out goroutine calls it. One goroutine takes.
type frameQueue struct {
	mu     sync.Mutex
	frames [][]byte
	limit  int
	ready  chan struct{} // capacity 1: a token whenever frames may be waiting
}

func newFrameQueue(limit int) frameQueue {
	return frameQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push appends frame, or reports false without it if limit frames already wait.
func (q *frameQueue) push(frame []byte) bool {
	q.mu.Lock()
	if len(q.frames) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.frames = append(q.frames, frame)
	first := len(q.frames) == 1
	q.mu.Unlock()
	if first {
		// Only the first frame after a take signals: the taker takes everything that
		// waits, and a pending token already stands for this frame too.
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return true
}

// take returns every waiting frame, in the order pushed, and leaves the queue empty.
// It reuses batch, the slice the previous take returned (its frames must be done
// with): the two slices swap, so a busy connection does not allocate per batch.
func (q *frameQueue) take(batch [][]byte) [][]byte {
	batch = release(batch)
	q.mu.Lock()
	batch, q.frames = q.frames, batch[:0]
	q.mu.Unlock()
	return batch
}

// release lets the frames of a written batch go and drops its storage if a burst grew
// it, so a taker about to wait pins neither.
func release(batch [][]byte) [][]byte {
	clear(batch)
	if cap(batch) > keepFrames {
		return nil
	}
	return batch[:0]
}

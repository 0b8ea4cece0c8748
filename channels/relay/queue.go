package relay

import "sync"

// keepFrames is the most slots a queue keeps between bursts: a burst may grow a queue
// to its bound, but an idle connection should not keep paying for that.
const keepFrames = 8

// frameQueue is a connection's bounded queue of frames and the ownership of its write
// side. It holds no storage until a frame waits and grows with the backlog up to its
// bound, so an idle connection costs a few words instead of a buffer of the bound.
// push never blocks: the fan-out goroutine calls it.
//
// Exactly one holder writes to the connection at a time: the writer goroutine, which
// exists only while frames wait (push says when to start one, take says when it is
// done), or whoever acquired the write side (the hello, a resume, the close). So an
// idle connection has no writer goroutine at all, and a frame costs no wake-up of one.
type frameQueue struct {
	mu      sync.Mutex
	frames  [][]byte
	limit   int
	writing bool          // someone holds the write side
	closing bool          // the connection is being dropped: nothing more is queued or written
	handoff chan struct{} // made by someone waiting for the write side; closed when it is free
}

// turn is what the holder of the write side does next.
type turn int

const (
	turnWrite turn = iota // write the frames taken, then take again
	turnDone              // nothing waits: the write side is let go
	turnClose             // the connection is being dropped: the holder keeps the write side and closes
)

// newFrameQueue returns a queue whose write side is held by its creator: frames
// pushed before the creator releases it (the hello goes first) wait.
func newFrameQueue(limit int) frameQueue {
	return frameQueue{limit: limit, writing: true}
}

// push appends frame, or reports ok false without it if limit frames already wait.
// start reports that nobody held the write side: the caller now holds it and must
// start a writer. A closing queue takes frames silently: nobody will write them.
func (q *frameQueue) push(frame []byte) (ok, start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return true, false
	}
	if len(q.frames) >= q.limit {
		return false, false
	}
	q.frames = append(q.frames, frame)
	start = !q.writing
	q.writing = true
	return true, start
}

// take is for the holder of the write side: it returns every waiting frame, in the
// order pushed, and leaves the queue empty (turnWrite), or lets the write side go
// when nothing waits or someone waits for it (turnDone), or says the connection is
// closing (turnClose, the holder keeps the write side). It reuses batch, the slice
// the previous take returned (its frames must be done with): the two slices swap,
// so a busy connection does not allocate per batch.
func (q *frameQueue) take(batch [][]byte) ([][]byte, turn) {
	batch = release(batch)
	q.mu.Lock()
	defer q.mu.Unlock()
	if t := q.next(); t != turnWrite {
		return batch, t
	}
	batch, q.frames = q.frames, batch[:0]
	return batch, turnWrite
}

// takeOne is take for a holder that writes without blocking: it takes the one frame
// that waits, or reports false, taking nothing, if there are more or none, or the
// holder must do something else (take tells what). The queue keeps its storage: a
// connection that gets a frame at a time does not allocate for it.
func (q *frameQueue) takeOne() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) != 1 || q.closing || q.handoff != nil {
		return nil, false
	}
	frame := q.frames[0]
	q.frames[0] = nil
	q.frames = q.frames[:0]
	return frame, true
}

// unshift puts back, ahead of the frames that wait, what the holder could not write
// yet. The bound is not checked: those frames were accepted already.
func (q *frameQueue) unshift(frame []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return
	}
	q.frames = append(q.frames, nil)
	copy(q.frames[1:], q.frames)
	q.frames[0] = frame
}

// release is take without taking: the holder of the write side is done with it.
// turnWrite means frames wait and the caller, still holding it, must start a writer.
func (q *frameQueue) release() turn {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.next()
}

// next decides the holder's next turn; q.mu is held.
func (q *frameQueue) next() turn {
	switch {
	case q.closing:
		q.frames = release(q.frames)
		return turnClose
	case q.handoff != nil:
		// Hand over even with frames waiting: whoever waits (a resume) must not starve
		// behind a steady stream; it starts a writer for them when it is done.
		q.writing = false
		close(q.handoff)
		q.handoff = nil
		return turnDone
	case len(q.frames) == 0:
		q.writing = false
		if cap(q.frames) > keepFrames {
			q.frames = nil
		}
		return turnDone
	}
	return turnWrite
}

// acquire waits until the caller holds the write side. It reports false, without
// it, once the connection is closing. One caller waits at a time (the reader).
func (q *frameQueue) acquire() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.writing && !q.closing {
		if q.handoff == nil {
			q.handoff = make(chan struct{})
		}
		wait := q.handoff
		q.mu.Unlock()
		<-wait
		q.mu.Lock()
	}
	if q.closing {
		return false
	}
	q.writing = true
	return true
}

// close marks the queue closing; first reports whether this call did. acquired
// reports that nobody held the write side: the caller now holds it and must close
// the connection; else the holder closes it when it next takes or releases.
func (q *frameQueue) close() (first, acquired bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return false, false
	}
	q.closing = true
	if q.handoff != nil { // a waiter gives up
		close(q.handoff)
		q.handoff = nil
	}
	acquired = !q.writing
	q.writing = true
	return true, acquired
}

// isClosing reports whether close was called.
func (q *frameQueue) isClosing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing
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

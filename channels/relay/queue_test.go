package relay

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kommo-notify/notify/events/token"
)

func frameOf(producer, n int) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, uint32(producer)), uint32(n))
}

func TestFrameQueueOrderAndBound(t *testing.T) {
	q := newFrameQueue(4)
	if q.frames != nil {
		t.Fatal("an empty queue holds storage")
	}
	// A new queue's write side is its creator's (the hello goes first): pushes wait.
	if ok, start := q.push(frameOf(0, 0)); !ok || start {
		t.Fatalf("push before the release: ok %v, start %v", ok, start)
	}
	if next := q.release(); next != turnWrite {
		t.Fatalf("release with a frame waiting: %v, want turnWrite", next)
	}
	var batch [][]byte
	batch, next := q.take(batch)
	if next != turnWrite || len(batch) != 1 || !slices.Equal(batch[0], frameOf(0, 0)) {
		t.Fatalf("took %v (%v)", batch, next)
	}
	if batch, next = q.take(batch); next != turnDone || len(batch) != 0 {
		t.Fatalf("take of an empty queue: %v (%v), want turnDone", batch, next)
	}

	want := [][]byte{}
	for i := range 4 {
		ok, start := q.push(frameOf(0, i))
		if !ok {
			t.Fatalf("push %d refused below the bound", i)
		}
		// Only the first frame after the writer let go starts one: one writer at a time.
		if start != (i == 0) {
			t.Fatalf("push %d: start %v", i, start)
		}
		want = append(want, frameOf(0, i))
	}
	if ok, start := q.push(frameOf(0, 4)); ok || start {
		t.Fatal("push accepted above the bound")
	}
	batch, next = q.take(batch)
	if next != turnWrite || !slices.EqualFunc(batch, want, slices.Equal) {
		t.Fatalf("took %v (%v), want %v", batch, next, want)
	}
	// Taken frames no longer count against the bound, and the order goes on; the
	// writer still holds the write side, so nobody else starts one.
	for i := range 3 {
		if ok, start := q.push(frameOf(0, 10+i)); !ok || start {
			t.Fatalf("push %d after a take: ok %v, start %v", i, ok, start)
		}
	}
	batch, next = q.take(batch)
	if next != turnWrite || len(batch) != 3 || !slices.Equal(batch[0], frameOf(0, 10)) || !slices.Equal(batch[2], frameOf(0, 12)) {
		t.Fatalf("second batch %v (%v)", batch, next)
	}
	if batch, next = q.take(batch); len(batch) != 0 || next != turnDone {
		t.Fatalf("take of an empty queue returned %v (%v)", batch, next)
	}
	if _, start := q.push(frameOf(0, 20)); !start {
		t.Fatal("the first push after the writer let go starts none")
	}
}

func TestFrameQueueBurstStorageIsLetGo(t *testing.T) {
	q := newFrameQueue(256)
	for i := range 256 {
		q.push(frameOf(0, i))
	}
	batch, _ := q.take(nil)
	if len(batch) != 256 {
		t.Fatalf("took %d frames", len(batch))
	}
	if batch = release(batch); batch != nil {
		t.Errorf("a released burst keeps %d slots", cap(batch))
	}
	q.push(frameOf(0, 0))
	if batch, _ = q.take(batch); cap(q.frames) > keepFrames {
		t.Errorf("an idle queue keeps %d slots", cap(q.frames))
	}
	if _, next := q.take(batch); next != turnDone || cap(q.frames) > keepFrames {
		t.Errorf("a queue let go keeps %d slots (%v)", cap(q.frames), next)
	}
}

// TestFrameQueueConcurrent pushes from several goroutines while writers take, each
// started by the push that said so (the hub has one pusher, the fan-out goroutine;
// several press harder on the hand-over): every accepted frame arrives once, each
// producer's in order, no two writers ever run at once, and the last frame is not
// stranded without a writer.
func TestFrameQueueConcurrent(t *testing.T) {
	const producers, each, limit = 4, 5000, 64
	q := newFrameQueue(limit)
	q.release()
	accepted := make([][]int, producers)
	var (
		mu      sync.Mutex
		got     = make([][]int, producers)
		running atomic.Int32
		writers sync.WaitGroup
		failed  atomic.Value
	)
	writer := func() {
		defer writers.Done()
		if running.Add(1) != 1 {
			failed.Store("two writers at once")
		}
		var batch [][]byte
		for {
			var next turn
			batch, next = q.take(batch)
			if next != turnWrite {
				running.Add(-1)
				return
			}
			if len(batch) > limit {
				failed.Store(fmt.Sprintf("a batch of %d frames above the bound %d", len(batch), limit))
			}
			mu.Lock()
			for _, f := range batch {
				p, n := int(binary.BigEndian.Uint32(f)), int(binary.BigEndian.Uint32(f[4:]))
				got[p] = append(got[p], n)
			}
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for n := range each {
				ok, start := q.push(frameOf(p, n))
				if ok {
					accepted[p] = append(accepted[p], n)
				}
				if start {
					writers.Add(1)
					go writer()
				}
			}
		})
	}
	wg.Wait()
	writers.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
	if len(q.frames) != 0 {
		t.Fatalf("%d frames stranded without a writer", len(q.frames))
	}
	for p := range producers {
		if !slices.Equal(got[p], accepted[p]) {
			t.Errorf("producer %d: took %d frames, accepted %d, or out of order", p, len(got[p]), len(accepted[p]))
		}
	}
}

// TestFrameQueueHandOver: someone waiting for the write side (a resume) gets it from
// a busy writer at its next take, frames still waiting; letting it go asks for a
// writer for them. A close wakes a waiter without it, and the holder closes.
func TestFrameQueueHandOver(t *testing.T) {
	q := newFrameQueue(8)
	q.release()
	q.push(frameOf(0, 0)) // a writer holds the write side now
	got := make(chan bool)
	go func() { got <- q.acquire() }()
	waitUntil(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.handoff != nil })
	q.push(frameOf(0, 1))
	if _, next := q.take(nil); next != turnDone {
		t.Fatalf("the writer kept the write side from a waiter: %v", next)
	}
	if !<-got {
		t.Fatal("the waiter did not get the write side")
	}
	if _, start := q.push(frameOf(0, 2)); start {
		t.Fatal("a push started a writer while the waiter holds the write side")
	}
	if next := q.release(); next != turnWrite {
		t.Fatalf("release with frames waiting: %v, want turnWrite", next)
	}
	// The writer it asked for holds it; a close wakes the next waiter empty-handed.
	go func() { got <- q.acquire() }()
	waitUntil(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return q.handoff != nil })
	if first, acquired := q.close(); !first || acquired {
		t.Fatalf("close: first %v, acquired %v", first, acquired)
	}
	if <-got {
		t.Fatal("a waiter got the write side of a closing queue")
	}
	if first, _ := q.close(); first {
		t.Fatal("a second close was the first")
	}
	if batch, next := q.take(nil); next != turnClose || len(batch) != 0 {
		t.Fatalf("the holder's take on a closing queue: %v (%v), want turnClose", batch, next)
	}
	if ok, start := q.push(frameOf(0, 3)); !ok || start {
		t.Fatalf("push on a closing queue: ok %v, start %v", ok, start)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

func total(s [][]int) int {
	n := 0
	for _, x := range s {
		n += len(x)
	}
	return n
}

// TestEnqueueAboveTheBoundDropsTheClient: a full queue is a slow client, closed with
// a policy violation; it takes nothing more.
func TestEnqueueAboveTheBoundDropsTheClient(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := &Hub{cfg: HubConfig{QueueSize: 3}, log: slog.New(slog.DiscardHandler), metrics: newHubMetrics(reg, func() float64 { return 0 })}
	c := newConn(h, nil, token.User{Account: "acme", User: "42"})
	for i := range 3 {
		c.enqueue(frameOf(0, i))
	}
	if c.dropped() {
		t.Fatal("dropped at the bound")
	}
	c.enqueue(frameOf(0, 3))
	if !c.dropped() {
		t.Fatal("not dropped above the bound")
	}
	if c.closeCode != websocket.StatusPolicyViolation {
		t.Errorf("close code %v", c.closeCode)
	}
	if got := testutil.ToFloat64(h.metrics.dropped[dropSlow]); got != 1 {
		t.Errorf("dropped{slow} = %v", got)
	}
	c.enqueue(frameOf(0, 4))
	if got := len(c.queue.frames); got != 3 {
		t.Errorf("%d frames queued, want the 3 taken before the drop", got)
	}
	// The hello's holder, letting the write side go, is told to close.
	if _, next := c.queue.take(nil); next != turnClose {
		t.Errorf("take after the drop: %v, want turnClose", next)
	}
}

// TestFrameQueueTakeOneAndUnshift: a holder that writes without blocking takes the one
// frame that waits (never several, nor on a closing queue or a waiting hand-over), and
// what it could not write goes back ahead of the frames queued meanwhile.
func TestFrameQueueTakeOneAndUnshift(t *testing.T) {
	q := newFrameQueue(8)
	q.release()
	if _, ok := q.takeOne(); ok {
		t.Fatal("took one from an empty queue")
	}
	q.push(frameOf(0, 0))
	f, ok := q.takeOne()
	if !ok || !slices.Equal(f, frameOf(0, 0)) || len(q.frames) != 0 {
		t.Fatalf("takeOne: %v %v, %d left", f, ok, len(q.frames))
	}
	q.push(frameOf(0, 1)) // queued while the holder writes
	q.unshift(f[4:])      // the part of frame 0 the socket did not take
	batch, next := q.take(nil)
	if next != turnWrite || len(batch) != 2 || !slices.Equal(batch[0], frameOf(0, 0)[4:]) || !slices.Equal(batch[1], frameOf(0, 1)) {
		t.Fatalf("after unshift took %v (%v)", batch, next)
	}
	q.push(frameOf(0, 2))
	q.push(frameOf(0, 3))
	if _, ok := q.takeOne(); ok {
		t.Fatal("took one of two")
	}
	q.close()
	if _, ok := q.takeOne(); ok {
		t.Fatal("took one from a closing queue")
	}
	q.unshift(frameOf(0, 4))
	if _, next := q.take(nil); next != turnClose {
		t.Fatalf("take on a closing queue: %v", next)
	}
	if len(q.frames) != 0 {
		t.Fatalf("a closing queue keeps %d frames", len(q.frames))
	}
}

package relay

import (
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
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
	var batch [][]byte
	want := [][]byte{}
	for i := range 4 {
		if !q.push(frameOf(0, i)) {
			t.Fatalf("push %d refused below the bound", i)
		}
		want = append(want, frameOf(0, i))
	}
	if q.push(frameOf(0, 4)) {
		t.Fatal("push accepted above the bound")
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("no ready token after pushes")
	}
	select {
	case <-q.ready:
		t.Fatal("more than one token for one batch")
	default:
	}
	batch = q.take(batch)
	if !slices.EqualFunc(batch, want, slices.Equal) {
		t.Fatalf("took %v, want %v", batch, want)
	}
	// Taken frames no longer count against the bound, and the order goes on.
	for i := range 3 {
		if !q.push(frameOf(0, 10+i)) {
			t.Fatalf("push %d refused after a take", i)
		}
	}
	<-q.ready
	batch = q.take(batch)
	if len(batch) != 3 || !slices.Equal(batch[0], frameOf(0, 10)) || !slices.Equal(batch[2], frameOf(0, 12)) {
		t.Fatalf("second batch %v", batch)
	}
	if batch = q.take(batch); len(batch) != 0 {
		t.Fatalf("take of an empty queue returned %v", batch)
	}
}

func TestFrameQueueBurstStorageIsLetGo(t *testing.T) {
	q := newFrameQueue(256)
	for i := range 256 {
		q.push(frameOf(0, i))
	}
	batch := q.take(nil)
	if len(batch) != 256 {
		t.Fatalf("took %d frames", len(batch))
	}
	if batch = release(batch); batch != nil {
		t.Errorf("a released burst keeps %d slots", cap(batch))
	}
	q.push(frameOf(0, 0))
	if batch = q.take(batch); cap(q.frames) > keepFrames {
		t.Errorf("an idle queue keeps %d slots", cap(q.frames))
	}
}

// TestFrameQueueConcurrent pushes from several goroutines while one takes (the hub
// has one pusher, the fan-out goroutine; several press harder on the token): every accepted frame arrives once, each producer's in order, and the last one is not
// stranded without a token.
func TestFrameQueueConcurrent(t *testing.T) {
	const producers, each, limit = 4, 5000, 64
	q := newFrameQueue(limit)
	accepted := make([][]int, producers)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for n := range each {
				if q.push(frameOf(p, n)) {
					accepted[p] = append(accepted[p], n)
				}
			}
		})
	}
	pushed := make(chan struct{})
	go func() { wg.Wait(); close(pushed) }()

	got := make([][]int, producers)
	var batch [][]byte
	deadline := time.After(10 * time.Second)
	finished := false
	for {
		select {
		case <-q.ready:
		case <-pushed:
			pushed = nil
			finished = true
		case <-deadline:
			t.Fatal("frames stranded without a ready token")
		}
		batch = q.take(batch)
		if len(batch) > limit {
			t.Fatalf("a batch of %d frames above the bound %d", len(batch), limit)
		}
		for _, f := range batch {
			p, n := int(binary.BigEndian.Uint32(f)), int(binary.BigEndian.Uint32(f[4:]))
			got[p] = append(got[p], n)
		}
		batch = release(batch)
		if finished && total(got) == total(accepted) {
			break
		}
		if finished && total(got) > total(accepted) {
			t.Fatal("more frames taken than accepted")
		}
	}
	for p := range producers {
		if !slices.Equal(got[p], accepted[p]) {
			t.Errorf("producer %d: took %d frames, accepted %d, or out of order", p, len(got[p]), len(accepted[p]))
		}
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
	h := &Hub{cfg: HubConfig{QueueSize: 3}, log: slog.New(slog.DiscardHandler), metrics: newHubMetrics(reg)}
	c := newConn(h, nil, token.User{Account: "acme", User: "42"})
	for i := range 3 {
		c.enqueue(frameOf(0, i))
	}
	select {
	case <-c.done:
		t.Fatal("dropped at the bound")
	default:
	}
	c.enqueue(frameOf(0, 3))
	select {
	case <-c.done:
	default:
		t.Fatal("not dropped above the bound")
	}
	if c.closeCode != websocket.StatusPolicyViolation {
		t.Errorf("close code %v", c.closeCode)
	}
	if got := testutil.ToFloat64(h.metrics.dropped[dropSlow]); got != 1 {
		t.Errorf("dropped{slow} = %v", got)
	}
	c.enqueue(frameOf(0, 4))
	if got := len(c.queue.take(nil)); got != 3 {
		t.Errorf("%d frames queued, want the 3 taken before the drop", got)
	}
}

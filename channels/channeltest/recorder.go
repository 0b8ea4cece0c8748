// Package channeltest holds test kits for channels and the router: a Recorder channel
// that keeps what it was asked to deliver and answers with scripted errors.
package channeltest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels"
)

// Recorder is a channel that records deliveries. Its Script, when set, decides each
// Send's error. It is safe for concurrent use.
type Recorder struct {
	name string
	// Script returns the error for a delivery; nil Script delivers everything. It gets
	// Send's context, so it can block the way a slow provider would.
	Script func(ctx context.Context, d *channels.Delivery) error
	// Broadcast and LiveOnly make the recorder stand in for a channel like the relay
	// (channels.Broadcaster, channels.Live).
	Broadcast, LiveOnly bool
	// InFlight, when above 0, is the recorder's channels.Concurrent answer.
	InFlight int

	mu     sync.Mutex
	got    []channels.Delivery
	change chan struct{} // closed and replaced on every Send
}

var (
	_ channels.Channel     = (*Recorder)(nil)
	_ channels.Broadcaster = (*Recorder)(nil)
	_ channels.Live        = (*Recorder)(nil)
	_ channels.Concurrent  = (*Recorder)(nil)
)

// NewRecorder returns a recorder answering to name.
func NewRecorder(name string) *Recorder {
	return &Recorder{name: name, change: make(chan struct{})}
}

// Name is the channel name given to NewRecorder.
func (r *Recorder) Name() string { return r.name }

// Broadcasts reports the Broadcast field.
func (r *Recorder) Broadcasts() bool { return r.Broadcast }

// Live reports the LiveOnly field.
func (r *Recorder) Live() bool { return r.LiveOnly }

// Concurrency reports the InFlight field; 0 leaves the router's default.
func (r *Recorder) Concurrency() int { return r.InFlight }

// Send records d and returns the scripted error.
func (r *Recorder) Send(ctx context.Context, d *channels.Delivery) error {
	var err error
	if r.Script != nil {
		err = r.Script(ctx, d)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, *d)
	close(r.change)
	r.change = make(chan struct{})
	return err
}

// Deliveries returns a copy of every delivery so far, in call order.
func (r *Recorder) Deliveries() []channels.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]channels.Delivery(nil), r.got...)
}

// WaitFor waits until cond holds for the deliveries so far, failing the test after
// timeout. It wakes on every Send instead of polling.
func (r *Recorder) WaitFor(t testing.TB, timeout time.Duration, cond func([]channels.Delivery) bool) []channels.Delivery {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got := append([]channels.Delivery(nil), r.got...)
		change := r.change
		r.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-change:
		case <-deadline.C:
			t.Fatalf("channeltest: %s: condition not met after %s; %d deliveries", r.name, timeout, len(got))
			return nil
		}
	}
}

// WaitN waits until at least n deliveries were made and returns them.
func (r *Recorder) WaitN(t testing.TB, timeout time.Duration, n int) []channels.Delivery {
	t.Helper()
	return r.WaitFor(t, timeout, func(d []channels.Delivery) bool { return len(d) >= n })
}

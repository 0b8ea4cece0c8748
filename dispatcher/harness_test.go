package dispatcher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/channeltest"
	"github.com/kommo-notify/notify/events/natstest"
)

const waitLong = 10 * time.Second

// rig is a running dispatcher over a real JetStream server, with a recording channel
// in place of every medium.
type rig struct {
	srv  *natstest.Server
	nc   *nats.Conn // the test's own connection, for publishing
	js   jetstream.JetStream
	rec  map[string]*channeltest.Recorder
	reg  *prometheus.Registry
	d    *Dispatcher
	stop context.CancelFunc
	done chan error
	// prepare, when set, changes each dispatcher after New and before Run.
	prepare func(*Dispatcher)
}

// newRig starts a server and a dispatcher; adjust may change the config first.
func newRig(t *testing.T, adjust func(*Config)) *rig {
	t.Helper()
	srv := natstest.Start(t)
	r := &rig{srv: srv, nc: srv.Conn(t)}
	var err error
	if r.js, err = jetstream.New(r.nc); err != nil {
		t.Fatal(err)
	}
	r.startDispatcher(t, adjust)
	return r
}

// startDispatcher runs a dispatcher with fresh recorders on its own connection and
// waits until it routes.
func (r *rig) startDispatcher(t *testing.T, adjust func(*Config)) {
	t.Helper()
	r.rec = map[string]*channeltest.Recorder{}
	var chans []channels.Channel
	for _, name := range requiredChannels() {
		rec := channeltest.NewRecorder(name)
		rec.Broadcast = name == channels.Relay
		rec.LiveOnly = name == channels.Relay
		r.rec[name] = rec
		chans = append(chans, rec)
	}
	r.reg = prometheus.NewRegistry()
	cfg := Config{
		Channels:       chans,
		Registerer:     r.reg,
		RetryBase:      10 * time.Millisecond,
		RetryMax:       50 * time.Millisecond,
		SampleInterval: 50 * time.Millisecond,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	d, err := New(r.srv.Conn(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.prepare != nil {
		r.prepare(d)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r.d, r.stop, r.done = d, cancel, make(chan error, 1)
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stopDispatcher(t) })
	waitUntil(t, func() bool { return d.Ready() == nil })
}

// stopDispatcher ends Run and waits for it; calling it twice is harmless.
func (r *rig) stopDispatcher(t *testing.T) {
	t.Helper()
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	select {
	case err := <-r.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Run did not return after cancel")
	}
}

// waitUntil polls cond with a deadline; for state with no change notification.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		<-tick.C
	}
}

// publishJS publishes a durable event through JetStream with an optional Msg-Id.
func (r *rig) publishJS(t *testing.T, subject, id, body string) *jetstream.PubAck {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	if id != "" {
		msg.Header.Set(jetstream.MsgIDHeader, id)
	}
	ack, err := r.js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack
}

// dlq reads every dead letter so far.
func (r *rig) dlq(t *testing.T) []jetstream.RawStreamMsg {
	t.Helper()
	s, err := r.js.Stream(t.Context(), DLQStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, *m)
	}
	return out
}

// waitDLQ waits for n dead letters.
func (r *rig) waitDLQ(t *testing.T, n int) []jetstream.RawStreamMsg {
	t.Helper()
	var got []jetstream.RawStreamMsg
	waitUntil(t, func() bool { got = r.dlq(t); return len(got) >= n })
	return got
}

package dispatcher

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events/natstest"
)

// A durable event is acknowledged only once the status records of its deliveries
// are stored: a sent record is the delivery's idempotency record, and an event
// acknowledged before it would be sent again after a crash. Here the records go to
// a subject where the test holds each a moment: the event stays unacknowledged on
// the record's channel until the test stores the record in the real bucket.
func TestDurableEventAcknowledgedOnlyAfterItsRecords(t *testing.T) {
	srv := natstest.Start(t)
	r := &rig{srv: srv, nc: srv.Conn(t)}
	var err error
	if r.js, err = jetstream.New(r.nc); err != nil {
		t.Fatal(err)
	}
	held := make(chan *nats.Msg, 16)
	sub, err := r.nc.ChanSubscribe("$KV.HELD.>", held)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	r.prepare = func(d *Dispatcher) { d.statusWrites = newStatusWrites(d.nc, "HELD") }
	r.startDispatcher(t, nil)

	ackPending := func(consumer string) (int, uint64) {
		info, err := r.js.Consumer(t.Context(), StreamName, consumer)
		if err != nil {
			t.Fatal(err)
		}
		ci := info.CachedInfo()
		return ci.NumAckPending, ci.NumPending
	}
	r.publishJS(t, "notify.acme.42.add_error", "held-1", addError)
	channels := Routes["add_error"]
	for range channels {
		var m *nats.Msg
		select {
		case m = <-held:
		case <-time.After(waitLong):
			t.Fatal("a status record was not written")
		}
		key := strings.TrimPrefix(m.Subject, "$KV.HELD.")
		channel := strings.Split(key, ".")[1]
		time.Sleep(100 * time.Millisecond) // an acknowledgement that did not wait would be in by now
		if n, _ := ackPending(channel); n != 1 {
			t.Errorf("%s: %d unacknowledged while its record is not stored, want 1", channel, n)
		}
		// Store the record in the real bucket, with its reply subject: the dispatcher
		// hears the bucket's own acknowledgement.
		if err := r.nc.PublishRequest("$KV."+StatusBucket+"."+key, m.Reply, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range channels {
		waitUntil(t, func() bool {
			acks, pending := ackPending(name)
			return acks == 0 && pending == 0
		})
	}
	st, err := r.d.EventStatus(t.Context(), "held-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range st.Deliveries {
		if dl.State != StateSent {
			t.Errorf("%s: %s, want sent", dl.Channel, dl.State)
		}
	}
}

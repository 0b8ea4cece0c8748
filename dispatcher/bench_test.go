package dispatcher

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events/natstest"
)

// benchPopup is the show_message of `notify bench popup`: the seed's pop-up with an icon.
const benchPopup = `{"header":"Warning","text":"Connection to the telephony server established: 18 calls are waiting in the queue","icon":"https://crm.example.com/static/icons/phone.png"}`

// nopChannel delivers nothing and answers at once: what is left is the router's own
// work. As the relay it broadcasts and is live.
type nopChannel string

func (c nopChannel) Name() string                                 { return string(c) }
func (nopChannel) Send(context.Context, *channels.Delivery) error { return nil }
func (nopChannel) Broadcasts() bool                               { return true }
func (nopChannel) Live() bool                                     { return true }

// BenchmarkRoutePopup routes one pop-up as the router's subscription handler does
// (decode and validate, the dedup of its Nats-Msg-Id, the routing table, the send to
// the relay, the metrics), with a relay that does nothing and no reply subject, so no
// network is involved. The relay's own work (encoding the frame once, one publish) is
// channels/relay's BenchmarkEncodePopup.
//
//	go test -run '^$' -bench RoutePopup -benchmem ./dispatcher/
func BenchmarkRoutePopup(b *testing.B) {
	d, _ := benchDispatcher(b)
	ctx := b.Context()
	m := &nats.Msg{Subject: "notify.acme.42.show_message", Header: nats.Header{}, Data: []byte(benchPopup)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		m.Header.Set(jetstream.MsgIDHeader, "bench-"+strconv.Itoa(i)) // a new event each time, as a producer's
		d.routePopup(ctx, m)
	}
}

// BenchmarkDecodePopup is the first step of BenchmarkRoutePopup alone: the subject,
// the id and the payload's validation and canonical encoding.
func BenchmarkDecodePopup(b *testing.B) {
	hdr := nats.Header{jetstream.MsgIDHeader: []string{"bench-1"}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decode("notify.acme.42.show_message", hdr, []byte(benchPopup), now, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// benchDispatcher is a dispatcher whose channels do nothing, on a server of its own.
// New makes no request: until Run the server is only there to give it a connection.
func benchDispatcher(b *testing.B) (*Dispatcher, *natstest.Server) {
	b.Helper()
	srv := natstest.Start(b)
	var chans []channels.Channel
	for _, name := range requiredChannels() {
		chans = append(chans, nopChannel(name))
	}
	d, err := New(srv.Conn(b), Config{Channels: chans})
	if err != nil {
		b.Fatal(err)
	}
	return d, srv
}

// BenchmarkDurable routes add_error events through the durable path: NOTIFY, the four
// channel consumers with channels that send nothing, a status record per delivery
// and the acknowledgements. The events are published asynchronously up front and
// the benchmark ends when every consumer has acknowledged them all, so ns/op is the
// time per event at full speed. The server is embedded: its CPU and allocations
// count too (`notify bench durable` measures the processes apart).
//
//	go test -run '^$' -bench Durable -benchmem ./dispatcher/
func BenchmarkDurable(b *testing.B) {
	d, srv := benchDispatcher(b)
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for d.Ready() != nil {
		time.Sleep(5 * time.Millisecond)
	}
	nc := srv.Conn(b)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	idle := func() bool {
		for _, name := range durableChannels() {
			c, err := js.Consumer(ctx, StreamName, name)
			if err != nil {
				b.Fatal(err)
			}
			info := c.CachedInfo()
			if info.NumPending+uint64(info.NumAckPending) > 0 {
				return false
			}
		}
		return true
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := nats.NewMsg("notify.acme.u" + strconv.Itoa(i%1000) + ".add_error")
		m.Header.Set(jetstream.MsgIDHeader, "bench-durable-"+strconv.Itoa(i))
		m.Data = []byte(addError)
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged")
	}
	for !idle() {
		time.Sleep(time.Millisecond)
	}
}

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
	d := benchDispatcher(b)
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

// benchDispatcher is a dispatcher whose channels do nothing. It is never run: New
// makes no request, so the server is only there to give it a connection.
func benchDispatcher(b *testing.B) *Dispatcher {
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
	return d
}

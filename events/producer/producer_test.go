package producer_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
	"github.com/kommo-notify/notify/events/producer"
)

// notifyStream stands in for the dispatcher's NOTIFY stream: the producer must work
// against any stream that captures the durable subjects.
func notifyStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name:       "NOTIFY",
		Subjects:   []string{events.SubjectFilter(events.AddError), events.SubjectFilter(events.AddCall)},
		Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPublishDurable(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	stream := notifyStream(t, srv.JetStream(t))
	client, err := producer.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	addr := events.Address{Account: "acme", User: "42", Type: events.AddCall}
	payload := &events.AddCallPayload{Text: "  Call from +1 (415) 523-7743 ", From: "Jeremy Watts",
		Element: &events.Element{ID: 18221265, Type: events.ElementContact}}

	res, err := client.Publish(t.Context(), addr, payload, producer.WithID("call-1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "call-1" || res.Stream != "NOTIFY" || res.Seq != 1 || res.Duplicate {
		t.Errorf("result %+v", res)
	}
	msg, err := stream.GetMsg(t.Context(), res.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "notify.acme.42.add_call" || msg.Header.Get(jetstream.MsgIDHeader) != "call-1" {
		t.Errorf("stored %s %v", msg.Subject, msg.Header)
	}
	// The stored body is the validated one: trimmed, with the date filled in.
	p, _, err := events.Validate(events.AddCall, msg.Data, time.Now())
	if err != nil {
		t.Fatalf("stored body %s: %v", msg.Data, err)
	}
	if got := p.(*events.AddCallPayload); got.Text != "Call from +1 (415) 523-7743" || got.Date == 0 {
		t.Errorf("stored payload %+v", got)
	}

	again, err := client.Publish(t.Context(), addr, payload, producer.WithID("call-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Seq != res.Seq {
		t.Errorf("second publish with the same id: %+v", again)
	}
}

func TestPublishPopupOnCoreNATS(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	sub, err := nc.SubscribeSync("notify.acme.42.show_message")
	if err != nil {
		t.Fatal(err)
	}
	client, _ := producer.New(nc)
	res, err := client.Publish(t.Context(), events.Address{Account: "acme", User: "42", Type: events.ShowMessage},
		[]byte(`{"header":"Warning","text":"Connection established","shade":"blue"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.ID == "" || res.Stream != "" || len(res.Warnings) != 1 {
		t.Errorf("result %+v", res)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(jetstream.MsgIDHeader) != res.ID {
		t.Errorf("Nats-Msg-Id %q, result id %q", m.Header.Get(jetstream.MsgIDHeader), res.ID)
	}
	if len(m.Data) == 0 || strings.Contains(string(m.Data), "shade") {
		t.Errorf("published body %s still carries the unknown field", m.Data)
	}
}

func TestPublishRefusesBeforeSending(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	sub, err := nc.SubscribeSync("notify.>")
	if err != nil {
		t.Fatal(err)
	}
	client, _ := producer.New(nc)
	cases := []struct {
		name  string
		addr  events.Address
		body  any
		opts  []producer.Option
		field string
	}{
		{"field", events.Address{Account: "acme", User: "42", Type: events.AddCall}, `{"text":"x","element":{"id":1,"type":"deal"}}`, nil, "element.type"},
		{"account", events.Address{Account: "ac.me", User: "42", Type: events.AddError}, `{"text":"x"}`, nil, "account"},
		{"user", events.Address{Account: "acme", User: "", Type: events.AddError}, `{"text":"x"}`, nil, "user"},
		{"type", events.Address{Account: "acme", User: "42", Type: "add_task"}, `{"text":"x"}`, nil, "type"},
		{"id", events.Address{Account: "acme", User: "42", Type: events.AddError}, `{"text":"x"}`, []producer.Option{producer.WithID("has space")}, "id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Publish(t.Context(), tc.addr, tc.body, tc.opts...)
			var e *events.Error
			if !errors.As(err, &e) || e.Field != tc.field {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
	// A sentinel published after them must be the first thing the subscriber sees.
	if err := nc.Publish("notify.sentinel", nil); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "notify.sentinel" {
		t.Errorf("a refused event was published: %s", m.Subject)
	}
}

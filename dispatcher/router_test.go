package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
)

const (
	addError = `{"header":"Error","text":"Failed to set the task! Contact not found!","date":1714566795,"link":"/contacts/list/?term=4951234567"}`
	addCall  = `{"text":"Call from +1 (415) 523-7743","date":1714566795,"from":"Jeremy Watts","to":"Jason Nash","element":{"id":18221265,"type":"contact"},"duration":250,"link":"https://example.com/dialog.mp3"}`
	showMsg  = `{"header":"Warning","text":"Connection established","date":1714566795,"icon":"https://www.example.com/images/telephone.png"}`
)

func TestRoutingTable(t *testing.T) {
	r := newRig(t, nil)
	cases := []struct {
		typ  events.Type
		body string
		want []string
	}{
		{events.ShowMessage, showMsg, []string{channels.Relay}},
		{events.ShowMessageError, `{"header":"Warning","text":"Connection to the server is lost"}`, []string{channels.Relay}},
		{events.ShowNotification, `{"text":{"header":"Outgoing call","text":"Dialing the number +19872345678"},"type":"call"}`, []string{channels.Relay}},
		{events.AddError, addError, []string{channels.Relay, channels.Center, channels.Email, channels.Push}},
		{events.AddCall, addCall, []string{channels.Relay, channels.Center, channels.Email, channels.Push}},
	}
	for _, tc := range cases {
		t.Run(string(tc.typ), func(t *testing.T) {
			id := "route-" + string(tc.typ)
			subject := events.Address{Account: "acme", User: "42", Type: tc.typ}.Subject()
			if tc.typ.Durable() {
				r.publishJS(t, subject, id, tc.body)
			} else {
				// request-reply makes the pop-up's routing observable before we look
				msg := nats.NewMsg(subject)
				msg.Data = []byte(tc.body)
				msg.Header.Set(jetstream.MsgIDHeader, id)
				if _, err := r.nc.RequestMsg(msg, waitLong); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range tc.want {
				got := r.rec[name].WaitFor(t, waitLong, hasEvent(id))
				d := got[slices.IndexFunc(got, func(d channels.Delivery) bool { return d.Event.ID == id })]
				if d.User != "42" || d.Event.Account != "acme" || d.Event.Type != tc.typ {
					t.Errorf("%s got %+v", name, d)
				}
			}
			// Every channel outside the route: nothing, once the routed ones are done.
			for name, rec := range r.rec {
				if !slices.Contains(tc.want, name) && slices.ContainsFunc(rec.Deliveries(), isEvent(id)) {
					t.Errorf("%s is not routed to %s", tc.typ, name)
				}
			}
		})
	}
}

func TestDurablePublishedWhileStoppedIsRoutedAfterStart(t *testing.T) {
	r := newRig(t, nil) // first start provisions the stream and consumers
	r.stopDispatcher(t)

	// A plain core publish, as `nats pub` does, while no dispatcher runs: no id header.
	if err := r.nc.Publish("notify.acme.42.add_call", []byte(addCall)); err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	r.startDispatcher(t, nil)
	got := r.rec[channels.Center].WaitN(t, waitLong, 1)
	ev := got[0].Event
	if ev.Type != events.AddCall || got[0].User != "42" {
		t.Fatalf("got %+v", got[0])
	}
	call := ev.Payload.(*events.AddCallPayload)
	if call.From != "Jeremy Watts" || call.Element == nil || call.Element.ID != 18221265 {
		t.Errorf("payload %+v", call)
	}
	// Without Nats-Msg-Id every channel derives the same id from the stream position.
	for _, name := range []string{channels.Email, channels.Push} {
		d := r.rec[name].WaitN(t, waitLong, 1)[0]
		if d.Event.ID != ev.ID {
			t.Errorf("%s saw id %s, center %s", name, d.Event.ID, ev.ID)
		}
	}
}

func TestSameMsgIDRoutedOnce(t *testing.T) {
	r := newRig(t, nil)
	first := r.publishJS(t, "notify.acme.42.add_error", "dup-1", addError)
	second := r.publishJS(t, "notify.acme.42.add_error", "dup-1", addError)
	if !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second publish not recognised as duplicate: %+v", second)
	}
	// A later, different event proves the consumer moved past the duplicate.
	r.publishJS(t, "notify.acme.42.add_error", "dup-2", addError)
	got := r.rec[channels.Center].WaitFor(t, waitLong, func(ds []channels.Delivery) bool {
		return hasEvent("dup-1")(ds) && hasEvent("dup-2")(ds) // sends run in parallel
	})
	if n := countEvent(got, "dup-1"); n != 1 {
		t.Errorf("dup-1 delivered %d times to the center", n)
	}

	// Pop-ups deduplicate by Nats-Msg-Id too.
	for range 2 {
		msg := nats.NewMsg("notify.acme.42.show_message")
		msg.Data = []byte(showMsg)
		msg.Header.Set(jetstream.MsgIDHeader, "pop-1")
		if _, err := r.nc.RequestMsg(msg, waitLong); err != nil {
			t.Fatal(err)
		}
	}
	if n := countEvent(r.rec[channels.Relay].Deliveries(), "pop-1"); n != 1 {
		t.Errorf("pop-1 delivered %d times to the relay", n)
	}
}

func TestPopupRequestReply(t *testing.T) {
	r := newRig(t, nil)
	t.Run("accepted with warnings", func(t *testing.T) {
		body := `{"header":"Warning","text":"Connection established","color":"red"}`
		resp, err := r.nc.Request("notify.acme.42.show_message", []byte(body), waitLong)
		if err != nil {
			t.Fatal(err)
		}
		var reply Reply
		if err := json.Unmarshal(resp.Data, &reply); err != nil {
			t.Fatalf("reply %s: %v", resp.Data, err)
		}
		if reply.ID == "" || len(reply.Warnings) != 1 || !strings.Contains(reply.Warnings[0], "color") {
			t.Errorf("reply %s", resp.Data)
		}
		r.rec[channels.Relay].WaitFor(t, waitLong, hasEvent(reply.ID))
	})
	t.Run("rejected with the field", func(t *testing.T) {
		resp, err := r.nc.Request("notify.acme.42.show_notification", []byte(`{"text":{"header":"x","text":"y"},"type":"sms"}`), waitLong)
		if err != nil {
			t.Fatal(err)
		}
		var body events.ErrorBody
		if err := json.Unmarshal(resp.Data, &body); err != nil || body.Error == nil {
			t.Fatalf("reply %s: %v", resp.Data, err)
		}
		if body.Error.Code != events.CodeInvalidField || body.Error.Field != "type" {
			t.Errorf("error %+v", body.Error)
		}
		if got := testutil.ToFloat64(r.d.metrics.rejected.WithLabelValues("show_notification", events.CodeInvalidField)); got != 1 {
			t.Errorf("rejected counter = %v", got)
		}
	})
	t.Run("bad user in subject", func(t *testing.T) {
		resp, err := r.nc.Request("notify.acme.bad!user.show_message", []byte(showMsg), waitLong)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(resp.Data), `"field":"user"`) {
			t.Errorf("reply %s", resp.Data)
		}
	})
}

func TestInvalidDurableEventIsDeadLettered(t *testing.T) {
	r := newRig(t, nil)
	r.publishJS(t, "notify.acme.42.add_call", "bad-1", `{"text":"Call","element":{"id":1,"type":"deal"}}`)
	dl := r.waitDLQ(t, 1)
	if len(dl) != 1 {
		t.Fatalf("%d dead letters, want 1 (one per invalid event, not one per channel)", len(dl))
	}
	m := dl[0]
	if m.Subject != "dlq.router.acme.42.add_call" {
		t.Errorf("subject %s", m.Subject)
	}
	if m.Header.Get(HeaderReason) != ReasonInvalid || m.Header.Get(HeaderEventID) != "bad-1" ||
		!strings.Contains(m.Header.Get(HeaderError), "element.type") || m.Header.Get(HeaderAttempts) != "1" {
		t.Errorf("headers %v", m.Header)
	}
	if string(m.Data) != `{"text":"Call","element":{"id":1,"type":"deal"}}` {
		t.Errorf("body %s, want the original payload", m.Data)
	}
	// The stream moves on: a valid event behind it is delivered, the invalid one never.
	r.publishJS(t, "notify.acme.42.add_call", "good-1", addCall)
	for _, rec := range r.rec {
		got := rec.WaitFor(t, waitLong, hasEvent("good-1"))
		if countEvent(got, "bad-1") != 0 {
			t.Errorf("%s got the invalid event", rec.Name())
		}
	}
	waitUntil(t, func() bool {
		return testutil.ToFloat64(r.d.metrics.rejected.WithLabelValues("add_call", events.CodeInvalidField)) == 1
	})
}

func TestRetryThenDeliver(t *testing.T) {
	r := newRig(t, nil)
	var calls atomic.Int32
	r.rec[channels.Email].Script = func(_ context.Context, d *channels.Delivery) error {
		if calls.Add(1) < 3 {
			return errors.New("421 try again later")
		}
		return nil
	}
	r.publishJS(t, "notify.acme.42.add_error", "retry-1", addError)
	got := r.rec[channels.Email].WaitN(t, waitLong, 3)
	for i, d := range got[:3] {
		if d.Attempt != i+1 {
			t.Errorf("delivery %d has attempt %d", i, d.Attempt)
		}
	}
	waitUntil(t, func() bool {
		return testutil.ToFloat64(r.d.metrics.deliveries.WithLabelValues("email", "add_error", OutcomeSent)) == 1
	})
	if got := testutil.ToFloat64(r.d.metrics.deliveries.WithLabelValues("email", "add_error", OutcomeRetry)); got != 2 {
		t.Errorf("retry outcomes = %v, want 2", got)
	}
	if n := len(r.dlq(t)); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

func TestPermanentFailureIsDeadLettered(t *testing.T) {
	r := newRig(t, nil)
	r.rec[channels.Push].Script = func(context.Context, *channels.Delivery) error {
		return channels.Permanent(errors.New("INVALID_ARGUMENT"))
	}
	r.publishJS(t, "notify.acme.42.add_call", "perm-1", addCall)
	dl := r.waitDLQ(t, 1)[0]
	if dl.Subject != "dlq.push.acme.42.add_call" || dl.Header.Get(HeaderReason) != ReasonPermanent ||
		dl.Header.Get(HeaderError) != "INVALID_ARGUMENT" || dl.Header.Get(HeaderEventID) != "perm-1" {
		t.Errorf("dead letter %s %v", dl.Subject, dl.Header)
	}
	if n := len(r.rec[channels.Push].Deliveries()); n != 1 {
		t.Errorf("push tried %d times, want 1", n)
	}
	waitUntil(t, func() bool {
		return testutil.ToFloat64(r.d.metrics.deliveries.WithLabelValues("push", "add_call", OutcomeDead)) == 1
	})
}

func TestMaxAttemptsIsDeadLettered(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxAttempts = 3 })
	r.rec[channels.Email].Script = func(context.Context, *channels.Delivery) error { return errors.New("connection refused") }
	r.publishJS(t, "notify.acme.42.add_error", "max-1", addError)
	dl := r.waitDLQ(t, 1)[0]
	if dl.Subject != "dlq.email.acme.42.add_error" || dl.Header.Get(HeaderReason) != ReasonMaxAttempts ||
		dl.Header.Get(HeaderAttempts) != "3" {
		t.Errorf("dead letter %s %v", dl.Subject, dl.Header)
	}
	if n := len(r.rec[channels.Email].Deliveries()); n != 3 {
		t.Errorf("email tried %d times, want 3", n)
	}
	// Other channels were not held back by the failing one.
	if n := countEvent(r.rec[channels.Center].Deliveries(), "max-1"); n != 1 {
		t.Errorf("center got %d deliveries", n)
	}
}

type staticDirectory map[string][]string

func (s staticDirectory) Users(_ context.Context, account string) ([]string, error) {
	return s[account], nil
}

func TestAllUsersExpandsDirectoryButRelayBroadcasts(t *testing.T) {
	dir := staticDirectory{"acme": {"1", "2", "3"}, "other": {"9"}}
	r := newRig(t, func(c *Config) { c.Recipients = dir })
	r.publishJS(t, "notify.acme._all.add_error", "all-1", addError)
	got := r.rec[channels.Center].WaitN(t, waitLong, 3)
	var users []string
	for _, d := range got {
		users = append(users, d.User)
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"1", "2", "3"}) {
		t.Errorf("center users %v", users)
	}
	relay := r.rec[channels.Relay].WaitN(t, waitLong, 1)
	if len(relay) != 1 || relay[0].User != events.AllUsers {
		t.Errorf("relay deliveries %+v, want one to _all", relay)
	}
}

func TestLateDurableEventDoesNotRing(t *testing.T) {
	r := newRig(t, func(c *Config) { c.PopupMaxAge = time.Nanosecond })
	r.publishJS(t, "notify.acme.42.add_call", "late-1", addCall)
	r.rec[channels.Center].WaitFor(t, waitLong, hasEvent("late-1"))
	waitUntil(t, func() bool {
		return testutil.ToFloat64(r.d.metrics.deliveries.WithLabelValues("relay", "add_call", OutcomeSkipped)) == 1
	})
	if n := len(r.rec[channels.Relay].Deliveries()); n != 0 {
		t.Errorf("relay got %d deliveries of a stale event", n)
	}
}

func TestShutdownFinishesInFlightSends(t *testing.T) {
	r := newRig(t, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	r.rec[channels.Email].Script = func(context.Context, *channels.Delivery) error {
		close(entered)
		<-release
		return nil
	}
	r.publishJS(t, "notify.acme.42.add_error", "inflight-1", addError)
	<-entered
	r.stop() // stop taking work while the send is in flight ...
	close(release)
	r.stopDispatcher(t) // ... and Run returns only after it finished and was acknowledged

	r.startDispatcher(t, nil)
	r.publishJS(t, "notify.acme.42.add_error", "after-1", addError)
	got := r.rec[channels.Email].WaitFor(t, waitLong, hasEvent("after-1"))
	if n := countEvent(got, "inflight-1"); n != 0 {
		t.Errorf("a send finished during shutdown was delivered again (%d times)", n)
	}
}

func TestShutdownHandsBackUnfinishedSends(t *testing.T) {
	r := newRig(t, func(c *Config) { c.ShutdownTimeout = 50 * time.Millisecond })
	entered := make(chan struct{})
	r.rec[channels.Email].Script = func(ctx context.Context, _ *channels.Delivery) error {
		close(entered)
		<-ctx.Done() // a provider that does not answer before the shutdown deadline
		return ctx.Err()
	}
	r.publishJS(t, "notify.acme.42.add_error", "inflight-1", addError)
	<-entered
	r.stopDispatcher(t)

	r.startDispatcher(t, nil)
	got := r.rec[channels.Email].WaitFor(t, waitLong, hasEvent("inflight-1"))
	if got[0].Attempt != 2 {
		t.Errorf("redelivered with attempt %d, want 2", got[0].Attempt)
	}
}

func TestProvisionIsIdempotentAndUpdates(t *testing.T) {
	r := newRig(t, nil)
	r.stopDispatcher(t)
	r.startDispatcher(t, func(c *Config) { c.DedupWindow = 5 * time.Minute })
	s, err := r.js.Stream(t.Context(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Duplicates; got != 5*time.Minute {
		t.Errorf("dedup window %s after update", got)
	}
	if got := s.CachedInfo().Config.Retention; got != jetstream.InterestPolicy {
		t.Errorf("retention %v", got)
	}
}

func hasEvent(id string) func([]channels.Delivery) bool {
	return func(ds []channels.Delivery) bool { return slices.ContainsFunc(ds, isEvent(id)) }
}

func isEvent(id string) func(channels.Delivery) bool {
	return func(d channels.Delivery) bool { return d.Event.ID == id }
}

func countEvent(ds []channels.Delivery, id string) int {
	n := 0
	for _, d := range ds {
		if d.Event.ID == id {
			n++
		}
	}
	return n
}

// A consumer provisioned by an earlier version keeps its subject filters: dropping them
// would make nats-server 2.15 drop the new messages of the interest stream (see
// keepFilters). Events still reach it.
func TestProvisionKeepsOldConsumerFilters(t *testing.T) {
	r := newRig(t, nil)
	r.stopDispatcher(t)
	filters := r.d.cfg.streamConfig().Subjects
	for _, ch := range durableChannels() {
		old := r.d.cfg.consumerConfig(ch, 64)
		old.FilterSubjects = filters
		if _, err := r.js.CreateOrUpdateConsumer(t.Context(), StreamName, old); err != nil {
			t.Fatal(err)
		}
	}
	r.startDispatcher(t, nil)
	for _, ch := range durableChannels() {
		cons, err := r.js.Consumer(t.Context(), StreamName, ch)
		if err != nil {
			t.Fatal(err)
		}
		if got := cons.CachedInfo().Config.FilterSubjects; !slices.Equal(got, filters) {
			t.Errorf("%s filters after provisioning: %q, want %q", ch, got, filters)
		}
	}
	r.publishJS(t, "notify.acme.42.add_error", "filtered-1", addError)
	for _, ch := range durableChannels() {
		r.rec[ch].WaitFor(t, waitLong, hasEvent("filtered-1"))
	}
}

// Channel consumers made now have no subject filter, so an event whose account holds
// a byte the server's subject index leaves out is still delivered, here to be
// dead-lettered as invalid, and every consumer is done with it.
func TestUnindexedSubjectIsDeadLettered(t *testing.T) {
	r := newRig(t, nil)
	cons, err := r.js.Consumer(t.Context(), StreamName, channels.Email)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := cons.CachedInfo().Config; len(cfg.FilterSubjects) != 0 || cfg.FilterSubject != "" {
		t.Errorf("filters of a new consumer: %q %q", cfg.FilterSubjects, cfg.FilterSubject)
	}
	r.publishJS(t, "notify.ac\x7fme.42.add_error", "del-1", addError)
	dl := r.waitDLQ(t, 1)[0]
	if dl.Header.Get(HeaderReason) != ReasonInvalid || dl.Header.Get(HeaderEventID) != "del-1" {
		t.Errorf("dead letter %s %v", dl.Subject, dl.Header)
	}
	// The account cannot stand in the dead letter's subject: "~" does, and the
	// original subject travels in a header.
	if dl.Subject != "dlq.router.~.42.add_error" || dl.Header.Get(HeaderSubject) != "notify.ac me.42.add_error" {
		t.Errorf("dead letter %s, %s %q", dl.Subject, HeaderSubject, dl.Header.Get(HeaderSubject))
	}
	for _, ch := range durableChannels() {
		waitUntil(t, func() bool { return r.pending(t, ch) == 0 })
	}
}

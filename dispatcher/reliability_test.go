package dispatcher

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/channeltest"
	"github.com/kommo-notify/notify/events"
)

// waitStatus polls the event's status until cond holds and returns it.
func (r *rig) waitStatus(t *testing.T, id string, cond func(*EventStatus) bool) *EventStatus {
	t.Helper()
	var st *EventStatus
	waitUntil(t, func() bool {
		var err error
		st, err = r.d.EventStatus(t.Context(), id)
		if err != nil && !errors.Is(err, ErrUnknownEvent) {
			t.Fatal(err)
		}
		return err == nil && cond(st)
	})
	return st
}

// delivery finds the status line of channel and user.
func (st *EventStatus) delivery(channel, user string) (DeliveryStatus, bool) {
	i := slices.IndexFunc(st.Deliveries, func(d DeliveryStatus) bool { return d.Channel == channel && d.User == user })
	if i < 0 {
		return DeliveryStatus{}, false
	}
	return st.Deliveries[i], true
}

func (st *EventStatus) stateOf(channel, user string) string {
	d, _ := st.delivery(channel, user)
	return d.State
}

func TestStatusTellsEveryDeliveryOfAnEvent(t *testing.T) {
	r := newRig(t, nil)
	var emailCalls sync.Map
	r.rec[channels.Email].Script = func(_ context.Context, d *channels.Delivery) error {
		if _, again := emailCalls.LoadOrStore(d.Event.ID, true); !again {
			return errors.New("421 try again later")
		}
		return nil
	}
	r.rec[channels.Push].Script = func(context.Context, *channels.Delivery) error {
		return channels.Skip(channels.ReasonNoDevice)
	}
	r.publishJS(t, "notify.acme.42.add_error", "status-1", addError)

	st := r.waitStatus(t, "status-1", func(st *EventStatus) bool {
		return st.stateOf(channels.Email, "42") == StateSent && st.stateOf(channels.Push, "42") == StateSkipped &&
			st.stateOf(channels.Center, "42") == StateSent && st.stateOf(channels.Relay, "42") == StateSent
	})
	if st.ID != "status-1" || st.Type != events.AddError || st.Account != "acme" || len(st.Deliveries) != 4 {
		t.Fatalf("status %+v", st)
	}
	email, _ := st.delivery(channels.Email, "42")
	if email.Attempts != 2 || email.Error != "" || email.UpdatedAt.IsZero() {
		t.Errorf("email %+v, want sent on attempt 2", email)
	}
	push, _ := st.delivery(channels.Push, "42")
	if push.Reason != channels.ReasonNoDevice {
		t.Errorf("push %+v, want reason %s", push, channels.ReasonNoDevice)
	}
	want := []string{channels.Relay, channels.Center, channels.Email, channels.Push}
	var got []string
	for _, d := range st.Deliveries {
		got = append(got, d.Channel)
	}
	if !slices.Equal(got, want) {
		t.Errorf("channels in order %v, want %v", got, want)
	}

	if _, err := r.d.EventStatus(t.Context(), "never-published"); !errors.Is(err, ErrUnknownEvent) {
		t.Errorf("unknown event: %v", err)
	}
}

func TestStatusShowsRetryingThenFailed(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxAttempts = 2; c.RetryBase = time.Second; c.RetryMax = time.Second })
	r.rec[channels.Email].Script = func(context.Context, *channels.Delivery) error { return errors.New("connection refused") }
	r.publishJS(t, "notify.acme.42.add_error", "status-2", addError)
	st := r.waitStatus(t, "status-2", func(st *EventStatus) bool { return st.stateOf(channels.Email, "42") == StateRetrying })
	if d, _ := st.delivery(channels.Email, "42"); d.Attempts != 1 || d.Error != "connection refused" {
		t.Errorf("retrying %+v", d)
	}
	st = r.waitStatus(t, "status-2", func(st *EventStatus) bool { return st.stateOf(channels.Email, "42") == StateFailed })
	if d, _ := st.delivery(channels.Email, "42"); d.Attempts != 2 || d.Error != "connection refused" {
		t.Errorf("failed %+v", d)
	}
	r.waitDLQ(t, 1)
}

func TestAcceptedEventIsQueuedOnEveryChannel(t *testing.T) {
	r := newRig(t, nil)
	r.stopDispatcher(t) // nothing routes: the event stays queued
	ev, _, err := events.NewEvent(events.Address{Account: "acme", User: "42", Type: events.AddCall}, "queued-1", []byte(addCall), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.d.Accepted(ev); err != nil {
		t.Fatal(err)
	}
	st, err := r.d.EventStatus(t.Context(), "queued-1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Type != events.AddCall || st.Account != "acme" || len(st.Deliveries) != 4 {
		t.Fatalf("status %+v", st)
	}
	for _, d := range st.Deliveries {
		if d.State != StateQueued || d.User != "42" || d.UpdatedAt.IsZero() {
			t.Errorf("delivery %+v, want queued for 42", d)
		}
	}
}

// A retry of one recipient of an _all event does not send again to the others.
func TestRetryOfOneRecipientSkipsTheOthers(t *testing.T) {
	dir := staticDirectory{"acme": {"1", "2", "3"}}
	r := newRig(t, func(c *Config) { c.Recipients = dir })
	var failed sync.Once
	r.rec[channels.Email].Script = func(_ context.Context, d *channels.Delivery) error {
		var err error
		if d.User == "2" {
			failed.Do(func() { err = errors.New("451 mailbox busy") })
		}
		return err
	}
	r.publishJS(t, "notify.acme._all.add_error", "all-retry-1", addError)
	r.waitStatus(t, "all-retry-1", func(st *EventStatus) bool {
		return st.stateOf(channels.Email, "1") == StateSent && st.stateOf(channels.Email, "2") == StateSent &&
			st.stateOf(channels.Email, "3") == StateSent
	})
	per := map[string]int{}
	for _, d := range r.rec[channels.Email].Deliveries() {
		per[d.User]++
	}
	if per["1"] != 1 || per["2"] != 2 || per["3"] != 1 {
		t.Errorf("sends per user %v, want 1: 1, 2: 2 (one retry), 3: 1", per)
	}
}

// replay publishes a dead letter's event again as notify dlq replay does.
func (r *rig) replay(t *testing.T, subject, id, channel, body string) {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	msg.Header.Set(HeaderEventID, id)
	if channel != "" {
		msg.Header.Set(HeaderReplay, channel)
	}
	if _, err := r.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
}

func TestReplayReachesOnlyItsChannelWithTheOriginalID(t *testing.T) {
	r := newRig(t, func(c *Config) { c.MaxAttempts = 1 })
	var broken sync.Once
	r.rec[channels.Push].Script = func(context.Context, *channels.Delivery) error {
		var err error
		broken.Do(func() { err = errors.New("UNAVAILABLE") })
		return err
	}
	r.publishJS(t, "notify.acme.42.add_call", "replay-1", addCall)
	dl := r.waitDLQ(t, 1)[0]
	r.waitStatus(t, "replay-1", func(st *EventStatus) bool { return st.stateOf(channels.Push, "42") == StateFailed })
	r.rec[channels.Center].WaitFor(t, waitLong, hasEvent("replay-1"))

	r.replay(t, "notify.acme.42.add_call", dl.Header.Get(HeaderEventID), dl.Subject[len("dlq."):len("dlq.push")], string(dl.Data))
	r.waitStatus(t, "replay-1", func(st *EventStatus) bool { return st.stateOf(channels.Push, "42") == StateSent })
	if n := countEvent(r.rec[channels.Push].Deliveries(), "replay-1"); n != 2 {
		t.Errorf("push got the event %d times, want 2 (the failure and the replay)", n)
	}
	// A replay of a delivery that is already sent sends nothing.
	r.replay(t, "notify.acme.42.add_call", "replay-1", channels.Push, addCall)
	r.publishJS(t, "notify.acme.42.add_call", "after-replay", addCall)
	r.rec[channels.Push].WaitFor(t, waitLong, hasEvent("after-replay"))
	waitUntil(t, func() bool { return r.pending(t, channels.Push) == 0 })
	if n := countEvent(r.rec[channels.Push].Deliveries(), "replay-1"); n != 2 {
		t.Errorf("push got the event %d times after a second replay, want still 2", n)
	}
	for _, ch := range []string{channels.Relay, channels.Center, channels.Email} {
		if n := countEvent(r.rec[ch].Deliveries(), "replay-1"); n != 1 {
			t.Errorf("%s got the event %d times, want 1: replays are for push only", ch, n)
		}
	}
}

// pending is what the channel's consumer has not acknowledged yet.
func (r *rig) pending(t *testing.T, channel string) uint64 {
	t.Helper()
	cons, err := r.js.Consumer(t.Context(), StreamName, channel)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending + uint64(info.NumAckPending)
}

// An event on which the dispatcher dies every time reaches the consumer's delivery
// limit without an answer; the server's advisory, kept in a stream while no
// dispatcher runs, becomes a dead letter when one starts again.
func TestDeliveryLimitAdvisoryBecomesADeadLetter(t *testing.T) {
	adjust := func(c *Config) { c.MaxAttempts = 1; c.AckWait = 200 * time.Millisecond }
	r := newRig(t, adjust)
	r.stopDispatcher(t)
	r.publishJS(t, "notify.acme.42.add_error", "crash-loop-1", addError)

	// A dispatcher that takes the event for email and dies, twice (MaxDeliver is
	// MaxAttempts+1): the messages are fetched and never answered.
	cons, err := r.js.Consumer(t.Context(), StreamName, channels.Email)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range batch.Messages() {
			n++
		}
		if n != 1 {
			t.Fatalf("fetched %d messages, want the event", n)
		}
	}
	// The next pull finds the delivery limit reached: the server advises it.
	waitUntil(t, func() bool {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			t.Fatalf("delivered again past the limit: %s", m.Subject())
		}
		s, err := r.js.Stream(t.Context(), AdvisoryStreamName)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(t.Context())
		return err == nil && info.State.Msgs == 1
	})

	r.startDispatcher(t, adjust)
	dl := r.waitDLQ(t, 1)[0]
	if dl.Subject != "dlq.email.acme.42.add_error" || dl.Header.Get(HeaderReason) != ReasonMaxAttempts ||
		dl.Header.Get(HeaderEventID) != "crash-loop-1" || dl.Header.Get(HeaderAttempts) != "2" {
		t.Errorf("dead letter %s %v", dl.Subject, dl.Header)
	}
	st := r.waitStatus(t, "crash-loop-1", func(st *EventStatus) bool { return st.stateOf(channels.Email, "42") == StateFailed })
	if d, _ := st.delivery(channels.Email, "42"); d.Error == "" {
		t.Errorf("failed without an error: %+v", d)
	}
	// The advisory is consumed once: no second dead letter.
	waitUntil(t, func() bool {
		cons, err := r.js.Consumer(t.Context(), AdvisoryStreamName, advisoryConsumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	if n := len(r.dlq(t)); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// Each channel runs as many sends at once as it asks for, whatever the others do.
func TestChannelsRunTheirOwnConcurrency(t *testing.T) {
	const pushInFlight, others = 24, 4
	var mu sync.Mutex
	running, peak := map[string]int{}, map[string]int{}
	release := make(chan struct{})
	r := newRig(t, func(c *Config) {
		c.Concurrency = others
		for _, ch := range c.Channels {
			rec := ch.(*channeltest.Recorder)
			name := rec.Name()
			if name == channels.Push {
				rec.InFlight = pushInFlight
			}
			if name != channels.Push && name != channels.Email {
				continue
			}
			rec.Script = func(ctx context.Context, _ *channels.Delivery) error {
				mu.Lock()
				running[name]++
				peak[name] = max(peak[name], running[name])
				mu.Unlock()
				defer func() { mu.Lock(); running[name]--; mu.Unlock() }()
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
	})
	for i := range 2 * pushInFlight {
		r.publishJS(t, "notify.acme.42.add_error", "conc-"+strconv.Itoa(i), addError)
	}
	waitUntil(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running[channels.Push] == pushInFlight && running[channels.Email] == others
	})
	close(release)
	r.rec[channels.Push].WaitN(t, waitLong, 2*pushInFlight)
	r.rec[channels.Email].WaitN(t, waitLong, 2*pushInFlight)
	mu.Lock()
	defer mu.Unlock()
	if peak[channels.Push] != pushInFlight || peak[channels.Email] != others {
		t.Errorf("peak sends in flight %v, want push %d and email %d", peak, pushInFlight, others)
	}
}

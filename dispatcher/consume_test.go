package dispatcher

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/channeltest"
)

// A dispatcher that runs some channels only delivers to those; the events wait in the
// stream for the others until a dispatcher that runs them comes, and none is lost.
func TestDispatchersSplitTheChannels(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Consume = []string{channels.Email} })
	worker := r.rec
	r.publishJS(t, "notify.acme.42.add_call", "split-1", addCall)
	worker[channels.Email].WaitFor(t, waitLong, hasEvent("split-1"))

	s, err := r.js.Stream(t.Context(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{channels.Relay, channels.Center, channels.Push} {
		c, err := s.Consumer(t.Context(), name)
		if err != nil {
			t.Fatalf("consumer %s not provisioned by the email worker: %v", name, err)
		}
		if info, err := c.Info(t.Context()); err != nil || info.NumPending != 1 {
			t.Fatalf("consumer %s: %+v, %v; want the event waiting", name, info, err)
		}
		if got := worker[name].Deliveries(); len(got) != 0 {
			t.Fatalf("the email worker delivered to %s: %v", name, got)
		}
	}

	// The rest of the deployment: the other three channels, and the email worker still.
	r.startDispatcher(t, func(c *Config) { c.Consume = []string{channels.Center, channels.Push, channels.Relay} })
	for _, name := range []string{channels.Relay, channels.Center, channels.Push} {
		r.rec[name].WaitFor(t, waitLong, hasEvent("split-1"))
	}
	if got := r.rec[channels.Email].Deliveries(); len(got) != 0 {
		t.Fatalf("the second dispatcher sent email too: %v", got)
	}
	if n := countEvent(worker[channels.Email].Deliveries(), "split-1"); n != 1 {
		t.Fatalf("email sent %d times", n)
	}
}

func TestConsumeNamesDurableChannelsOnce(t *testing.T) {
	for _, consume := range [][]string{{"sms"}, {channels.Email, channels.Email}, {"router"}} {
		cfg := Config{Consume: consume}
		cfg.setDefaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "consume") {
			t.Errorf("Consume %q: %v", consume, err)
		}
	}
}

// Pop-ups beyond PopupPending waiting to be routed are dropped by NATS, counted in
// notify_nats_dropped_total{consumer="router"}; the others are routed.
func TestPopupsBeyondThePendingLimitAreDroppedAndCounted(t *testing.T) {
	release := make(chan struct{})
	r := newRig(t, func(c *Config) {
		c.PopupPending = 10
		for _, ch := range c.Channels {
			if ch.Name() == channels.Relay {
				ch.(*channeltest.Recorder).Script = func(context.Context, *channels.Delivery) error {
					<-release // routing is stuck behind the first pop-up
					return nil
				}
			}
		}
	})
	dropped := func() float64 {
		families, err := r.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if f.GetName() == "notify_nats_dropped_total" && l.GetName() == "consumer" && l.GetValue() == channels.SlowRouter {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		t.Fatal("no notify_nats_dropped_total{consumer=router}")
		return 0
	}
	if got := dropped(); got != 0 {
		t.Fatalf("dropped %v before any pop-up", got)
	}
	const sent = 100
	for i := range sent {
		if err := r.nc.Publish("notify.acme.42.show_message", []byte(`{"header":"h","text":"`+strconv.Itoa(i)+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return dropped() >= sent-1-10 })
	close(release)
	waitUntil(t, func() bool { return len(r.rec[channels.Relay].Deliveries())+int(dropped()) == sent })
}

package dispatcher

import (
	"strings"
	"testing"

	"github.com/kommo-notify/notify/channels"
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

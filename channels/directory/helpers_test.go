package directory_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
)

// waitLong bounds every wait for the watcher; a healthy one takes milliseconds.
const waitLong = 15 * time.Second

// clock hands out times one second apart, so device order is deterministic.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// newStore starts NATS and returns a store on it; cfg's zero Now is the test clock.
func newStore(t *testing.T, cfg directory.Config) (*directory.Store, *natstest.Server) {
	t.Helper()
	srv := natstest.Start(t)
	if cfg.Now == nil {
		cfg.Now = newClock().Now
	}
	return storeOn(t, srv.JetStream(t), cfg), srv
}

func storeOn(t *testing.T, js jetstream.JetStream, cfg directory.Config) *directory.Store {
	t.Helper()
	s, err := directory.NewStore(t.Context(), js, cfg)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

// startCache runs a cache of s until the test ends and waits for its initial load.
func startCache(t *testing.T, s *directory.Store) *directory.Cache {
	t.Helper()
	c := directory.NewCache(s, slog.New(slog.NewTextHandler(t.Output(), nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cache Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(t.Context(), waitLong)
	defer wcancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitUntil polls cond until it holds, failing the test after waitLong.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitLong)
		}
		<-tick.C
	}
}

// fieldError asserts err is an *events.Error of code naming field.
func fieldError(t *testing.T, err error, code, field string) {
	t.Helper()
	e, ok := errors.AsType[*events.Error](err)
	if !ok {
		t.Fatalf("error %v (%T), want an *events.Error", err, err)
	}
	if e.Code != code || e.Field != field {
		t.Fatalf("error %q/%q (%s), want %q naming %q", e.Code, e.Field, e.Message, code, field)
	}
}

func tokens(p directory.Profile) []string {
	var out []string
	for _, d := range p.Devices {
		out = append(out, d.Token)
	}
	return out
}

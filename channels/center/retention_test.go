package center_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels/center"
)

func TestRetentionKeepsTheNewestMaxItems(t *testing.T) {
	r := newRig(t, func(c *center.Config) { c.MaxItems = 5 })
	tabs := r.tabs(t, "acme", "42")
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		r.add(t, "acme", "42", id)
		nextFrame(t, tabs)
	}
	// A read item and an unread one will be evicted: only the unread one counts.
	if _, err := r.store.MarkRead(t.Context(), "acme", "42", []string{"a", "d"}); err != nil {
		t.Fatal(err)
	}
	nextFrame(t, tabs)

	r.add(t, "acme", "42", "f") // evicts a (read)
	r.add(t, "acme", "42", "g") // evicts b (unread)

	if got := ids(r.all(t, "acme", "42", 2)); got != "g,f,e,d,c" {
		t.Errorf("items %s, want g,f,e,d,c", got)
	}
	if n := r.unread(t, "acme", "42"); n != 4 { // c, e, f, g
		t.Errorf("unread %d, want 4", n)
	}
	want := []frame{
		{Kind: "center", Op: center.OpAdded, Unread: 4}, {Kind: "center", Op: center.OpDeleted, IDs: []string{"a"}, Unread: 4},
		{Kind: "center", Op: center.OpAdded, Unread: 4}, {Kind: "center", Op: center.OpDeleted, IDs: []string{"b"}, Unread: 4},
	}
	for i, w := range want {
		f := nextFrame(t, tabs)
		f.Item = nil
		if f.Kind != w.Kind || f.Op != w.Op || !slices.Equal(f.IDs, w.IDs) || f.Unread != w.Unread {
			t.Errorf("frame %d: %+v, want %+v", i, f, w)
		}
	}
	r.quiet(t, tabs, "acme", "42")
	r.checkState(t, "acme", "42")
}

func TestRetentionEvictsItemsPastMaxAge(t *testing.T) {
	const maxAge = 2 * time.Hour
	cases := []struct {
		name string
		// evict triggers the eviction once the oldest items have expired.
		evict  func(t *testing.T, r *rig)
		items  string
		unread int64
	}{
		{"by the sweeper", func(t *testing.T, r *rig) {
			if err := r.store.Sweep(t.Context()); err != nil {
				t.Fatal(err)
			}
		}, "c", 1},
		{"by the next add", func(t *testing.T, r *rig) {
			r.add(t, "acme", "42", "d")
		}, "d,c", 2},
		{"by a sweeper's Run", func(t *testing.T, r *rig) {
			// Run sweeps at once when it starts; the tabs see the eviction.
			tabs := r.tabs(t, "acme", "42")
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- r.store.Run(ctx) }()
			if f := nextFrame(t, tabs); f.Op != center.OpDeleted || !slices.Equal(f.IDs, []string{"a", "b"}) || f.Unread != 1 {
				t.Errorf("frame %+v", f)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		}, "c", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *center.Config) { c.MaxAge = maxAge })
			r.add(t, "acme", "42", "a")
			r.add(t, "acme", "42", "b")
			r.add(t, "globex", "42", "young") // another user's item, after a and b
			r.clock.Advance(time.Hour)
			r.add(t, "acme", "42", "c")
			if _, err := r.store.MarkRead(t.Context(), "acme", "42", []string{"a"}); err != nil {
				t.Fatal(err)
			}
			r.clock.Advance(time.Hour + time.Second) // a and b are past 2h, c is not

			tc.evict(t, r)

			if got := ids(r.all(t, "acme", "42", 50)); got != tc.items {
				t.Errorf("items %s, want %s", got, tc.items)
			}
			if n := r.unread(t, "acme", "42"); n != tc.unread {
				t.Errorf("unread %d, want %d", n, tc.unread)
			}
			r.checkState(t, "acme", "42")
		})
	}
}

func TestSweepEvictsEveryExpiredItemOfEveryUser(t *testing.T) {
	r := newRig(t, func(c *center.Config) { c.MaxAge = time.Hour })
	for i := range 300 { // more than one sweep batch, spread over users
		r.add(t, "acme", []string{"1", "2", "3"}[i%3], "old-"+strconv.Itoa(i))
	}
	r.clock.Advance(time.Hour + time.Second)
	r.add(t, "acme", "4", "young")
	if err := r.store.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"1", "2", "3"} {
		if items := r.all(t, "acme", u, 50); len(items) != 0 {
			t.Errorf("acme/%s keeps %d items", u, len(items))
		}
		if n := r.unread(t, "acme", u); n != 0 {
			t.Errorf("acme/%s unread %d", u, n)
		}
		r.checkState(t, "acme", u)
	}
	if got := ids(r.all(t, "acme", "4", 50)); got != "young" {
		t.Errorf("acme/4 has %s", got)
	}
}

package directory_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/kommo-notify/notify/channels/directory"
)

func TestCacheLoadsAndFollowsChanges(t *testing.T) {
	s, _ := newStore(t, directory.Config{})
	ctx := t.Context()
	// Profiles written before the cache starts are in its initial load.
	for _, u := range []string{"2", "10", "1"} {
		if _, _, err := s.Put(ctx, "acme", u, directory.Profile{Email: u + "@acme.example"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Put(ctx, "acme", "gone", directory.Profile{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "acme", "gone"); err != nil {
		t.Fatal(err)
	}
	c := startCache(t, s)
	if got, _ := c.Users(ctx, "acme"); !slices.Equal(got, []string{"1", "10", "2"}) {
		t.Fatalf("Users(acme) = %v, want [1 10 2]", got)
	}
	if p, ok := c.Profile("acme", "10"); !ok || p.Email != "10@acme.example" {
		t.Fatalf("Profile(acme, 10) = %+v, %v", p, ok)
	}

	t.Run("update", func(t *testing.T) {
		if _, _, err := s.AddDevice(ctx, "acme", "10", directory.Device{Token: "t1", Platform: "ios"}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the cache sees the device", func() bool {
			p, _ := c.Profile("acme", "10")
			return slices.Equal(tokens(p), []string{"t1"})
		})
	})
	t.Run("new user", func(t *testing.T) {
		if _, _, err := s.Put(ctx, "acme", "05", directory.Profile{}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the cache lists the new user in order", func() bool {
			got, _ := c.Users(ctx, "acme")
			return slices.Equal(got, []string{"05", "1", "10", "2"})
		})
	})
	t.Run("deletion", func(t *testing.T) {
		if err := s.Delete(ctx, "acme", "1"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the cache forgets the deleted user", func() bool {
			_, ok := c.Profile("acme", "1")
			got, _ := c.Users(ctx, "acme")
			return !ok && slices.Equal(got, []string{"05", "10", "2"})
		})
	})
	t.Run("copies", func(t *testing.T) {
		p, _ := c.Profile("acme", "10")
		p.Devices[0].Token = "changed by the caller"
		users, _ := c.Users(ctx, "acme")
		users[0] = "changed by the caller"
		if again, _ := c.Profile("acme", "10"); again.Devices[0].Token != "t1" {
			t.Error("a caller changed the cached profile")
		}
		if again, _ := c.Users(ctx, "acme"); again[0] != "05" {
			t.Error("a caller changed the cached user list")
		}
	})
}

// Two accounts with the same user ids never meet: _all of acme is acme's users only.
func TestCacheUsersPerAccount(t *testing.T) {
	s, _ := newStore(t, directory.Config{})
	ctx := t.Context()
	for _, a := range []struct{ account, user string }{
		{"acme", "1"}, {"acme", "2"}, {"globex", "1"}, {"globex", "3"}, {"acme-eu", "9"},
	} {
		if _, _, err := s.Put(ctx, a.account, a.user, directory.Profile{Email: a.user + "@" + a.account + ".example"}); err != nil {
			t.Fatal(err)
		}
	}
	c := startCache(t, s)
	tests := []struct {
		account string
		want    []string
	}{
		{"acme", []string{"1", "2"}},
		{"globex", []string{"1", "3"}},
		{"acme-eu", []string{"9"}},
		{"initech", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.account, func(t *testing.T) {
			got, err := c.Users(ctx, tt.account)
			if err != nil || got == nil || !slices.Equal(got, tt.want) {
				t.Errorf("Users(%s) = %#v, %v; want %v", tt.account, got, err, tt.want)
			}
		})
	}
	if p, _ := c.Profile("globex", "1"); p.Email != "1@globex.example" {
		t.Errorf("Profile(globex, 1) = %+v", p)
	}
	if c.Len() != 5 {
		t.Errorf("Len = %d, want 5", c.Len())
	}
}

func TestCacheNotReadyUntilLoaded(t *testing.T) {
	s, _ := newStore(t, directory.Config{})
	c := directory.NewCache(s, nil)
	if _, err := c.Users(t.Context(), "acme"); !errors.Is(err, directory.ErrNotReady) {
		t.Fatalf("Users before Run: %v, want ErrNotReady", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.WaitReady(ctx); err == nil {
		t.Fatal("WaitReady returned nil for a cache that never loaded")
	}
	// An empty bucket is a completed load.
	c = startCache(t, s)
	if got, err := c.Users(t.Context(), "acme"); err != nil || len(got) != 0 {
		t.Fatalf("Users on an empty directory = %v, %v", got, err)
	}
}

// After the NATS server restarts, the cache watches again and follows changes made
// since: the store survives the restart, and so do the profiles.
func TestCacheWatchesAgainAfterServerRestart(t *testing.T) {
	s, srv := newStore(t, directory.Config{})
	ctx := t.Context()
	if _, _, err := s.Put(ctx, "acme", "1", directory.Profile{Email: "1@acme.example"}); err != nil {
		t.Fatal(err)
	}
	c := startCache(t, s)

	srv.Restart()

	// The store's own connection reconnects too; wait until it can write again.
	waitUntil(t, "the store writes after the restart", func() bool {
		_, _, err := s.Put(ctx, "acme", "2", directory.Profile{Email: "2@acme.example"})
		return err == nil
	})
	if err := s.Delete(ctx, "acme", "1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the cache follows changes after the restart", func() bool {
		got, _ := c.Users(ctx, "acme")
		return slices.Equal(got, []string{"2"})
	})
	if _, _, err := s.AddDevice(ctx, "acme", "2", directory.Device{Token: "t", Platform: "android"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "and keeps following them", func() bool {
		p, _ := c.Profile("acme", "2")
		return len(p.Devices) == 1
	})
}

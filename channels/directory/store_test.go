package directory_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/events"
)

func TestStoreCRUD(t *testing.T) {
	s, _ := newStore(t, directory.Config{})
	ctx := t.Context()

	if _, err := s.Get(ctx, "acme", "42"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("Get before Put: %v, want ErrNotFound", err)
	}

	in := directory.Profile{Email: "  ann@example.com ", Name: "Ann", Locale: "en", Channels: directory.Channels{Email: true}}
	p, created, err := s.Put(ctx, "acme", "42", in)
	if err != nil || !created {
		t.Fatalf("Put new: created %v, err %v", created, err)
	}
	if p.Email != "ann@example.com" || p.Devices == nil || len(p.Devices) != 0 {
		t.Errorf("stored %+v: want a trimmed email and an empty device list", p)
	}
	got, err := s.Get(ctx, "acme", "42")
	if err != nil || got.Email != "ann@example.com" || got.Channels != (directory.Channels{Email: true}) {
		t.Fatalf("Get = %+v, %v", got, err)
	}

	if _, _, err := s.AddDevice(ctx, "acme", "42", directory.Device{Token: "t1", Platform: "android"}); err != nil {
		t.Fatal(err)
	}
	// A replacement without devices keeps the registered ones.
	p, created, err = s.Put(ctx, "acme", "42", directory.Profile{Email: "ann@kommo.com", Channels: directory.DefaultChannels})
	if err != nil || created {
		t.Fatalf("Put again: created %v, err %v", created, err)
	}
	if p.Email != "ann@kommo.com" || p.Name != "" || !slices.Equal(tokens(p), []string{"t1"}) {
		t.Errorf("replaced profile %+v: want the new fields and the kept device", p)
	}
	// An empty device list removes them.
	if p, _, err = s.Put(ctx, "acme", "42", directory.Profile{Devices: []directory.Device{}}); err != nil || len(p.Devices) != 0 {
		t.Fatalf("Put with no devices: %+v, %v", p, err)
	}

	if err := s.Delete(ctx, "acme", "42"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "acme", "42"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "acme", "42"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("Delete twice: %v, want ErrNotFound", err)
	}
	// A deleted key can be created again.
	if _, created, err := s.Put(ctx, "acme", "42", directory.Profile{}); err != nil || !created {
		t.Fatalf("Put after Delete: created %v, err %v", created, err)
	}
}

func TestStoreRejects(t *testing.T) {
	s, _ := newStore(t, directory.Config{})
	dev := func(token, platform string) []directory.Device {
		return []directory.Device{{Token: "ok", Platform: "ios"}, {Token: token, Platform: platform}}
	}
	tests := []struct {
		name          string
		account, user string
		p             directory.Profile
		field         string
	}{
		{"bad account", "ac.me", "42", directory.Profile{}, "account"},
		{"bad user", "acme", "4 2", directory.Profile{}, "user"},
		{"_all is not a user", "acme", events.AllUsers, directory.Profile{}, "user"},
		{"not an address", "acme", "42", directory.Profile{Email: "ann"}, "email"},
		{"display name", "acme", "42", directory.Profile{Email: "Ann <ann@example.com>"}, "email"},
		{"two addresses", "acme", "42", directory.Profile{Email: "a@example.com, b@example.com"}, "email"},
		{"email too long", "acme", "42", directory.Profile{Email: strings.Repeat("a", 250) + "@x.io"}, "email"},
		{"name too long", "acme", "42", directory.Profile{Name: strings.Repeat("é", directory.MaxNameLen+1)}, "name"},
		{"name with a line break", "acme", "42", directory.Profile{Name: "Ann\nBcc: x"}, "name"},
		{"locale", "acme", "42", directory.Profile{Locale: "english please"}, "locale"},
		{"locale underscore", "acme", "42", directory.Profile{Locale: "en_US"}, "locale"},
		{"empty token", "acme", "42", directory.Profile{Devices: dev("", "ios")}, "devices[1].token"},
		{"token with space", "acme", "42", directory.Profile{Devices: dev("a b", "ios")}, "devices[1].token"},
		{"no platform", "acme", "42", directory.Profile{Devices: dev("t", "")}, "devices[1].platform"},
		{"bad platform", "acme", "42", directory.Profile{Devices: dev("t", "symbian")}, "devices[1].platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.Put(t.Context(), tt.account, tt.user, tt.p)
			fieldError(t, err, events.CodeInvalidField, tt.field)
		})
	}
	t.Run("device registration", func(t *testing.T) {
		_, _, err := s.AddDevice(t.Context(), "acme", "42", directory.Device{Token: "t", Platform: "blackberry"})
		fieldError(t, err, events.CodeInvalidField, "platform")
		_, _, err = s.AddDevice(t.Context(), "acme", "42", directory.Device{Platform: "ios"})
		fieldError(t, err, events.CodeInvalidField, "token")
	})
	if _, err := s.Get(t.Context(), "acme", "42"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("a refused write stored something: %v", err)
	}
}

func TestStoreDevices(t *testing.T) {
	s, _ := newStore(t, directory.Config{MaxDevices: 3})
	ctx := t.Context()
	add := func(token, platform string, wantAdded bool, want ...string) directory.Profile {
		t.Helper()
		p, added, err := s.AddDevice(ctx, "acme", "42", directory.Device{Token: token, Platform: platform})
		if err != nil {
			t.Fatalf("AddDevice(%s): %v", token, err)
		}
		if added != wantAdded || !slices.Equal(tokens(p), want) {
			t.Fatalf("AddDevice(%s): added %v, devices %v; want %v, %v", token, added, tokens(p), wantAdded, want)
		}
		return p
	}

	p := add("a", "android", true, "a")
	if p.Channels != directory.DefaultChannels {
		t.Errorf("a profile made by a registration has switches %+v, want both on", p.Channels)
	}
	add("b", "ios", true, "a", "b")
	// Re-registering moves the token to the newest place and takes the new platform.
	p = add("a", "WEB", false, "b", "a")
	if p.Devices[1].Platform != directory.Web || !p.Devices[1].AddedAt.After(p.Devices[0].AddedAt) {
		t.Errorf("re-registered device %+v", p.Devices)
	}
	add("c", "ios", true, "b", "a", "c")
	add("d", "ios", true, "a", "c", "d") // over the limit: the oldest (b) goes

	removed, err := s.RemoveDevice(ctx, "acme", "42", "c")
	if err != nil || !removed {
		t.Fatalf("RemoveDevice(c) = %v, %v", removed, err)
	}
	for _, tc := range []struct{ user, token string }{{"42", "c"}, {"42", "never"}, {"nobody", "a"}} {
		if removed, err := s.RemoveDevice(ctx, "acme", tc.user, tc.token); err != nil || removed {
			t.Errorf("RemoveDevice(%s, %s) = %v, %v; want a no-op", tc.user, tc.token, removed, err)
		}
	}
	if _, err := s.Get(ctx, "acme", "nobody"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("removing from a missing profile created one: %v", err)
	}
	if got, _ := s.Get(ctx, "acme", "42"); !slices.Equal(tokens(got), []string{"a", "d"}) {
		t.Errorf("devices %v, want [a d]", tokens(got))
	}

	// A profile's own device list is de-duplicated (the last wins) and capped too.
	p, _, err = s.Put(ctx, "acme", "43", directory.Profile{Devices: []directory.Device{
		{Token: "x", Platform: "ios"}, {Token: "y", Platform: "ios"}, {Token: "x", Platform: "android"},
		{Token: "z", Platform: "ios"}, {Token: "w", Platform: "ios"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tokens(p), []string{"x", "z", "w"}) || p.Devices[0].Platform != "android" {
		t.Errorf("devices %+v, want x (android), z, w", p.Devices)
	}
}

func TestStoreSetChannels(t *testing.T) {
	s, _ := newStore(t, directory.Config{})
	ctx := t.Context()
	if _, err := s.SetChannels(ctx, "acme", "42", directory.Channels{}); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("SetChannels without a profile: %v, want ErrNotFound", err)
	}
	if _, _, err := s.AddDevice(ctx, "acme", "42", directory.Device{Token: "t", Platform: "ios"}); err != nil {
		t.Fatal(err)
	}
	p, err := s.SetChannels(ctx, "acme", "42", directory.Channels{Push: true})
	if err != nil || p.Channels != (directory.Channels{Push: true}) || len(p.Devices) != 1 {
		t.Fatalf("SetChannels = %+v, %v", p, err)
	}
}

// Many writers registering devices for one user at once: every one lands, because
// each write is a compare-and-set retried on conflict.
func TestStoreConcurrentDevicesNoneLost(t *testing.T) {
	const writers = 50
	s, _ := newStore(t, directory.Config{MaxDevices: writers})
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for i := range writers {
		wg.Go(func() {
			if _, _, err := s.AddDevice(ctx, "acme", "42", directory.Device{Token: fmt.Sprintf("token-%02d", i), Platform: "android"}); err != nil {
				errs <- err
			}
		})
	}
	// A concurrent profile replacement without devices keeps them all too.
	wg.Go(func() {
		if _, _, err := s.Put(ctx, "acme", "42", directory.Profile{Email: "ann@example.com"}); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p, err := s.Get(ctx, "acme", "42")
	if err != nil {
		t.Fatal(err)
	}
	got := tokens(p)
	slices.Sort(got)
	if len(got) != writers || got[0] != "token-00" || got[writers-1] != fmt.Sprintf("token-%02d", writers-1) {
		t.Fatalf("%d devices %v, want all %d", len(got), got, writers)
	}
	if p.Email != "ann@example.com" {
		t.Errorf("email %q: the replacement was lost", p.Email)
	}
}

func TestNewStoreIsIdempotentAndOpenNeedsTheBucket(t *testing.T) {
	s, srv := newStore(t, directory.Config{})
	js := srv.JetStream(t)
	if _, err := directory.OpenStore(t.Context(), js, directory.Config{Bucket: "NOT_THERE"}); err == nil ||
		!strings.Contains(err.Error(), "start the dispatcher") {
		t.Errorf("OpenStore on a missing bucket: %v", err)
	}
	if _, _, err := s.Put(t.Context(), "acme", "42", directory.Profile{Email: "ann@example.com"}); err != nil {
		t.Fatal(err)
	}
	again := storeOn(t, js, directory.Config{}) // a second dispatcher starting
	opened, err := directory.OpenStore(t.Context(), js, directory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]*directory.Store{"NewStore again": again, "OpenStore": opened} {
		if p, err := st.Get(t.Context(), "acme", "42"); err != nil || p.Email != "ann@example.com" {
			t.Errorf("%s: Get = %+v, %v", name, p, err)
		}
	}
	if _, err := directory.NewStore(t.Context(), js, directory.Config{Replicas: 2}); err == nil {
		t.Error("NewStore accepted 2 replicas")
	}
}

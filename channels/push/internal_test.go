package push

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kommo-notify/notify/channels/directory"
)

func TestLedger(t *testing.T) {
	l := newLedger(2)
	a, b, c := sendKey("ev-1", "acme", "1"), sendKey("ev-1", "acme", "2"), sendKey("ev-2", "acme", "1")
	tokens := []string{"t1", "t2", "t3"}

	if got := l.pending(a, tokens); !slices.Equal(got, tokens) {
		t.Fatalf("pending of an unknown send = %v, want every token", got)
	}
	l.record(a, []string{"t1"})
	l.record(a, []string{"t3"})
	if got := l.pending(a, tokens); !slices.Equal(got, []string{"t2"}) {
		t.Fatalf("pending = %v, want [t2]", got)
	}
	if got := l.pending(b, tokens); !slices.Equal(got, tokens) {
		t.Fatalf("another user's send = %v, want every token", got)
	}

	l.record(b, []string{"t1"})
	l.record(c, []string{"t1"}) // the third send evicts the oldest, a
	if got := l.pending(a, tokens); !slices.Equal(got, tokens) {
		t.Errorf("an evicted send = %v, want every token again", got)
	}
	if l.len() != 2 {
		t.Errorf("len = %d, want 2", l.len())
	}

	// A send forgotten and recorded again keeps its place until its new slot is taken.
	l.forget(b)
	l.record(b, []string{"t2"}) // takes a's old slot
	l.record(a, []string{"t2"}) // takes c's slot, evicting c
	if got := l.pending(b, tokens); !slices.Equal(got, []string{"t1", "t3"}) {
		t.Errorf("pending of b = %v, want [t1 t3]", got)
	}
	if got := l.pending(c, tokens); !slices.Equal(got, tokens) {
		t.Errorf("pending of the evicted c = %v, want every token", got)
	}

	if off := newLedger(0); off.pending(a, tokens) == nil {
		t.Error("a ledger of size 0 must still answer")
	} else {
		off.record(a, tokens) // remembers nothing, and does not panic
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"a longer text here", 10, "a longe…"},
		{"ééééé", 8, "éé…"}, // never cuts inside a character
		{"line one\n\nline two", 13, "line one…"},
	} {
		got := truncate(tc.in, tc.n)
		if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestCollapseKey(t *testing.T) {
	long := strings.Repeat("x", 128)
	if k := collapseKey(long); len(k) > 64 || k != collapseKey(long) || k == collapseKey("other") {
		t.Errorf("collapseKey = %q: want at most 64 bytes, stable, distinct", k)
	}
}

func TestThrottle(t *testing.T) {
	th := &throttle{every: time.Minute}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	if ok, _ := th.allow(now); !ok {
		t.Fatal("the first problem is logged")
	}
	for range 3 {
		if ok, _ := th.allow(now.Add(time.Second)); ok {
			t.Fatal("a problem within the interval is held back")
		}
	}
	if ok, n := th.allow(now.Add(time.Minute)); !ok || n != 3 {
		t.Fatalf("after the interval: %v, %d suppressed; want true, 3", ok, n)
	}
}

func TestConfigValidate(t *testing.T) {
	creds := &Credentials{ProjectID: "p", ClientEmail: "a@p.iam.gserviceaccount.com", TokenURI: "https://oauth2.googleapis.com/token"}
	valid := func() Config {
		return Config{Credentials: creds, BaseURL: "https://crm.example.com", Profiles: nilProfiles{}, Devices: nilDevices{}}
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // in the error; empty: valid
	}{
		{"valid", func(*Config) {}, ""},
		{"emulator", func(c *Config) { c.Endpoint = "http://127.0.0.1:4004/" }, ""},
		{"no credentials", func(c *Config) { c.Credentials = nil }, "exactly one of credentials"},
		{"no project", func(c *Config) { c.Credentials = &Credentials{ClientEmail: "x"} }, "project id"},
		{"bad endpoint", func(c *Config) { c.Endpoint = "fcm.local" }, "endpoint"},
		{"no base URL", func(c *Config) { c.BaseURL = "" }, "base URL"},
		{"no directory", func(c *Config) { c.Devices = nil }, "directory"},
		{"negative rate", func(c *Config) { c.RatePerMinute = -1 }, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			c.setDefaults()
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string
	}{
		{"not JSON", `nope`, "not JSON"},
		{"user credentials", `{"type":"authorized_user"}`, "type is \"authorized_user\""},
		{"no email", `{"type":"service_account","private_key":"x"}`, "client_email"},
		{"no key", `{"type":"service_account","client_email":"a@b"}`, "not PEM"},
		{"not a key", `{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`, "neither PKCS#8 nor PKCS#1"},
		{"bad token_uri", `{"type":"service_account","client_email":"a@b","token_uri":"oauth2.local"}`, "token_uri"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCredentials([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseCredentials = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, err := LoadCredentials(t.TempDir() + "/missing.json"); err == nil {
		t.Error("LoadCredentials of a missing file succeeded")
	}
}

type nilProfiles struct{}

func (nilProfiles) Ready() <-chan struct{} { return nil }

func (nilProfiles) Profile(string, string) (directory.Profile, bool) {
	return directory.Profile{}, false
}

type nilDevices struct{}

func (nilDevices) RemoveDevice(context.Context, string, string, string) (bool, error) {
	return false, nil
}

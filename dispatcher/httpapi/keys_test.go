package httpapi_test

import (
	"strings"
	"testing"

	"github.com/kommo-notify/notify/dispatcher/httpapi"
	"github.com/kommo-notify/notify/events"
)

func TestParseKeys(t *testing.T) {
	type check struct {
		key, account   string
		known, allowed bool
	}
	tests := []struct {
		name   string
		in     string
		len    int
		checks []check
	}{
		{name: "empty", in: " , ,", len: 0, checks: []check{{"", "acme", false, false}}},
		{name: "any account", in: "k1", len: 1, checks: []check{{"k1", "acme", true, true}, {"k1", "globex", true, true}, {"k2", "acme", false, false}}},
		{name: "scoped", in: " acme : k1 , globex:k2", len: 2, checks: []check{
			{"k1", "acme", true, true}, {"k1", "globex", true, false}, {"k2", "globex", true, true}, {"k1 ", "acme", false, false},
		}},
		{name: "one key, two accounts", in: "acme:k,globex:k", len: 1, checks: []check{
			{"k", "acme", true, true}, {"k", "globex", true, true}, {"k", "initech", true, false},
		}},
		{name: "bare beats scoped", in: "acme:k,k", len: 1, checks: []check{{"k", "initech", true, true}}},
		{name: "colon in key", in: "acme:a:b", len: 1, checks: []check{{"a:b", "acme", true, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := httpapi.ParseKeys(tt.in)
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if keys.Len() != tt.len {
				t.Errorf("Len %d, want %d", keys.Len(), tt.len)
			}
			for _, c := range tt.checks {
				known, allowed := keys.Authorize(c.key, c.account)
				if known != c.known || allowed != c.allowed {
					t.Errorf("Authorize(%q, %q) = %v, %v; want %v, %v", c.key, c.account, known, allowed, c.known, c.allowed)
				}
			}
		})
	}
}

func TestParseKeysErrorsNameTheItemNotTheKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"good, ac.me:secret-1", "item 2: account"},
		{"secret-2, :secret-3", "item 2: account"},
		{"acme:", "item 1: empty key"},
		{"acme:   ", "item 1: empty key"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := httpapi.ParseKeys(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseKeys(%q): %v, want %q", tt.in, err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q reveals a key", err)
			}
		})
	}
}

func TestIdempotentID(t *testing.T) {
	a := httpapi.IdempotentID("acme", "order-1")
	if a != httpapi.IdempotentID("acme", "order-1") {
		t.Error("not deterministic")
	}
	if len(a) != 26 || events.CheckID(a) != nil {
		t.Errorf("id %q: want 26 characters that pass events.CheckID", a)
	}
	for _, other := range []string{
		httpapi.IdempotentID("globex", "order-1"),
		httpapi.IdempotentID("acme", "order-2"),
		httpapi.IdempotentID("acm", "eorder-1"),
	} {
		if other == a {
			t.Errorf("collision: %q", other)
		}
	}
}

package httpapi_test

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/dispatcher/httpapi"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/producer"
)

// Valid payloads, one per type.
var samples = map[events.Type]string{
	events.ShowMessage:      `{"header":"Hello","text":"World"}`,
	events.ShowMessageError: `{"header":"Oops","text":"Sync failed","link":"/contacts/list/?term=1"}`,
	events.ShowNotification: `{"text":{"header":"Call","text":"+1 555 0100"},"type":"call"}`,
	events.AddError:         `{"header":"Error","text":"Sync failed"}`,
	events.AddCall:          `{"text":"Incoming call","from":"+15550100","element":{"id":7,"type":"contact"},"duration":42}`,
}

func TestPublishAcceptsEveryType(t *testing.T) {
	f := newFixture(t, httpapi.Config{})
	for _, typ := range events.Types() {
		t.Run(string(typ), func(t *testing.T) {
			addr := events.Address{Account: "acme", User: "42", Type: typ}
			popup := make(chan *nats.Msg, 1)
			if !typ.Durable() {
				s, err := f.nc.ChanSubscribe(addr.Subject(), popup)
				if err != nil {
					t.Fatalf("subscribe: %v", err)
				}
				t.Cleanup(func() { _ = s.Unsubscribe() })
				if err := f.nc.Flush(); err != nil {
					t.Fatal(err)
				}
			}

			res := f.post(t, "/api/v1/notify/acme/42/"+string(typ), nil, samples[typ])
			id, warnings := res.accepted(t)
			if len(warnings) != 0 {
				t.Errorf("warnings %q, want none", warnings)
			}
			want := f.canonical(t, typ, samples[typ])

			var hdrID string
			var data []byte
			if typ.Durable() {
				msg, n := f.stored(t, addr.Subject())
				if n != 1 {
					t.Errorf("%d messages on %s, want 1", n, addr.Subject())
				}
				hdrID, data = msg.Header.Get(jetstream.MsgIDHeader), msg.Data
			} else {
				select {
				case msg := <-popup:
					hdrID, data = msg.Header.Get(jetstream.MsgIDHeader), msg.Data
				case <-time.After(5 * time.Second):
					t.Fatal("pop-up never arrived")
				}
			}
			if hdrID != id {
				t.Errorf("Nats-Msg-Id %q, want the returned id %q", hdrID, id)
			}
			if string(data) != string(want) {
				t.Errorf("published body %s, want the canonical %s", data, want)
			}
		})
	}
}

func TestPublishRejects(t *testing.T) {
	f := newFixture(t, httpapi.Config{})
	const msg = `{"header":"Hello","text":"World"}`
	big := `{"header":"h","text":"t","pad":"` + strings.Repeat("x", events.MaxBodySize) + `"}`
	tests := []struct {
		name      string
		method    string // POST when empty
		path      string
		header    map[string]string
		body      string
		status    int
		code      string
		field     string
		typeLabel string // the rejection's metric label; "" when the request is not counted
	}{
		{name: "no key", path: "/api/v1/notify/acme/42/show_message", header: map[string]string{"Authorization": ""},
			body: msg, status: 401, code: "unauthorized", typeLabel: "show_message"},
		{name: "unknown key", path: "/api/v1/notify/acme/42/show_message", header: map[string]string{"Authorization": "Bearer nope"},
			body: msg, status: 401, code: "unauthorized", typeLabel: "show_message"},
		{name: "not bearer", path: "/api/v1/notify/acme/42/show_message", header: map[string]string{"Authorization": "Basic " + anyKey},
			body: msg, status: 401, code: "unauthorized", typeLabel: "show_message"},
		{name: "admin key", path: "/api/v1/notify/acme/42/show_message", header: map[string]string{"Authorization": "Bearer " + adminKey},
			body: msg, status: 403, code: "forbidden", typeLabel: "show_message"},
		{name: "key of another account", path: "/api/v1/notify/globex/42/add_error", header: map[string]string{"Authorization": "Bearer " + acmeKey},
			body: msg, status: 403, code: "forbidden", typeLabel: "add_error"},
		{name: "bad account", path: "/api/v1/notify/ac.me/42/show_message", body: msg,
			status: 400, code: "invalid_field", field: "account", typeLabel: "show_message"},
		{name: "bad user", path: "/api/v1/notify/acme/" + strings.Repeat("u", 65) + "/show_message", body: msg,
			status: 400, code: "invalid_field", field: "user", typeLabel: "show_message"},
		{name: "unknown type", path: "/api/v1/notify/acme/42/show_toast", body: msg,
			status: 404, code: "unknown_type", field: "type", typeLabel: dispatcher.TypeUnknown},
		{name: "bad idempotency key", path: "/api/v1/notify/acme/42/show_message", header: map[string]string{"Idempotency-Key": "has space"},
			body: msg, status: 400, code: "invalid_field", field: "Idempotency-Key", typeLabel: "show_message"},
		{name: "text/plain", path: "/api/v1/notify/acme/42/show_message", header: map[string]string{"Content-Type": "text/plain"},
			body: msg, status: 415, code: "unsupported_media_type", typeLabel: "show_message"},
		{name: "form (curl -d)", path: "/api/v1/notify/acme/42/show_message", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body: msg, status: 415, code: "unsupported_media_type", typeLabel: "show_message"},
		{name: "latin1 charset", path: "/api/v1/notify/acme/42/show_message", header: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"},
			body: msg, status: 415, code: "unsupported_media_type", typeLabel: "show_message"},
		{name: "64 KiB + 1", path: "/api/v1/notify/acme/42/show_message", body: big[:events.MaxBodySize+1],
			status: 413, code: "too_large", typeLabel: "show_message"},
		{name: "malformed JSON", path: "/api/v1/notify/acme/42/show_message", body: `{"header":`,
			status: 400, code: "invalid_json", typeLabel: "show_message"},
		{name: "array", path: "/api/v1/notify/acme/42/show_message", body: `[1,2]`,
			status: 400, code: "invalid_json", typeLabel: "show_message"},
		{name: "missing required field", path: "/api/v1/notify/acme/42/show_message", body: `{"text":"World"}`,
			status: 400, code: "invalid_field", field: "header", typeLabel: "show_message"},
		{name: "nested field", path: "/api/v1/notify/acme/42/add_call", body: `{"text":"call","element":{"id":7,"type":"deal"}}`,
			status: 400, code: "invalid_field", field: "element.type", typeLabel: "add_call"},
		{name: "unknown path", method: "GET", path: "/api/v1/nothing", status: 404, code: "not_found"},
		{name: "extra segment", path: "/api/v1/notify/acme/42/show_message/x", body: msg, status: 404, code: "not_found"},
		{name: "wrong method", method: "GET", path: "/api/v1/notify/acme/42/show_message", status: 405, code: "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before float64
			if tt.typeLabel != "" {
				before = f.rejected(t, tt.typeLabel, tt.code)
			}
			method := cmp.Or(tt.method, http.MethodPost)
			res := f.request(t, method, tt.path, tt.header, tt.body)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", res.status, tt.status, res.body)
			}
			e := res.errorBody(t)
			if e.Code != tt.code || e.Field != tt.field || e.Message == "" {
				t.Errorf("error %+v, want code %q field %q and a message", e, tt.code, tt.field)
			}
			if tt.status == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q, want a Bearer challenge", res.header.Get("WWW-Authenticate"))
			}
			if tt.typeLabel != "" {
				if got := f.rejected(t, tt.typeLabel, tt.code) - before; got != 1 {
					t.Errorf("notify_events_rejected_total{type=%q,reason=%q} grew by %v, want 1", tt.typeLabel, tt.code, got)
				}
			}
		})
	}
}

func TestPublishMediaTypesAndWarnings(t *testing.T) {
	f := newFixture(t, httpapi.Config{})
	// Exactly the limit is still accepted; the unknown field is dropped with a warning.
	atLimit := `{"header":"h","text":"t","pad":"` + strings.Repeat("x", events.MaxBodySize) + `"}`
	atLimit = atLimit[:events.MaxBodySize-2] + `"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		warning     string // a field named in the warnings
	}{
		{name: "application/json", contentType: "application/json", body: `{"header":"h","text":"t"}`},
		{name: "charset", contentType: "application/json; charset=UTF-8", body: `{"header":"h","text":"t"}`},
		{name: "merge-patch+json", contentType: "application/merge-patch+json", body: `{"header":"h","text":"t"}`},
		{name: "no content type", contentType: "", body: `{"header":"h","text":"t"}`},
		{name: "unknown fields", contentType: "application/json", body: `{"header":"h","text":"t","color":"red"}`, warning: "color"},
		{name: "exactly 64 KiB", contentType: "application/json", body: atLimit, warning: "pad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.post(t, "/api/v1/notify/acme/42/show_message", map[string]string{"Content-Type": tt.contentType}, tt.body)
			_, warnings := res.accepted(t)
			named := slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, tt.warning) })
			if tt.warning == "" && len(warnings) != 0 || tt.warning != "" && !named {
				t.Errorf("warnings %q, want those naming %q", warnings, tt.warning)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t, httpapi.Config{})
	post := func(t *testing.T, account, key string) string {
		t.Helper()
		res := f.post(t, "/api/v1/notify/"+account+"/7/add_error", map[string]string{"Idempotency-Key": key}, samples[events.AddError])
		id, _ := res.accepted(t)
		return id
	}

	t.Run("same key twice is one event", func(t *testing.T) {
		first, second := post(t, "acme", "order-1001"), post(t, "acme", "order-1001")
		if first != second {
			t.Fatalf("ids %q and %q, want the same", first, second)
		}
		if first != httpapi.IdempotentID("acme", "order-1001") {
			t.Errorf("id %q is not IdempotentID(acme, order-1001)", first)
		}
		msg, n := f.stored(t, "notify.acme.7.add_error")
		if n != 1 {
			t.Errorf("%d messages stored, want 1", n)
		}
		if got := msg.Header.Get(jetstream.MsgIDHeader); got != first {
			t.Errorf("Nats-Msg-Id %q, want %q", got, first)
		}
	})

	t.Run("same key from two accounts is two events", func(t *testing.T) {
		a, b := post(t, "initech", "order-1001"), post(t, "globex", "order-1001")
		if a == b {
			t.Fatalf("both accounts got id %q", a)
		}
		for _, subject := range []string{"notify.initech.7.add_error", "notify.globex.7.add_error"} {
			if _, n := f.stored(t, subject); n != 1 {
				t.Errorf("%s: %d messages, want 1", subject, n)
			}
		}
	})

	t.Run("without the header every publish is new", func(t *testing.T) {
		a := f.post(t, "/api/v1/notify/acme/8/add_error", nil, samples[events.AddError])
		b := f.post(t, "/api/v1/notify/acme/8/add_error", nil, samples[events.AddError])
		idA, _ := a.accepted(t)
		idB, _ := b.accepted(t)
		if idA == idB {
			t.Fatalf("two publishes got id %q", idA)
		}
		if _, n := f.stored(t, "notify.acme.8.add_error"); n != 2 {
			t.Errorf("%d messages, want 2", n)
		}
	})
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, httpapi.Config{RateLimit: 1}) // burst 2
	path := "/api/v1/notify/acme/42/show_message"
	publish := func(t *testing.T, path, body string) response {
		t.Helper()
		return f.post(t, path, nil, body)
	}

	// Refused events spend no tokens.
	for range 3 {
		if res := publish(t, path, `{"text":"no header"}`); res.status != http.StatusBadRequest {
			t.Fatalf("invalid event: status %d, want 400", res.status)
		}
	}
	for range 2 {
		publish(t, path, samples[events.ShowMessage]).accepted(t)
	}
	before := f.rejected(t, "show_message", "rate_limited")
	res := publish(t, path, samples[events.ShowMessage])
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("third event in the same second: status %d, want 429", res.status)
	}
	if e := res.errorBody(t); e.Code != "rate_limited" {
		t.Errorf("code %q, want rate_limited", e.Code)
	}
	if got := res.header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if got := f.rejected(t, "show_message", "rate_limited") - before; got != 1 {
		t.Errorf("rate_limited counted %v times, want 1", got)
	}

	// Another account has its own bucket.
	publish(t, "/api/v1/notify/globex/42/show_message", samples[events.ShowMessage]).accepted(t)

	// One second later one token is back, and only one.
	f.clock.Advance(time.Second)
	publish(t, path, samples[events.ShowMessage]).accepted(t)
	if res := publish(t, path, samples[events.ShowMessage]); res.status != http.StatusTooManyRequests {
		t.Fatalf("after one refill: status %d, want 429", res.status)
	}
}

func TestUnavailable(t *testing.T) {
	t.Run("publisher connection closed", func(t *testing.T) {
		f := newFixture(t, httpapi.Config{}, func(f *fixture, cfg *httpapi.Config) {
			nc := f.nats.Conn(t)
			client, err := producer.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			nc.Close()
			cfg.Publisher = client
		})
		for _, typ := range []events.Type{events.ShowMessage, events.AddCall} {
			before := f.rejected(t, string(typ), "unavailable")
			res := f.post(t, "/api/v1/notify/acme/42/"+string(typ), nil, samples[typ])
			if res.status != http.StatusServiceUnavailable || res.errorBody(t).Code != "unavailable" {
				t.Errorf("%s: status %d body %s, want 503 unavailable", typ, res.status, res.body)
			}
			if got := f.rejected(t, string(typ), "unavailable") - before; got != 1 {
				t.Errorf("%s: unavailable counted %v times, want 1", typ, got)
			}
		}
	})

	t.Run("NATS stopped", func(t *testing.T) {
		f := newFixture(t, httpapi.Config{}, func(f *fixture, cfg *httpapi.Config) {
			cfg.Ready = func() error {
				if !f.nc.IsConnected() {
					return errors.New("NATS not connected")
				}
				return nil
			}
		})
		if res := f.request(t, http.MethodGet, "/readyz", nil, ""); res.status != http.StatusOK {
			t.Fatalf("readyz before the stop: %d", res.status)
		}
		f.nats.Stop()
		<-f.disconnected
		for _, typ := range []events.Type{events.ShowMessage, events.AddError} {
			res := f.post(t, "/api/v1/notify/acme/42/"+string(typ), nil, samples[typ])
			if res.status != http.StatusServiceUnavailable || res.errorBody(t).Code != "unavailable" {
				t.Errorf("%s: status %d body %s, want 503 unavailable", typ, res.status, res.body)
			}
		}
		res := f.request(t, http.MethodGet, "/readyz", nil, "")
		if res.status != http.StatusServiceUnavailable || res.errorBody(t).Code != "unavailable" {
			t.Errorf("readyz: status %d body %s, want 503 unavailable", res.status, res.body)
		}
	})

	t.Run("publish times out", func(t *testing.T) {
		f := newFixture(t, httpapi.Config{PublishTimeout: 200 * time.Millisecond})
		f.nats.Stop()
		<-f.disconnected
		res := f.post(t, "/api/v1/notify/acme/42/add_error", nil, samples[events.AddError])
		if res.status != http.StatusServiceUnavailable {
			t.Errorf("status %d body %s, want 503", res.status, res.body)
		}
	})
}

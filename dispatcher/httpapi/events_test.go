package httpapi_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/dispatcher/httpapi"
	"github.com/kommo-notify/notify/events"
)

const (
	otherKey      = "key-other-only"
	otherAdminKey = "key-admin-other"
	addErrorBody  = `{"header":"Error","text":"Failed to set the task!"}`
)

// withStatus serves delivery status from the fixture's dispatcher, with keys of a
// second account to check that one account never sees another's events.
func withStatus(t *testing.T) func(*fixture, *httpapi.Config) {
	return func(f *fixture, c *httpapi.Config) {
		c.Status = f.d
		c.APIKeys = mustKeys(t, anyKey+", acme:"+acmeKey+", other:"+otherKey)
		c.AdminKeys = mustKeys(t, adminKey+", other:"+otherAdminKey)
	}
}

func TestEventStatusOfAnAcceptedEvent(t *testing.T) {
	f := newFixture(t, httpapi.Config{}, withStatus(t))
	id, _ := f.post(t, "/api/v1/notify/acme/42/add_error", map[string]string{"Authorization": "Bearer " + acmeKey}, addErrorBody).accepted(t)

	for _, key := range []string{acmeKey, anyKey, adminKey} {
		resp := f.request(t, http.MethodGet, "/api/v1/events/"+id, map[string]string{"Authorization": "Bearer " + key}, "")
		if resp.status != http.StatusOK {
			t.Fatalf("key %s: %d %s", key, resp.status, resp.body)
		}
		var st dispatcher.EventStatus
		if err := json.Unmarshal(resp.body, &st); err != nil {
			t.Fatal(err)
		}
		if st.ID != id || st.Type != events.AddError || st.Account != "acme" || len(st.Deliveries) != 4 {
			t.Fatalf("status %s", resp.body)
		}
		for _, d := range st.Deliveries {
			if d.State != dispatcher.StateQueued || d.User != "42" {
				t.Errorf("delivery %+v, want queued for 42", d)
			}
		}
		// Every field of the contract is present, also when empty.
		var raw struct {
			Deliveries []map[string]json.RawMessage `json:"deliveries"`
		}
		if err := json.Unmarshal(resp.body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{"channel", "user", "state", "attempts", "reason", "error", "updated_at"} {
			if _, ok := raw.Deliveries[0][field]; !ok {
				t.Errorf("delivery without %q: %s", field, resp.body)
			}
		}
	}
}

func TestEventStatusRefusals(t *testing.T) {
	f := newFixture(t, httpapi.Config{}, withStatus(t))
	id, _ := f.post(t, "/api/v1/notify/acme/42/add_error", nil, addErrorBody).accepted(t)
	popup, _ := f.post(t, "/api/v1/notify/acme/42/show_message", nil, `{"header":"h","text":"t"}`).accepted(t)

	tests := []struct {
		name, path, key string
		status          int
		code, field     string
	}{
		{"no key", "/api/v1/events/" + id, "", http.StatusUnauthorized, events.CodeUnauthorized, ""},
		{"unknown key", "/api/v1/events/" + id, "nope", http.StatusUnauthorized, events.CodeUnauthorized, ""},
		{"producer key of another account", "/api/v1/events/" + id, otherKey, http.StatusNotFound, events.CodeNotFound, ""},
		{"admin key of another account", "/api/v1/events/" + id, otherAdminKey, http.StatusNotFound, events.CodeNotFound, ""},
		{"unknown event", "/api/v1/events/01J00000000000000000000000", anyKey, http.StatusNotFound, events.CodeNotFound, ""},
		{"pop-ups keep no status", "/api/v1/events/" + popup, anyKey, http.StatusNotFound, events.CodeNotFound, ""},
		{"malformed id", "/api/v1/events/a%20b", anyKey, http.StatusBadRequest, events.CodeInvalidField, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := ""
			if tt.key != "" {
				auth = "Bearer " + tt.key
			}
			resp := f.request(t, http.MethodGet, tt.path, map[string]string{"Authorization": auth}, "")
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			if e := resp.errorBody(t); e.Code != tt.code || e.Field != tt.field {
				t.Errorf("error %+v, want code %s field %q", e, tt.code, tt.field)
			}
		})
	}
}

func TestEventStatusWithoutAStore(t *testing.T) {
	f := newFixture(t, httpapi.Config{})
	resp := f.request(t, http.MethodGet, "/api/v1/events/x1", nil, "")
	if resp.status != http.StatusServiceUnavailable || resp.errorBody(t).Code != events.CodeUnavailable {
		t.Errorf("%d %s, want 503 unavailable", resp.status, resp.body)
	}
}

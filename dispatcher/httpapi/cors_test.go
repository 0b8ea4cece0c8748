package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kommo-notify/notify/dispatcher/httpapi"
)

func TestCORS(t *testing.T) {
	f := newFixture(t, httpapi.Config{AllowedOrigins: []string{"crm.example.com", "*.kommo.test"}})
	preflight := func(t *testing.T, origin string) response {
		t.Helper()
		return f.request(t, http.MethodOptions, "/api/v1/notify/acme/42/show_message", map[string]string{
			"Origin":                         origin,
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "authorization, content-type",
		}, "")
	}
	t.Run("allowed preflight", func(t *testing.T) {
		res := preflight(t, "https://eu.kommo.test")
		if res.status != http.StatusNoContent || res.header.Get("Access-Control-Allow-Origin") != "https://eu.kommo.test" ||
			!strings.Contains(res.header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("status %d headers %v", res.status, res.header)
		}
	})
	t.Run("foreign preflight", func(t *testing.T) {
		res := preflight(t, "https://evil.example")
		if res.status != http.StatusForbidden || res.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("status %d headers %v", res.status, res.header)
		}
	})
	t.Run("allowed request", func(t *testing.T) {
		res := f.post(t, "/api/v1/notify/acme/42/show_message", map[string]string{"Origin": "https://crm.example.com"},
			`{"header":"h","text":"t"}`)
		if res.status != http.StatusAccepted || res.header.Get("Access-Control-Allow-Origin") != "https://crm.example.com" {
			t.Errorf("status %d headers %v", res.status, res.header)
		}
	})
	t.Run("foreign request gets no CORS headers", func(t *testing.T) {
		res := f.post(t, "/api/v1/notify/acme/42/show_message", map[string]string{"Origin": "https://crm.example.com.evil.example"},
			`{"header":"h","text":"t"}`)
		if res.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("headers %v", res.header)
		}
	})
}

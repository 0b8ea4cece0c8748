package httpapi_test

import (
	"testing"
	"time"

	"github.com/kommo-notify/notify/dispatcher/httpapi"
	"github.com/kommo-notify/notify/events/token"
)

// A browser publishes with its user token, for itself only: how /client.js's
// APP.notifications reach the API.
func TestPublishWithUserToken(t *testing.T) {
	signer, err := token.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, httpapi.Config{Users: signer})
	own, _ := signer.Mint("acme", "42", time.Hour)
	forger, _ := token.NewSigner([]byte("another secret, another secret!!"))
	forged, _ := forger.Mint("acme", "42", time.Hour)
	const body = `{"header":"Warning","text":"Connection established"}`
	tests := []struct {
		name, path, token string
		status            int
	}{
		{"own user", "/api/v1/notify/acme/42/show_message", own, 202},
		{"own user, durable", "/api/v1/notify/acme/42/add_error", own, 202},
		{"another user", "/api/v1/notify/acme/43/show_message", own, 403},
		{"everyone", "/api/v1/notify/acme/_all/show_message", own, 403},
		{"another account", "/api/v1/notify/globex/42/show_message", own, 403},
		{"forged", "/api/v1/notify/acme/42/show_message", forged, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.post(t, tt.path, map[string]string{"Authorization": "Bearer " + tt.token}, body)
			if res.status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.status, tt.status, res.body)
			}
		})
	}
}

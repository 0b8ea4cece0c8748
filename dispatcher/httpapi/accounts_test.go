package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/dispatcher/httpapi"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/token"
)

// withDirectory gives the fixture's API a recipient directory on its NATS server.
func withDirectory(t *testing.T, cfg directory.Config) func(*fixture, *httpapi.Config) {
	return func(f *fixture, c *httpapi.Config) {
		s, err := directory.NewStore(t.Context(), f.js, cfg)
		if err != nil {
			t.Fatalf("directory: %v", err)
		}
		c.Directory = s
	}
}

// admin sends a request with the admin key (a header value of "" removes it).
func (f *fixture) admin(t *testing.T, method, path, body string, header ...string) response {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + adminKey}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return f.request(t, method, path, h, body)
}

// profile decodes a profile answer with the expected status.
func (r response) profile(t *testing.T, status int) directory.Profile {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var p directory.Profile
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("profile %s: %v", r.body, err)
	}
	if !strings.Contains(string(r.body), `"devices":[`) {
		t.Errorf("profile %s: devices must be an array", r.body)
	}
	return p
}

func (r response) wantError(t *testing.T, status int, code, field string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if e := r.errorBody(t); e.Code != code || e.Field != field || e.Message == "" {
		t.Fatalf("error %+v, want code %q field %q and a message", e, code, field)
	}
}

func deviceTokens(p directory.Profile) []string {
	var out []string
	for _, d := range p.Devices {
		out = append(out, d.Token)
	}
	return out
}

const usersPath = "/api/v1/accounts/acme/users/42"

func TestProfileLifecycle(t *testing.T) {
	f := newFixture(t, httpapi.Config{}, withDirectory(t, directory.Config{}))

	f.admin(t, http.MethodGet, usersPath, "").wantError(t, 404, "not_found", "")

	p := f.admin(t, http.MethodPut, usersPath, `{"email":"ann@example.com","name":"Ann","locale":"en"}`).profile(t, 201)
	if p.Email != "ann@example.com" || p.Channels != directory.DefaultChannels || len(p.Devices) != 0 {
		t.Errorf("created %+v: want the email, both switches on, no devices", p)
	}
	p = f.admin(t, http.MethodPut, usersPath, `{"email":"ann@kommo.com","channels":{"email":false,"push":true}}`).profile(t, 200)
	if p.Email != "ann@kommo.com" || p.Name != "" || p.Channels.Email {
		t.Errorf("replaced %+v", p)
	}
	if got := f.admin(t, http.MethodGet, usersPath, "").profile(t, 200); got.Email != "ann@kommo.com" || got.Channels.Email {
		t.Errorf("GET %+v", got)
	}

	// FCM tokens carry ':' '-' '_', all fine in a path segment.
	const fcm = "dGVzdC10b2tlbg:APA91bH-x_y1"
	p = f.admin(t, http.MethodPost, usersPath+"/devices", `{"token":"`+fcm+`","platform":"android"}`).profile(t, 201)
	if !slices.Equal(deviceTokens(p), []string{fcm}) || p.Devices[0].AddedAt.IsZero() {
		t.Fatalf("devices %+v", p.Devices)
	}
	p = f.admin(t, http.MethodPost, usersPath+"/devices", `{"token":"`+fcm+`","platform":"ios"}`).profile(t, 200)
	if len(p.Devices) != 1 || p.Devices[0].Platform != "ios" {
		t.Errorf("re-registered %+v, want one ios device", p.Devices)
	}
	// A PUT without devices keeps them.
	if p = f.admin(t, http.MethodPut, usersPath, `{"email":"ann@kommo.com"}`).profile(t, 200); len(p.Devices) != 1 {
		t.Errorf("PUT without devices dropped them: %+v", p)
	}
	// A token with a slash travels percent-encoded in one segment.
	f.admin(t, http.MethodPost, usersPath+"/devices", `{"token":"a/b","platform":"web"}`).profile(t, 201)
	if res := f.admin(t, http.MethodDelete, usersPath+"/devices/"+url.PathEscape("a/b"), ""); res.status != 204 {
		t.Fatalf("DELETE escaped token: %d %s", res.status, res.body)
	}

	if res := f.admin(t, http.MethodDelete, usersPath+"/devices/"+fcm, ""); res.status != 204 || len(res.body) != 0 {
		t.Fatalf("DELETE device: %d %s", res.status, res.body)
	}
	f.admin(t, http.MethodDelete, usersPath+"/devices/"+fcm, "").wantError(t, 404, "not_found", "")
	if p = f.admin(t, http.MethodGet, usersPath, "").profile(t, 200); len(p.Devices) != 0 {
		t.Errorf("devices %+v after removal", p.Devices)
	}

	if res := f.admin(t, http.MethodDelete, usersPath, ""); res.status != 204 || len(res.body) != 0 {
		t.Fatalf("DELETE profile: %d %s", res.status, res.body)
	}
	f.admin(t, http.MethodGet, usersPath, "").wantError(t, 404, "not_found", "")
	f.admin(t, http.MethodDelete, usersPath, "").wantError(t, 404, "not_found", "")
	f.admin(t, http.MethodDelete, usersPath+"/devices/"+fcm, "").wantError(t, 404, "not_found", "")

	// Registering a device for a user without a profile makes one with the defaults.
	p = f.admin(t, http.MethodPost, "/api/v1/accounts/acme/users/new/devices", `{"token":"t","platform":"android"}`).profile(t, 201)
	if p.Email != "" || p.Channels != directory.DefaultChannels || len(p.Devices) != 1 {
		t.Errorf("profile made by a registration: %+v", p)
	}
}

func TestAdminCredentials(t *testing.T) {
	signer, err := token.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	userToken, err := signer.Mint("acme", "42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, httpapi.Config{Users: signer, AdminKeys: mustKeys(t, adminKey+", globex:key-admin-globex")},
		withDirectory(t, directory.Config{}))
	routes := []struct{ method, path, body string }{
		{http.MethodPut, usersPath, `{}`},
		{http.MethodGet, usersPath, ""},
		{http.MethodDelete, usersPath, ""},
		{http.MethodPost, usersPath + "/devices", `{"token":"t","platform":"ios"}`},
		{http.MethodDelete, usersPath + "/devices/t", ""},
	}
	creds := []struct {
		name, auth string
		status     int
		code       string
	}{
		{"no credential", "", 401, "unauthorized"},
		{"not bearer", "Basic " + adminKey, 401, "unauthorized"},
		{"unknown key", "Bearer nope", 401, "unauthorized"},
		{"producer key", "Bearer " + anyKey, 403, "forbidden"},
		{"account producer key", "Bearer " + acmeKey, 403, "forbidden"},
		{"user token", "Bearer " + userToken, 403, "forbidden"},
		{"admin key of another account", "Bearer key-admin-globex", 403, "forbidden"},
	}
	for _, r := range routes {
		for _, c := range creds {
			t.Run(r.method+" "+r.path+"/"+c.name, func(t *testing.T) {
				res := f.request(t, r.method, r.path, map[string]string{"Authorization": c.auth}, r.body)
				res.wantError(t, c.status, c.code, "")
				if c.status == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", res.header.Get("WWW-Authenticate"))
				}
			})
		}
	}
	// The scoped admin key works for its own account.
	f.request(t, http.MethodPut, "/api/v1/accounts/globex/users/1", map[string]string{"Authorization": "Bearer key-admin-globex"}, `{}`).profile(t, 201)
}

func TestAdminRejects(t *testing.T) {
	f := newFixture(t, httpapi.Config{}, withDirectory(t, directory.Config{}))
	big := `{"name":"` + strings.Repeat("x", events.MaxBodySize) + `"}`
	tests := []struct {
		name, method, path, body string
		header                   []string
		status                   int
		code, field              string
	}{
		{"bad account", "GET", "/api/v1/accounts/ac.me/users/42", "", nil, 400, "invalid_field", "account"},
		{"bad user", "GET", "/api/v1/accounts/acme/users/" + strings.Repeat("u", 65), "", nil, 400, "invalid_field", "user"},
		{"_all", "PUT", "/api/v1/accounts/acme/users/_all", `{}`, nil, 400, "invalid_field", "user"},
		{"_all devices", "POST", "/api/v1/accounts/acme/users/_all/devices", `{"token":"t","platform":"ios"}`, nil, 400, "invalid_field", "user"},
		{"malformed", "PUT", usersPath, `{"email":`, nil, 400, "invalid_json", ""},
		{"array", "PUT", usersPath, `[]`, nil, 400, "invalid_json", ""},
		{"string", "POST", usersPath + "/devices", `"t"`, nil, 400, "invalid_json", ""},
		{"invalid UTF-8", "PUT", usersPath, "{\"name\":\"\xff\"}", nil, 400, "invalid_json", ""},
		{"unknown field", "PUT", usersPath, `{"emial":"a@example.com"}`, nil, 400, "invalid_field", "emial"},
		{"bad email", "PUT", usersPath, `{"email":"Ann <ann@example.com>"}`, nil, 400, "invalid_field", "email"},
		{"bad locale", "PUT", usersPath, `{"locale":"en_US"}`, nil, 400, "invalid_field", "locale"},
		{"bad switch", "PUT", usersPath, `{"channels":{"push":1}}`, nil, 400, "invalid_field", "channels.push"},
		{"bad device in profile", "PUT", usersPath, `{"devices":[{"token":"t","platform":"nokia"}]}`, nil, 400, "invalid_field", "devices[0].platform"},
		{"no platform", "POST", usersPath + "/devices", `{"token":"t"}`, nil, 400, "invalid_field", "platform"},
		{"token with a space", "POST", usersPath + "/devices", `{"token":"a b","platform":"ios"}`, nil, 400, "invalid_field", "token"},
		{"path token with a space", "DELETE", usersPath + "/devices/a%20b", "", nil, 400, "invalid_field", "token"},
		{"too large", "PUT", usersPath, big, nil, 413, "too_large", ""},
		{"text/plain", "PUT", usersPath, `{}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", ""},
		{"form", "POST", usersPath + "/devices", `{}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", ""},
		{"wrong method", "PATCH", usersPath, `{}`, nil, 405, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.admin(t, tt.method, tt.path, tt.body, tt.header...).wantError(t, tt.status, tt.code, tt.field)
		})
	}
	f.admin(t, http.MethodGet, usersPath, "").wantError(t, 404, "not_found", "") // nothing was stored
	// A JSON media type other than application/json is JSON too.
	f.admin(t, http.MethodPut, usersPath, `{}`, "Content-Type", "application/merge-patch+json; charset=utf-8").profile(t, 201)
}

func TestAdminUnavailable(t *testing.T) {
	t.Run("no directory", func(t *testing.T) {
		f := newFixture(t, httpapi.Config{})
		f.admin(t, http.MethodGet, usersPath, "").wantError(t, 503, "unavailable", "")
		// Credentials are checked first: nothing is said to a caller without a key.
		f.request(t, http.MethodGet, usersPath, map[string]string{"Authorization": ""}, "").wantError(t, 401, "unauthorized", "")
	})
	t.Run("NATS stopped", func(t *testing.T) {
		f := newFixture(t, httpapi.Config{PublishTimeout: 500 * time.Millisecond}, withDirectory(t, directory.Config{}))
		f.nats.Stop()
		<-f.disconnected
		f.admin(t, http.MethodGet, usersPath, "").wantError(t, 503, "unavailable", "")
		f.admin(t, http.MethodPost, usersPath+"/devices", `{"token":"t","platform":"ios"}`).wantError(t, 503, "unavailable", "")
	})
}

// Many clients registering devices for one user at once: none is lost.
func TestAdminConcurrentDevices(t *testing.T) {
	const clients = 50
	f := newFixture(t, httpapi.Config{}, withDirectory(t, directory.Config{MaxDevices: clients}))
	var wg sync.WaitGroup
	results := make(chan string, clients)
	for i := range clients {
		wg.Go(func() {
			body := fmt.Sprintf(`{"token":"token-%02d","platform":"android"}`, i)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.http.URL+usersPath+"/devices", strings.NewReader(body))
			if err != nil {
				results <- err.Error()
				return
			}
			req.Header.Set("Authorization", "Bearer "+adminKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- err.Error()
				return
			}
			resp.Body.Close()
			results <- resp.Status
		})
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r != "201 Created" {
			t.Errorf("%s, want 201 Created", r)
		}
	}
	p := f.admin(t, http.MethodGet, usersPath, "").profile(t, 200)
	if got := deviceTokens(p); len(got) != clients {
		t.Fatalf("%d devices, want %d: %v", len(got), clients, got)
	}
}

package httpapi_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/dispatcher/httpapi"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/producer"
)

func TestProbesMetricsAndRoutes(t *testing.T) {
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"route":"`+r.PathValue("name")+`"}`)
	})
	f := newFixture(t, httpapi.Config{Routes: []httpapi.Route{{Pattern: "GET /extra/{name}", Handler: route}}},
		func(f *fixture, cfg *httpapi.Config) {
			cfg.MetricsHandler = promhttp.HandlerFor(f.reg, promhttp.HandlerOpts{})
		})
	tests := []struct {
		path   string
		status int
		body   string // a substring of the body
	}{
		{"/healthz", 200, `{"status":"ok"}`},
		{"/readyz", 200, `{"status":"ok"}`},
		{"/metrics", 200, `notify_events_rejected_total{reason="rate_limited",type="unknown"} 0`},
		{"/extra/demo", 200, `{"route":"demo"}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, f.http.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.body) {
				t.Errorf("status %d body %s, want %d with %s", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

func TestMetricsWithoutHandlerIsNotFound(t *testing.T) {
	f := newFixture(t, httpapi.Config{})
	res := f.request(t, http.MethodGet, "/metrics", nil, "")
	if res.status != http.StatusNotFound || res.errorBody(t).Code != events.CodeNotFound {
		t.Errorf("status %d body %s, want 404 not_found", res.status, res.body)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	keys := mustKeys(t, "k")
	client := &producer.Client{}
	ok := http.NotFoundHandler()
	tests := []struct {
		name string
		cfg  httpapi.Config
		want string
	}{
		{"no publisher", httpapi.Config{APIKeys: keys}, "publisher"},
		{"no keys", httpapi.Config{Publisher: client}, "API keys"},
		{"negative rate", httpapi.Config{Publisher: client, APIKeys: keys, RateLimit: -1}, "rate limit"},
		{"route without handler", httpapi.Config{Publisher: client, APIKeys: keys, Routes: []httpapi.Route{{Pattern: "GET /x"}}}, "route 1"},
		{"conflicting route", httpapi.Config{Publisher: client, APIKeys: keys, Routes: []httpapi.Route{{Pattern: "GET /healthz", Handler: ok}}}, "/healthz"},
		{"bad pattern", httpapi.Config{Publisher: client, APIKeys: keys, Routes: []httpapi.Route{{Pattern: "GET /{", Handler: ok}}}, "route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Metrics = dispatcher.NewMetrics(prometheus.NewRegistry())
			_, err := httpapi.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestRequestLogNeverHoldsKeysOrBodies(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFixture(t, httpapi.Config{Logger: log})
	f.post(t, "/api/v1/notify/acme/42/show_message", nil, `{"header":"secret-header","text":"secret-text"}`).accepted(t)
	f.post(t, "/api/v1/notify/acme/42/show_message", map[string]string{"Authorization": "Bearer wrong-key-xyz"}, `{}`)
	out := buf.String()
	for _, secret := range []string{anyKey, "wrong-key-xyz", "secret-header", "secret-text"} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, `"status":202`) || !strings.Contains(out, `"status":401`) {
		t.Errorf("log lacks the requests' statuses:\n%s", out)
	}
}

func TestHandlerWithoutNATS(t *testing.T) {
	// The mux's own errors do not depend on NATS: a server whose publisher is never
	// reached answers them all in JSON.
	s, err := httpapi.New(httpapi.Config{Publisher: &producer.Client{}, APIKeys: mustKeys(t, "k")})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/healthz", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Content-Type") != "application/json" ||
		!strings.Contains(rec.Body.String(), `"code":"not_found"`) || rec.Header().Get("Allow") == "" {
		t.Errorf("DELETE /healthz: %d %q %s", rec.Code, rec.Header(), rec.Body)
	}
}

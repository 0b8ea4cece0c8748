package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/dispatcher/httpapi"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
	"github.com/kommo-notify/notify/events/producer"
)

// Keys of the test servers.
const (
	anyKey   = "key-any-account"
	acmeKey  = "key-acme-only"
	adminKey = "key-admin"
)

// fixture is a NATS server with the streams provisioned, an HTTP API in front of it
// and the means to look behind it.
type fixture struct {
	nats  *natstest.Server
	d     *dispatcher.Dispatcher // provisioned, not running
	nc    *nats.Conn
	js    jetstream.JetStream
	http  *httptest.Server
	reg   *prometheus.Registry
	clock *clock
	// disconnected is closed when nc loses the server.
	disconnected chan struct{}
}

// clock is a settable Now for deterministic dates and rate limiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newFixture starts NATS, provisions the streams and serves the API with cfg, whose
// zero Publisher, keys, Metrics and Now are filled in. Each adjust runs once NATS is up,
// before the server is built.
func newFixture(t *testing.T, cfg httpapi.Config, adjust ...func(*fixture, *httpapi.Config)) *fixture {
	t.Helper()
	f := &fixture{
		nats:         natstest.Start(t),
		reg:          prometheus.NewRegistry(),
		clock:        &clock{t: time.Now().Truncate(time.Second)},
		disconnected: make(chan struct{}),
	}
	var once sync.Once
	f.nc = f.nats.Conn(t, nats.DisconnectErrHandler(func(*nats.Conn, error) {
		once.Do(func() { close(f.disconnected) })
	}))
	d, err := dispatcher.New(f.nc, dispatcher.Config{Channels: []channels.Channel{
		channels.Disabled(channels.Relay), channels.Disabled(channels.Center),
		channels.Disabled(channels.Email), channels.Disabled(channels.Push),
	}})
	if err != nil {
		t.Fatalf("dispatcher: %v", err)
	}
	if err := d.Provision(t.Context()); err != nil {
		t.Fatalf("provision: %v", err)
	}
	f.d = d
	if f.js, err = jetstream.New(f.nc); err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	for _, a := range adjust {
		a(f, &cfg)
	}
	if cfg.Publisher == nil {
		client, err := producer.New(f.nc)
		if err != nil {
			t.Fatalf("producer: %v", err)
		}
		cfg.Publisher = client
	}
	if cfg.APIKeys.Len() == 0 {
		cfg.APIKeys = mustKeys(t, anyKey+", acme:"+acmeKey)
	}
	if cfg.AdminKeys.Len() == 0 {
		cfg.AdminKeys = mustKeys(t, adminKey)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = dispatcher.NewMetrics(f.reg)
	}
	if cfg.Now == nil {
		cfg.Now = f.clock.Now
	}
	s, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	f.http = httptest.NewServer(s.Handler())
	t.Cleanup(f.http.Close)
	return f
}

func mustKeys(t *testing.T, s string) httpapi.Keys {
	t.Helper()
	k, err := httpapi.ParseKeys(s)
	if err != nil {
		t.Fatalf("ParseKeys(%q): %v", s, err)
	}
	return k
}

// response is what a test needs of an HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes the contract's error object, failing the test on any other shape.
func (r response) errorBody(t *testing.T) events.Error {
	t.Helper()
	var body struct{ Error *events.Error }
	if err := json.Unmarshal(r.body, &body); err != nil || body.Error == nil {
		t.Fatalf("status %d: body %q is not an error object (%v)", r.status, r.body, err)
	}
	return *body.Error
}

// accepted decodes a 202 body, checking that warnings is an array.
func (r response) accepted(t *testing.T) (id string, warnings []string) {
	t.Helper()
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202; body %s", r.status, r.body)
	}
	var body struct {
		ID       string           `json:"id"`
		Warnings *json.RawMessage `json:"warnings"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("202 body %q: %v", r.body, err)
	}
	if body.Warnings == nil || (*body.Warnings)[0] != '[' {
		t.Fatalf("202 body %s: warnings must be an array", r.body)
	}
	if err := json.Unmarshal(*body.Warnings, &warnings); err != nil {
		t.Fatalf("warnings: %v", err)
	}
	return body.ID, warnings
}

// request sends one request; header values that are empty delete the header
// (Content-Type defaults to application/json, Authorization to the any-account key).
func (f *fixture) request(t *testing.T, method, path string, header map[string]string, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.http.URL+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+anyKey)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); len(b) > 0 && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (f *fixture) post(t *testing.T, path string, header map[string]string, body string) response {
	t.Helper()
	return f.request(t, http.MethodPost, path, header, body)
}

// rejected reads notify_events_rejected_total{type,reason}.
func (f *fixture) rejected(t *testing.T, typ, reason string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "notify_events_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["type"] == typ && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series notify_events_rejected_total{type=%q,reason=%q}", typ, reason)
	return 0
}

// canonical is the body the API publishes for payload at the fixture's time.
func (f *fixture) canonical(t *testing.T, typ events.Type, payload string) []byte {
	t.Helper()
	p, _, err := events.Validate(typ, []byte(payload), f.clock.Now())
	if err != nil {
		t.Fatalf("validate %s: %v", typ, err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stored returns the last message of subject in the NOTIFY stream and how many it holds.
func (f *fixture) stored(t *testing.T, subject string) (*jetstream.RawStreamMsg, uint64) {
	t.Helper()
	stream, err := f.js.Stream(t.Context(), dispatcher.StreamName)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	msg, err := stream.GetLastMsgForSubject(t.Context(), subject)
	if err != nil {
		t.Fatalf("last message on %s: %v", subject, err)
	}
	info, err := stream.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return msg, info.State.Subjects[subject]
}

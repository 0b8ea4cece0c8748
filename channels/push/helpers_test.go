package push_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/channels/push"
	"github.com/kommo-notify/notify/channels/push/fcmemu"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
)

const (
	project = "notify-test"
	baseURL = "https://crm.example.com"
	account = "acme"
	// waitLong bounds every wait for the directory's watcher; it takes milliseconds.
	waitLong = 15 * time.Second
)

// startEmulator serves an FCM emulator on 127.0.0.1 until the test ends.
func startEmulator(t testing.TB, opts fcmemu.Options) (*fcmemu.Emulator, string) {
	t.Helper()
	if opts.Project == "" {
		opts.Project = project
	}
	emu := fcmemu.New(opts)
	srv := httptest.NewUnstartedServer(emu)
	fcmemu.ConfigureServer(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	return emu, srv.URL
}

// credentialsFile writes a service-account key file whose tokens are minted at the
// emulator, with a key generated here; trust registers the key with the emulator, so
// its signatures are verified.
func credentialsFile(t testing.TB, emu *fcmemu.Emulator, url string, trust bool) *push.Credentials {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sa := fcmemu.ServiceAccount{ProjectID: project, Email: "sender@" + project + ".iam.gserviceaccount.com", TokenURI: url + "/token", Key: key}
	if trust {
		emu.Trust(sa.Email, &key.PublicKey)
	}
	b, err := sa.JSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "service-account.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := push.LoadCredentials(path)
	if err != nil {
		t.Fatalf("LoadCredentials: %v", err)
	}
	return creds
}

// directoryOn starts NATS and returns the recipient directory's store and a running,
// loaded cache of it.
func directoryOn(t *testing.T) (*directory.Store, *directory.Cache) {
	t.Helper()
	srv := natstest.Start(t)
	store, err := directory.NewStore(t.Context(), srv.JetStream(t), directory.Config{})
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	cache := directory.NewCache(store, slog.New(slog.NewTextHandler(t.Output(), nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cache.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cache Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(t.Context(), waitLong)
	defer wcancel()
	if err := cache.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return store, cache
}

// env is a push channel on an emulator and a real recipient directory.
type env struct {
	emu    *fcmemu.Emulator
	url    string
	store  *directory.Store
	cache  *directory.Cache
	sender *push.Sender
	reg    *prometheus.Registry
	logs   *logRecorder
}

// newEnv wires a sender with a service-account file against a fresh emulator;
// adjust changes its config before it is built.
func newEnv(t *testing.T, adjust func(*env, *push.Config)) *env {
	t.Helper()
	e := &env{reg: prometheus.NewRegistry(), logs: &logRecorder{}}
	e.emu, e.url = startEmulator(t, fcmemu.Options{})
	e.store, e.cache = directoryOn(t)
	cfg := push.Config{
		Credentials: credentialsFile(t, e.emu, e.url, true),
		Endpoint:    e.url,
		BaseURL:     baseURL,
		Profiles:    e.cache,
		Devices:     e.store,
		Registerer:  e.reg,
		Logger:      slog.New(slog.NewMultiHandler(slog.NewTextHandler(t.Output(), nil), e.logs)),
	}
	if adjust != nil {
		adjust(e, &cfg)
	}
	s, err := push.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("push.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	e.sender = s
	return e
}

// addDevices registers tokens for user and waits until the cache has them all.
func (e *env) addDevices(t *testing.T, user string, devices ...directory.Device) {
	t.Helper()
	for _, d := range devices {
		if _, _, err := e.store.AddDevice(t.Context(), account, user, d); err != nil {
			t.Fatalf("AddDevice: %v", err)
		}
	}
	e.waitTokens(t, user, func(have []string) bool {
		for _, d := range devices {
			if !slices.Contains(have, d.Token) {
				return false
			}
		}
		return true
	})
}

// waitTokens waits until the cached devices of user satisfy cond.
func (e *env) waitTokens(t *testing.T, user string, cond func([]string) bool) {
	t.Helper()
	waitUntil(t, "the directory's devices of "+user, func() bool { return cond(e.tokens(user)) })
}

func (e *env) tokens(user string) []string {
	p, _ := e.cache.Profile(account, user)
	var out []string
	for _, d := range p.Devices {
		out = append(out, d.Token)
	}
	return out
}

// send delivers ev to user as the router would on attempt.
func (e *env) send(t *testing.T, ev *events.Event, user string, attempt int) error {
	t.Helper()
	return e.sender.Send(t.Context(), &channels.Delivery{Event: ev, User: user, Attempt: attempt})
}

// waitUntil polls cond until it holds, failing the test after waitLong.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitLong)
		}
		<-tick.C
	}
}

func android(token string) directory.Device {
	return directory.Device{Token: token, Platform: directory.Android}
}

func ios(token string) directory.Device {
	return directory.Device{Token: token, Platform: directory.IOS}
}

// event validates body as a payload of typ, as the router does, with the id given.
func event(t *testing.T, id string, typ events.Type, user, body string) *events.Event {
	t.Helper()
	p, _, err := events.Validate(typ, []byte(body), time.Now())
	if err != nil {
		t.Fatalf("validate %s: %v", body, err)
	}
	return &events.Event{
		ID:       id,
		Address:  events.Address{Account: account, User: user, Type: typ},
		Payload:  p,
		Body:     []byte(body),
		Accepted: time.Now(),
	}
}

// logRecorder keeps the records logged at error.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler           { return r }
func (r *logRecorder) WithGroup(string) slog.Handler                { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

func (r *logRecorder) errors() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

// metric is the value of the counter name with the given label pairs, 0 if the
// series is not there, failing the test if the family is not exported at all.
func (e *env) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
		return 0
	}
	t.Fatalf("metric %s is not exported", name)
	return 0
}

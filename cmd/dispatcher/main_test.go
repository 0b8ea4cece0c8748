package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// daemon is a dispatcher started in-process through run, as main starts it.
type daemon struct {
	ep     endpoints
	cancel context.CancelFunc
	exit   chan int
	stdout *syncBuffer
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// startDaemon runs the daemon with env and waits until it serves.
func startDaemon(t *testing.T, env map[string]string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	d := &daemon{cancel: cancel, exit: make(chan int, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	up := make(chan endpoints, 1)
	go func() {
		d.exit <- run(ctx, nil, envFunc(env), d.stdout, d.stderr, func(ep endpoints) { up <- ep })
	}()
	select {
	case d.ep = <-up:
	case code := <-d.exit:
		t.Fatalf("daemon exited with %d: %s", code, d.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not start")
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case code := <-d.exit:
		if code != 0 {
			t.Errorf("daemon exited with %d: %s", code, d.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop")
	}
}

// publishUntil publishes body to subject under the id first, then first-1, first-2,
// ... once a second, until arrived holds (15 s at most). The daemon's directory cache
// sees a profile or device written a moment ago only within its watcher's latency,
// and an event routed before that is skipped (no_address, no_device) or reaches fewer
// users of an _all.
func publishUntil(t *testing.T, d *daemon, subject, body, first, what string, arrived func() bool) {
	t.Helper()
	nc, err := nats.Connect(d.ep.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	publish := func(id string) {
		t.Helper()
		msg := nats.NewMsg(subject)
		msg.Header.Set(nats.MsgIdHdr, id)
		msg.Data = []byte(body)
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
	}
	publish(first)
	deadline := time.After(15 * time.Second)
	again := time.NewTicker(time.Second)
	defer again.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for n := 1; !arrived(); {
		select {
		case <-deadline:
			t.Fatalf("no %s within 15s:\n%s", what, d.stderr.String())
		case <-again.C:
			publish(fmt.Sprintf("%s-%d", first, n))
			n++
		case <-tick.C:
		}
	}
}

// putProfile stores a new recipient profile through the admin API.
func putProfile(t *testing.T, base, adminKey, account, user, body string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, base+"/api/v1/accounts/"+account+"/users/"+user,
		strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT profile %s/%s: %d %s", account, user, resp.StatusCode, b)
	}
}

func embeddedEnv(t *testing.T) map[string]string {
	return map[string]string{
		"NOTIFY_DATA_DIR":    t.TempDir(),
		"NOTIFY_HTTP_ADDR":   "127.0.0.1:0",
		"NOTIFY_NATS_LISTEN": "127.0.0.1:0",
	}
}

func TestEmbeddedDaemonRoutesFromHTTPAndNATS(t *testing.T) {
	env := embeddedEnv(t)
	d := startDaemon(t, env)
	if !strings.Contains(d.stdout.String(), d.ep.HTTP) {
		t.Errorf("start-up banner %q does not name %s", d.stdout.String(), d.ep.HTTP)
	}

	nc, err := nats.Connect(d.ep.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	frames, err := nc.SubscribeSync("ui.acme.42")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// HTTP ingest with the key the daemon generated under its data dir.
	key, err := os.ReadFile(filepath.Join(env["NOTIFY_DATA_DIR"], "secrets", "api.key"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, d.ep.HTTP+"/api/v1/notify/acme/42/add_call",
		strings.NewReader(`{"text":"Call from +1 (415) 523-7743","from":"Jeremy Watts","element":{"id":18221265,"type":"contact"}}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	var accepted struct{ ID string }
	if err := json.Unmarshal(body, &accepted); err != nil || accepted.ID == "" {
		t.Fatalf("POST body %s", body)
	}
	frame := nextFrame(t, frames)
	if frame.Kind != "popup" || frame.Type != "add_call" || frame.ID != accepted.ID {
		t.Errorf("frame %+v, want the add_call pop-up %s", frame, accepted.ID)
	}

	// A plain core publish of a pop-up, as `nats pub` sends it.
	if err := nc.Publish("notify.acme.42.show_message", []byte(`{"header":"Warning","text":"Connection established"}`)); err != nil {
		t.Fatal(err)
	}
	if frame := nextFrame(t, frames); frame.Type != "show_message" {
		t.Errorf("frame %+v", frame)
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(d.ep.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
		if path == "/metrics" && !bytes.Contains(b, []byte(`notify_deliveries_total{channel="relay",outcome="sent",type="add_call"} 1`)) {
			t.Errorf("metrics do not count the relayed add_call:\n%s", grep(b, "notify_deliveries_total"))
		}
	}
}

func TestDaemonKeepsGeneratedKeysAcrossRestarts(t *testing.T) {
	env := embeddedEnv(t)
	keyFile := filepath.Join(env["NOTIFY_DATA_DIR"], "secrets", "api.key")
	d := startDaemon(t, env)
	first, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(keyFile); info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", info.Mode().Perm())
	}
	d.stop(t)
	startDaemon(t, env)
	second, _ := os.ReadFile(keyFile)
	if !bytes.Equal(first, second) {
		t.Error("the key changed across a restart")
	}
}

func TestBadSettingStopsWithOneLine(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		setting string
	}{
		{"dedup window", map[string]string{"NOTIFY_DEDUP_WINDOW": "soon"}, nil, "NOTIFY_DEDUP_WINDOW"},
		{"rate limit", map[string]string{"NOTIFY_RATE_LIMIT": "-1"}, nil, "NOTIFY_RATE_LIMIT"},
		{"http addr", map[string]string{"NOTIFY_HTTP_ADDR": "8080"}, nil, "NOTIFY_HTTP_ADDR"},
		{"base url", map[string]string{"NOTIFY_BASE_URL": "javascript:alert(1)"}, nil, "NOTIFY_BASE_URL"},
		{"api keys", map[string]string{"NOTIFY_API_KEYS": "bad account!:k"}, nil, "NOTIFY_API_KEYS"},
		{"log format", nil, []string{"--log-format", "xml"}, "NOTIFY_LOG_FORMAT"},
		{"replicas", map[string]string{"NOTIFY_REPLICAS": "2"}, nil, "NOTIFY_REPLICAS"},
		{"unknown channel", map[string]string{"NOTIFY_CHANNELS": "email,sms"}, nil, "NOTIFY_CHANNELS"},
		{"channel twice", nil, []string{"--channels", "push, push"}, "NOTIFY_CHANNELS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := embeddedEnv(t)
			for k, v := range tc.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, envFunc(env), &stdout, &stderr, func(endpoints) {
				t.Error("daemon started with a bad setting")
			})
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tc.setting) {
				t.Errorf("stderr %q does not name %s", stderr.String(), tc.setting)
			}
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"--help"}, envFunc(nil), &stdout, &stderr, nil); code != 0 {
		t.Errorf("--help exit code %d", code)
	}
	if !strings.Contains(stdout.String(), "NOTIFY_HTTP_ADDR") {
		t.Errorf("usage does not list the variables:\n%s", stdout.String())
	}
}

type popupFrame struct {
	Kind, Type, ID string
}

// nextFrame returns the next pop-up frame. The notification center's frames of an
// add_* travel on the same subject, in no fixed order with the pop-up: they are
// skipped.
func nextFrame(t *testing.T, sub *nats.Subscription) popupFrame {
	t.Helper()
	for {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no frame: %v", err)
		}
		var f popupFrame
		if err := json.Unmarshal(m.Data, &f); err != nil {
			t.Fatalf("frame %s: %v", m.Data, err)
		}
		if f.Kind != "center" {
			return f
		}
	}
}

func grep(b []byte, s string) string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

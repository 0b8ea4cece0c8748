package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kommo-notify/notify/channels/push/fcmemu"
)

func TestBadPushSettingStopsWithOneLine(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "not.json")
	if err := os.WriteFile(notJSON, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	sa, err := fcmemu.NewServiceAccount("", "https://oauth2.googleapis.com/token")
	if err != nil {
		t.Fatal(err)
	}
	noProject := writeKey(t, sa)
	sa.ProjectID = "p1"
	good := writeKey(t, sa)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		setting string
	}{
		{"missing file", map[string]string{"FCM_CREDENTIALS_FILE": filepath.Join(dir, "missing.json")}, "FCM_CREDENTIALS_FILE"},
		{"not a key", map[string]string{"FCM_CREDENTIALS_FILE": notJSON}, "FCM_CREDENTIALS_FILE"},
		{"endpoint without a key", map[string]string{"FCM_ENDPOINT": "http://127.0.0.1:4004"}, "FCM_CREDENTIALS_FILE"},
		{"no project", map[string]string{"FCM_CREDENTIALS_FILE": noProject}, "FCM_PROJECT_ID"},
		{"bad endpoint", map[string]string{"FCM_CREDENTIALS_FILE": good, "FCM_ENDPOINT": "127.0.0.1:4004"}, "FCM_ENDPOINT"},
		{"no rate", map[string]string{"FCM_CREDENTIALS_FILE": good, "NOTIFY_PUSH_RATE": "0"}, "NOTIFY_PUSH_RATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := embeddedEnv(t)
			for k, v := range tc.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), nil, envFunc(env), &stdout, &stderr, func(endpoints) {
				t.Error("daemon started with a bad setting")
			})
			out := strings.TrimSpace(stderr.String())
			if code != 2 || strings.Count(out, "\n") != 0 || !strings.HasPrefix(out, "dispatcher: "+tc.setting+":") {
				t.Errorf("exit %d, stderr %q: want 2 and one line naming %s", code, out, tc.setting)
			}
			if strings.Contains(out, "PRIVATE KEY") {
				t.Errorf("stderr repeats the key: %q", out)
			}
		})
	}
}

// With FCM_CREDENTIALS_FILE and FCM_ENDPOINT the daemon pushes durable events to the
// devices in the recipient directory, through the emulator.
func TestDaemonPushesToTheEmulator(t *testing.T) {
	emu := fcmemu.New(fcmemu.Options{Project: "p1"})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	sa, err := fcmemu.NewServiceAccount("p1", srv.URL+"/token")
	if err != nil {
		t.Fatal(err)
	}
	emu.Trust(sa.Email, &sa.Key.PublicKey)

	env := embeddedEnv(t)
	env["FCM_CREDENTIALS_FILE"] = writeKey(t, sa)
	env["FCM_ENDPOINT"] = srv.URL
	env["NOTIFY_BASE_URL"] = "https://acme.kommo.example"
	d := startDaemon(t, env)
	if !strings.Contains(d.stderr.String(), "push channel enabled") {
		t.Errorf("the start log does not say push is on:\n%s", d.stderr.String())
	}

	key, err := os.ReadFile(filepath.Join(env["NOTIFY_DATA_DIR"], "secrets", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, d.ep.HTTP+"/api/v1/accounts/acme/users/42/devices",
		strings.NewReader(`{"token":"dGVzdA:APA91bH-x_y","platform":"android"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register a device: %d %s", resp.StatusCode, body)
	}

	publishUntil(t, d, "notify.acme.42.add_call",
		`{"text":"Call from +1 (415) 523-7743","from":"Jeremy Watts","element":{"id":18221265,"type":"contact"}}`,
		"call-0", "push", func() bool { return len(emu.Messages()) > 0 })
	got := emu.Messages()[0].Message
	if got.Token != "dGVzdA:APA91bH-x_y" || !strings.HasPrefix(got.Data["id"], "call-") || got.Data["click"] != "https://acme.kommo.example/contacts/detail/18221265" {
		t.Errorf("pushed %+v", got)
	}
}

func TestPushMetricsExportedWhilePushIsOff(t *testing.T) {
	d := startDaemon(t, embeddedEnv(t))
	resp, err := http.Get(d.ep.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"notify_push_tokens_pruned_total 0", `notify_push_messages_total{outcome="sent"} 0`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func writeKey(t *testing.T, sa fcmemu.ServiceAccount) string {
	t.Helper()
	b, err := sa.JSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fcm.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kommo-notify/notify/channels/email/smtptest"
)

func TestBadEmailSettingStopsWithOneLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		setting string
	}{
		{"bad scheme", map[string]string{"SMTP_URL": "http://mail.example.com", "NOTIFY_MAIL_FROM": "a@example.com"}, "SMTP_URL"},
		{"bad tls", map[string]string{"SMTP_URL": "smtp://mail.example.com?tls=maybe", "NOTIFY_MAIL_FROM": "a@example.com"}, "SMTP_URL"},
		{"password in clear", map[string]string{"SMTP_URL": "smtp://u:hunter2@mail.example.com?tls=none", "NOTIFY_MAIL_FROM": "a@example.com"}, "SMTP_URL"},
		{"no sender", map[string]string{"SMTP_URL": "smtp://mail.example.com"}, "NOTIFY_MAIL_FROM"},
		{"bad sender", map[string]string{"SMTP_URL": "smtp://mail.example.com", "NOTIFY_MAIL_FROM": "Notifications"}, "NOTIFY_MAIL_FROM"},
		{"no connections", map[string]string{"SMTP_URL": "smtp://mail.example.com", "NOTIFY_MAIL_FROM": "a@example.com", "NOTIFY_SMTP_CONNECTIONS": "0"}, "NOTIFY_SMTP_CONNECTIONS"},
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
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			out := strings.TrimSpace(stderr.String())
			if strings.Count(out, "\n") != 0 || !strings.HasPrefix(out, "dispatcher: "+tc.setting+":") {
				t.Errorf("stderr %q: want one line naming %s", out, tc.setting)
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("stderr repeats the password: %q", out)
			}
		})
	}
}

// With SMTP_URL the daemon emails durable events to the address in the recipient
// directory, with links on NOTIFY_BASE_URL.
func TestDaemonSendsEmail(t *testing.T) {
	sink := smtptest.Start(t)
	env := embeddedEnv(t)
	env["SMTP_URL"] = fmt.Sprintf("smtp://%s?tls=none", sink.Addr())
	env["NOTIFY_MAIL_FROM"] = "Kommo Notifications <noreply@notify.example>"
	env["NOTIFY_BASE_URL"] = "https://acme.kommo.example"
	d := startDaemon(t, env)
	if !strings.Contains(d.stderr.String(), "email channel enabled") {
		t.Errorf("the start log does not say email is on:\n%s", d.stderr.String())
	}

	key, err := os.ReadFile(filepath.Join(env["NOTIFY_DATA_DIR"], "secrets", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, d.ep.HTTP+"/api/v1/accounts/acme/users/42",
		strings.NewReader(`{"email":"ann@example.com","name":"Ann Lee","locale":"en"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT profile: %d %s", resp.StatusCode, body)
	}

	publishUntil(t, d, "notify.acme.42.add_call",
		`{"text":"Call from +1 (415) 523-7743","from":"Jeremy Watts","element":{"id":18221265,"type":"contact"},"duration":250}`,
		"call-7781", "email", func() bool { return len(sink.Messages()) > 0 })
	got := sink.Messages()[0]
	if strings.Join(got.To, ",") != "ann@example.com" {
		t.Errorf("sent to %v", got.To)
	}
	for _, want := range []string{
		"Subject: Incoming call from Jeremy Watts", "X-Notify-Event-Id: call-7781",
		"https://acme.kommo.example/contacts/detail/18221265",
	} {
		if !bytes.Contains(got.Data, []byte(want)) {
			t.Errorf("the message lacks %q:\n%s", want, got.Data)
		}
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kommo-notify/notify/events/token"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func TestTokenMintsAVerifiableToken(t *testing.T) {
	signer, err := token.NewSigner([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	if err := os.MkdirAll(filepath.Dir(token.SecretPath(dataDir)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(token.SecretPath(dataDir), []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		env  map[string]string
		args []string
	}{
		"secret from the environment": {map[string]string{"NOTIFY_JWT_SECRET": testSecret}, nil},
		"secret from the data dir":    {map[string]string{"NOTIFY_DATA_DIR": dataDir}, nil},
		"data dir flag":               {nil, []string{"--data-dir", dataDir}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"token", "--account", "acme", "--user", "42", "--ttl", "2h"}, tc.args...)
			r := notify(t, tc.env, "", args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			tok := strings.TrimSuffix(r.stdout, "\n")
			if strings.ContainsAny(tok, " \n") {
				t.Fatalf("stdout %q is not the token alone", r.stdout)
			}
			u, err := signer.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if u.Account != "acme" || u.User != "42" {
				t.Errorf("token for %+v", u)
			}
		})
	}
}

func TestTokenErrors(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no user", map[string]string{"NOTIFY_JWT_SECRET": testSecret}, []string{"token", "--account", "acme"}, 2, "--user"},
		{"bad user", map[string]string{"NOTIFY_JWT_SECRET": testSecret}, []string{"token", "--account", "acme", "--user", "a.b"}, 1, "user"},
		{"no secret", map[string]string{"NOTIFY_DATA_DIR": t.TempDir()}, []string{"token", "--account", "acme", "--user", "42"}, 1, "NOTIFY_JWT_SECRET"},
		{"short secret", map[string]string{"NOTIFY_JWT_SECRET": "short"}, []string{"token", "--account", "acme", "--user", "42"}, 1, "32 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := notify(t, tc.env, "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d naming %s", r.code, r.stderr, r.stdout, tc.code, tc.want)
			}
		})
	}
	if r := notify(t, nil, "", "token", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage: notify token") {
		t.Errorf("--help: exit %d, stdout %q", r.code, r.stdout)
	}
}

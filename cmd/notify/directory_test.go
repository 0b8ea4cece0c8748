package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/events/natstest"
)

// startDirectory runs NATS with the directory's bucket in place, as a dispatcher leaves it.
func startDirectory(t *testing.T) (env map[string]string, store *directory.Store) {
	t.Helper()
	srv := natstest.Start(t)
	js, err := jetstream.New(srv.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	if store, err = directory.NewStore(t.Context(), js, directory.Config{}); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"NATS_URL": srv.URL()}, store
}

// profileOut decodes the one JSON line a command printed.
func (r result) profileOut(t *testing.T) directory.Profile {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("stdout %q, want one line", r.stdout)
	}
	var p directory.Profile
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	return p
}

func TestProfileAndDeviceCommands(t *testing.T) {
	env, store := startDirectory(t)
	who := []string{"--account", "acme", "--user", "42"}

	p := notify(t, env, "", append([]string{"profile", "put", `{"email":"ann@example.com","channels":{"push":false}}`}, who...)...).profileOut(t)
	if p.Email != "ann@example.com" || p.Channels != (directory.Channels{Email: true}) {
		t.Errorf("put printed %+v", p)
	}
	if got, err := store.Get(t.Context(), "acme", "42"); err != nil || got.Email != "ann@example.com" {
		t.Errorf("stored %+v, %v", got, err)
	}
	// The payload from standard input; flags after the action.
	p = notify(t, env, `{"email":"ann@kommo.com","locale":"pt-BR"}`, append([]string{"profile"}, append(who, "put", "-")...)...).profileOut(t)
	if p.Email != "ann@kommo.com" || p.Locale != "pt-BR" || !p.Channels.Push {
		t.Errorf("put from stdin printed %+v", p)
	}

	p = notify(t, env, "", append([]string{"device", "add", "--token", "fcm:tok-1", "--platform", "ios"}, who...)...).profileOut(t)
	if len(p.Devices) != 1 || p.Devices[0].Platform != "ios" {
		t.Errorf("device add printed %+v", p.Devices)
	}
	p = notify(t, env, "", append([]string{"device", "add", "--token", "fcm:tok-2"}, who...)...).profileOut(t)
	if got := []string{p.Devices[0].Token, p.Devices[1].Token}; !slices.Equal(got, []string{"fcm:tok-1", "fcm:tok-2"}) || p.Devices[1].Platform != "android" {
		t.Errorf("devices %+v", p.Devices)
	}
	if r := notify(t, env, "", append([]string{"device", "remove", "--token", "fcm:tok-1"}, who...)...); r.code != exitOK || r.stdout != "" {
		t.Errorf("device remove: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r := notify(t, env, "", append([]string{"device", "remove", "--token", "fcm:tok-1"}, who...)...)
	if r.code != exitFailure || !strings.Contains(r.stderr, "no such device") || strings.Contains(r.stderr, "tok-1") {
		t.Errorf("removing twice: exit %d, stderr %q; want exit 1 without the token", r.code, r.stderr)
	}

	if p = notify(t, env, "", append([]string{"profile", "get"}, who...)...).profileOut(t); len(p.Devices) != 1 || p.Email != "ann@kommo.com" {
		t.Errorf("get printed %+v", p)
	}
	if r := notify(t, env, "", append([]string{"profile", "delete"}, who...)...); r.code != exitOK || r.stdout != "" {
		t.Errorf("delete: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, action := range []string{"get", "delete"} {
		r := notify(t, env, "", append([]string{"profile", action}, who...)...)
		if r.code != exitFailure || !strings.Contains(r.stderr, "no profile for acme/42") {
			t.Errorf("%s after delete: exit %d, stderr %q", action, r.code, r.stderr)
		}
	}
}

func TestDirectoryCommandErrors(t *testing.T) {
	env, _ := startDirectory(t)
	// Validation comes before connecting: these never reach this address.
	offline := map[string]string{"NATS_URL": "nats://127.0.0.1:1"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no action", env, []string{"profile", "--account", "acme", "--user", "42"}, exitUsage, "get, put or delete"},
		{"unknown action", env, []string{"profile", "list", "--account", "acme", "--user", "42"}, exitUsage, "unknown action"},
		{"no user", env, []string{"profile", "get", "--account", "acme"}, exitUsage, "--user"},
		{"extra argument", env, []string{"profile", "get", "x", "--account", "acme", "--user", "42"}, exitUsage, "unexpected argument"},
		{"no token", env, []string{"device", "add", "--account", "acme", "--user", "42"}, exitUsage, "--token"},
		{"_all", offline, []string{"profile", "get", "--account", "acme", "--user", "_all"}, exitFailure, "user"},
		{"bad account", offline, []string{"device", "add", "--account", "a.b", "--user", "42", "--token", "t"}, exitFailure, "account"},
		{"bad email", offline, []string{"profile", "put", "--account", "acme", "--user", "42", `{"email":"ann"}`}, exitFailure, "email"},
		{"unknown field", offline, []string{"profile", "put", "--account", "acme", "--user", "42", `{"mail":"a@b.c"}`}, exitFailure, "mail"},
		{"not JSON", offline, []string{"profile", "put", "--account", "acme", "--user", "42", `email=a@b.c`}, exitFailure, "invalid_json"},
		{"bad platform", offline, []string{"device", "add", "--account", "acme", "--user", "42", "--token", "t", "--platform", "palm"}, exitFailure, "platform"},
		{"NATS down", offline, []string{"profile", "get", "--account", "acme", "--user", "42"}, exitFailure, "cannot reach NATS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := notify(t, tt.env, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d naming %s", r.code, r.stderr, r.stdout, tt.code, tt.want)
			}
		})
	}

	t.Run("no bucket", func(t *testing.T) {
		srv := natstest.Start(t)
		r := notify(t, map[string]string{"NATS_URL": srv.URL()}, "", "profile", "get", "--account", "acme", "--user", "42")
		if r.code != exitFailure || !strings.Contains(r.stderr, "start the dispatcher") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	for _, cmd := range []string{"profile", "device"} {
		if r := notify(t, nil, "", cmd, "--help"); r.code != exitOK || !strings.Contains(r.stdout, "Usage: notify "+cmd) {
			t.Errorf("%s --help: exit %d, stdout %q", cmd, r.code, r.stdout)
		}
	}
}

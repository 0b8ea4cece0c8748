package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
)

// startNATS runs a NATS server with the dispatcher's streams provisioned.
func startNATS(t *testing.T) (*natstest.Server, *nats.Conn) {
	t.Helper()
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	d, err := dispatcher.New(nc, dispatcher.Config{Channels: []channels.Channel{
		channels.Disabled(channels.Relay), channels.Disabled(channels.Center),
		channels.Disabled(channels.Email), channels.Disabled(channels.Push),
	}})
	if err != nil {
		t.Fatalf("dispatcher: %v", err)
	}
	if err := d.Provision(t.Context()); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return srv, nc
}

type result struct {
	code           int
	stdout, stderr string
}

// notify runs the command in-process with env as its environment and stdin as its input.
func notify(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{
		stdin:  strings.NewReader(stdin),
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string { return env[k] },
	}
	code := a.main(t.Context(), args)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// published decodes the one JSON line publish prints.
func (r result) published(t *testing.T) (res struct {
	ID       string   `json:"id"`
	Warnings []string `json:"warnings"`
	Stream   string   `json:"stream"`
	Seq      uint64   `json:"seq"`
}) {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("stdout %q, want one line", r.stdout)
	}
	if !strings.Contains(r.stdout, `"warnings":[`) {
		t.Errorf("stdout %q: warnings must be an array", r.stdout)
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	return res
}

var samples = map[events.Type]string{
	events.ShowMessage:      `{"header":"Hello","text":"World"}`,
	events.ShowMessageError: `{"header":"Oops","text":"Sync failed","link":"/contacts/list/?term=1"}`,
	events.ShowNotification: `{"text":{"header":"Call","text":"+1 555 0100"},"type":"call"}`,
	events.AddError:         `{"header":"Error","text":"Sync failed"}`,
	events.AddCall:          `{"text":"Incoming call","element":{"id":7,"type":"contact"},"duration":42}`,
}

func TestPublishEveryType(t *testing.T) {
	srv, nc := startNATS(t)
	env := map[string]string{"NATS_URL": srv.URL()}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range events.Types() {
		t.Run(string(typ), func(t *testing.T) {
			subject := "notify.acme.42." + string(typ)
			popup := make(chan *nats.Msg, 1)
			if !typ.Durable() {
				sub, err := nc.ChanSubscribe(subject, popup)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = sub.Unsubscribe() })
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			id := "evt-" + string(typ)
			// Flags on both sides of the positional arguments.
			res := notify(t, env, "", "publish", "--account", "acme", string(typ), "--user=42", samples[typ], "--id", id).published(t)
			if res.ID != id {
				t.Errorf("id %q, want %q", res.ID, id)
			}

			var got *nats.Header
			if typ.Durable() {
				if res.Stream != dispatcher.StreamName || res.Seq == 0 {
					t.Errorf("stream %q seq %d, want the NOTIFY stream's ack", res.Stream, res.Seq)
				}
				stream, err := js.Stream(t.Context(), dispatcher.StreamName)
				if err != nil {
					t.Fatal(err)
				}
				msg, err := stream.GetLastMsgForSubject(t.Context(), subject)
				if err != nil {
					t.Fatalf("not in the NOTIFY stream: %v", err)
				}
				if msg.Sequence != res.Seq {
					t.Errorf("stored at seq %d, printed %d", msg.Sequence, res.Seq)
				}
				got = &msg.Header
			} else {
				if res.Stream != "" || res.Seq != 0 {
					t.Errorf("pop-up printed stream %q seq %d", res.Stream, res.Seq)
				}
				select {
				case msg := <-popup:
					got = &msg.Header
				case <-time.After(5 * time.Second):
					t.Fatal("pop-up never arrived")
				}
			}
			if msgID := got.Get(jetstream.MsgIDHeader); msgID != id {
				t.Errorf("Nats-Msg-Id %q, want %q", msgID, id)
			}
		})
	}
}

func TestPublishReadsStdin(t *testing.T) {
	srv, _ := startNATS(t)
	env := map[string]string{"NATS_URL": srv.URL()}
	for name, args := range map[string][]string{
		"dash":    {"publish", "show_message", "-", "--account", "acme", "--user", "42"},
		"omitted": {"publish", "--account", "acme", "--user", "42", "show_message"},
	} {
		t.Run(name, func(t *testing.T) {
			res := notify(t, env, `{"header":"h","text":"t","color":"red"}`, args...).published(t)
			if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "color") {
				t.Errorf("warnings %q, want the unknown field color", res.Warnings)
			}
		})
	}
}

func TestPublishFailures(t *testing.T) {
	srv, _ := startNATS(t)
	stopped := natstest.Start(t)
	stopped.Stop()
	good := map[string]string{"NATS_URL": srv.URL()}
	down := map[string]string{"NATS_URL": stopped.URL()}
	withPassword := map[string]string{"NATS_URL": strings.Replace(stopped.URL(), "nats://", "nats://user:hunter2@", 1)}
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stderr string // a substring of stderr
	}{
		{"field error", good, []string{"publish", "add_call", "--account", "acme", "--user", "42", `{"text":"x","element":{"id":7,"type":"deal"}}`},
			exitFailure, "element.type"},
		{"field error while NATS is down", down, []string{"publish", "show_message", "--account", "acme", "--user", "42", `{"text":"no header"}`},
			exitFailure, "header"},
		{"invalid JSON", good, []string{"publish", "show_message", "--account", "acme", "--user", "42", `{`},
			exitFailure, "invalid_json"},
		{"bad account", good, []string{"publish", "show_message", "--account", "ac.me", "--user", "42", samples[events.ShowMessage]},
			exitFailure, "account"},
		{"bad id", good, []string{"publish", "show_message", "--account", "acme", "--user", "42", "--id", "a b", samples[events.ShowMessage]},
			exitFailure, "id"},
		{"NATS unreachable", down, []string{"publish", "show_message", "--account", "acme", "--user", "42", "--timeout", "1s", samples[events.ShowMessage]},
			exitFailure, "notify: cannot reach NATS at " + stopped.URL()},
		{"password redacted", withPassword, []string{"publish", "show_message", "--account", "acme", "--user", "42", "--timeout", "1s", samples[events.ShowMessage]},
			exitFailure, "user:xxxxx@"},
		{"unknown type", good, []string{"publish", "show_toast", "--account", "acme", "--user", "42", "{}"}, exitUsage, "unknown type"},
		{"missing type", good, []string{"publish", "--account", "acme", "--user", "42"}, exitUsage, "missing the notification type"},
		{"missing account", good, []string{"publish", "show_message", "--user", "42", "{}"}, exitUsage, "--account is required"},
		{"unknown flag", good, []string{"publish", "show_message", "--acount", "acme"}, exitUsage, "acount"},
		{"too many arguments", good, []string{"publish", "show_message", "--account", "acme", "--user", "42", "{}", "{}"}, exitUsage, "too many"},
		{"unknown command", good, []string{"pubish"}, exitUsage, `unknown command "pubish"`},
		{"no command", good, nil, exitUsage, "Usage: notify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := notify(t, tt.env, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d stderr %q, want exit %d with %q", r.code, r.stderr, tt.code, tt.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			if tt.code == exitFailure && strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
				t.Errorf("stderr %q, want one line", r.stderr)
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("stderr %q reveals the password", r.stderr)
			}
		})
	}
}

func TestFlagBeatsEnvironment(t *testing.T) {
	srv, _ := startNATS(t)
	stopped := natstest.Start(t)
	stopped.Stop()
	env := map[string]string{"NATS_URL": stopped.URL()}
	notify(t, env, "", "publish", "show_message", "--account", "acme", "--user", "42",
		"--nats-url", srv.URL(), samples[events.ShowMessage]).published(t)
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "Usage: notify <command>"},
		{[]string{"-h"}, "Usage: notify <command>"},
		{[]string{"help"}, "Usage: notify <command>"},
		{[]string{"publish", "--help"}, "Usage: notify publish"},
		{[]string{"publish", "show_message", "-h"}, "Usage: notify publish"},
		{[]string{"help", "publish"}, "Usage: notify publish"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := notify(t, nil, "", tt.args...)
			if r.code != exitOK || !strings.Contains(r.stdout, tt.want) || r.stderr != "" {
				t.Errorf("exit %d stdout %q stderr %q, want exit 0 and %q on stdout", r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
	if r := notify(t, nil, "", "help", "pubish"); r.code != exitUsage {
		t.Errorf("help for an unknown command: exit %d, want %d", r.code, exitUsage)
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args       []string
		positional []string
		account    string
	}{
		{[]string{"a", "--account", "x", "b"}, []string{"a", "b"}, "x"},
		{[]string{"--account=x", "a", "b"}, []string{"a", "b"}, "x"},
		{[]string{"a", "b", "-account", "x"}, []string{"a", "b"}, "x"},
		{[]string{"a", "--", "--account", "x"}, []string{"a", "--account", "x"}, ""},
		{[]string{"a", "-", "--account", "x"}, []string{"a", "-"}, "x"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := newFlagSet("test")
			account := fs.String("account", "", "")
			positional, err := parseInterspersed(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(positional, "|") != strings.Join(tt.positional, "|") || *account != tt.account {
				t.Errorf("positional %q account %q, want %q and %q", positional, *account, tt.positional, tt.account)
			}
		})
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events/natstest"
)

// testLetter is a dead letter as the router writes it.
type testLetter struct {
	channel, account, user, typ string
	eventID, reason, err        string
	attempts                    int
	body                        string
}

var longError = "smtp: 550 5.1.1 mailbox unavailable:" + strings.Repeat(" the recipient's server refused it", 6)

// deadLetters is the fixture: every test writes these, in this order, so they take
// NOTIFY_DLQ sequences 1 to 6.
var deadLetters = []testLetter{
	{"email", "acme", "42", "add_call", "evt-1", "max_attempts", "smtp: 451 try again later", 5, `{"text":"Incoming call","element":{"id":7,"type":"contact"}}`},
	{"push", "acme", "42", "add_call", "evt-1", "permanent", "fcm: INVALID_ARGUMENT", 1, `{"text":"Incoming call","element":{"id":7,"type":"contact"}}`},
	{"email", "acme", "7", "add_error", "evt-2", "permanent", longError, 1, `{"header":"Sync","text":"<p>Sync failed</p>"}`},
	{"router", "acme", "_all", "add_error", "evt-3", "invalid", "invalid_field: text must not be empty", 1, `{"header":"x","text":""}`},
	{"center", "beta", "9", "add_error", "evt-4", "max_attempts", "center: store unavailable", 8, `{"text":"Disk full"}`},
	// A malformed subject (notify.acme) leaves placeholders the router fills with "_".
	{"router", "acme", "_", "_", "evt-5", "invalid", "invalid_field: subject must be notify.<account>.<user>.<type>", 1, `not json`},
}

// startDLQ runs NATS as a dispatcher leaves it, with the fixture's dead letters.
func startDLQ(t *testing.T) (env map[string]string, js jetstream.JetStream) {
	t.Helper()
	srv, nc := startNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for i, dl := range deadLetters {
		if seq := writeDeadLetter(t, js, dl); seq != uint64(i+1) {
			t.Fatalf("dead letter %d stored at seq %d", i+1, seq)
		}
	}
	return map[string]string{"NATS_URL": srv.URL()}, js
}

func writeDeadLetter(t *testing.T, js jetstream.JetStream, dl testLetter) uint64 {
	t.Helper()
	msg := nats.NewMsg(dispatcher.DLQSubject(dl.channel, dl.account, dl.user, dl.typ))
	msg.Data = []byte(dl.body)
	msg.Header.Set(dispatcher.HeaderEventID, dl.eventID)
	msg.Header.Set(dispatcher.HeaderReason, dl.reason)
	msg.Header.Set(dispatcher.HeaderError, dl.err)
	msg.Header.Set(dispatcher.HeaderAttempts, strconv.Itoa(dl.attempts))
	ack, err := js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatalf("write dead letter: %v", err)
	}
	return ack.Sequence
}

// storedMsgs is every message of a stream, oldest first.
func storedMsgs(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	stream, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := stream.GetMsg(t.Context(), seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return msgs
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
		seq = m.Sequence + 1
	}
}

func dlqSeqs(t *testing.T, js jetstream.JetStream) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, m := range storedMsgs(t, js, dispatcher.DLQStreamName) {
		seqs = append(seqs, m.Sequence)
	}
	return seqs
}

// tableSeqs reads the SEQ column of list's table, checking the header.
func (r result) tableSeqs(t *testing.T) []uint64 {
	t.Helper()
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"SEQ", "TIME", "CHANNEL", "ACCOUNT", "USER", "TYPE", "EVENT", "REASON", "ATTEMPTS", "ERROR"}) {
		t.Fatalf("header %q", lines[0])
	}
	var seqs []uint64
	for _, line := range lines[1:] {
		seq, err := strconv.ParseUint(strings.Fields(line)[0], 10, 64)
		if err != nil {
			t.Fatalf("row %q: %v", line, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestDLQList(t *testing.T) {
	env, js := startDLQ(t)
	tests := []struct {
		args []string
		want []uint64
	}{
		{nil, []uint64{1, 2, 3, 4, 5, 6}},
		{[]string{"--channel", "email"}, []uint64{1, 3}},
		{[]string{"--channel", "router"}, []uint64{4, 6}},
		{[]string{"--account", "acme", "--user", "42"}, []uint64{1, 2}},
		{[]string{"--type", "add_error"}, []uint64{3, 4, 5}},
		{[]string{"--reason", "invalid"}, []uint64{4, 6}},
		{[]string{"--event", "evt-1"}, []uint64{1, 2}},
		{[]string{"--channel", "email", "--reason", "permanent"}, []uint64{3}},
		{[]string{"--limit", "2"}, []uint64{1, 2}},
		{[]string{"--seq", "5,1", "--seq", "3"}, []uint64{1, 3, 5}},
		{[]string{"--seq", "1,2,3", "--channel", "push"}, []uint64{2}},
		{[]string{"--account", "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := notify(t, env, "", append([]string{"dlq", "list"}, tt.args...)...)
			if got := r.tableSeqs(t); !slices.Equal(got, tt.want) {
				t.Errorf("seqs %v, want %v\n%s", got, tt.want, r.stdout)
			}
		})
	}

	t.Run("row", func(t *testing.T) {
		r := notify(t, env, "", "dlq", "list", "--seq", "1,3")
		lines := strings.Split(r.stdout, "\n")
		f := strings.Fields(lines[1])
		if _, err := time.Parse(time.RFC3339, f[1]); err != nil || !strings.HasSuffix(f[1], "Z") {
			t.Errorf("time %q, want RFC3339 in UTC", f[1])
		}
		if got, want := append(f[2:9:9], strings.Join(f[9:], " ")), []string{"email", "acme", "42", "add_call", "evt-1", "max_attempts", "5", "smtp: 451 try again later"}; !slices.Equal(got, want) {
			t.Errorf("row %q, want %q", got, want)
		}
		if strings.Contains(lines[2], longError) || !strings.Contains(lines[2], longError[:40]) || !strings.HasSuffix(lines[2], "…") {
			t.Errorf("a long error must be truncated: %q", lines[2])
		}
	})

	t.Run("json", func(t *testing.T) {
		r := notify(t, env, "", "dlq", "list", "--json")
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if r.code != exitOK || len(lines) != len(deadLetters) {
			t.Fatalf("exit %d, %d lines, stderr %q", r.code, len(lines), r.stderr)
		}
		for i, line := range lines {
			var got struct {
				Seq           uint64          `json:"seq"`
				Time          time.Time       `json:"time"`
				Subject       string          `json:"subject"`
				Channel       string          `json:"channel"`
				Account       string          `json:"account"`
				User          string          `json:"user"`
				Type          string          `json:"type"`
				EventID       string          `json:"event_id"`
				Reason        string          `json:"reason"`
				Attempts      int             `json:"attempts"`
				Error         string          `json:"error"`
				Payload       json.RawMessage `json:"payload"`
				PayloadBase64 string          `json:"payload_base64"`
			}
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			want := deadLetters[i]
			if got.Seq != uint64(i+1) || got.Time.IsZero() || got.Subject != dispatcher.DLQSubject(want.channel, want.account, want.user, want.typ) ||
				got.Channel != want.channel || got.Account != want.account || got.User != want.user || got.Type != want.typ ||
				got.EventID != want.eventID || got.Reason != want.reason || got.Attempts != want.attempts || got.Error != want.err {
				t.Errorf("line %d: %+v, want %+v", i+1, got, want)
			}
			if json.Valid([]byte(want.body)) {
				if string(got.Payload) != want.body || got.PayloadBase64 != "" {
					t.Errorf("line %d payload %s, want %s", i+1, got.Payload, want.body)
				}
			} else if string(got.Payload) != "null" || got.PayloadBase64 == "" {
				t.Errorf("line %d: a payload that is not JSON: payload %s, base64 %q", i+1, got.Payload, got.PayloadBase64)
			}
		}
	})

	// Reading leaves the stream as it was: every message, and no consumer.
	stream, err := js.Stream(t.Context(), dispatcher.DLQStreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(deadLetters)) || info.State.Consumers != 0 {
		t.Errorf("after listing: %d messages, %d consumers", info.State.Msgs, info.State.Consumers)
	}
}

func TestDLQListEmptyAndMissing(t *testing.T) {
	srv, _ := startNATS(t)
	env := map[string]string{"NATS_URL": srv.URL()}
	if seqs := notify(t, env, "", "dlq", "list").tableSeqs(t); len(seqs) != 0 {
		t.Errorf("empty DLQ listed %v", seqs)
	}
	if r := notify(t, env, "", "dlq", "list", "--json"); r.code != exitOK || r.stdout != "" {
		t.Errorf("empty DLQ with --json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	bare := natstest.Start(t) // JetStream, but no dispatcher ever ran
	r := notify(t, map[string]string{"NATS_URL": bare.URL()}, "", "dlq", "list")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no dead-letter stream NOTIFY_DLQ: has a dispatcher run against this NATS?") {
		t.Errorf("no stream: exit %d, stderr %q", r.code, r.stderr)
	}
	r = notify(t, env, "", "dlq", "list", "--seq", "7")
	if r.code != exitFailure || !strings.Contains(r.stderr, "no dead letter at seq 7") {
		t.Errorf("missing seq: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestDLQReplay(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		replayed []int    // fixture indexes, in the order they reach NOTIFY
		remain   []uint64 // NOTIFY_DLQ afterwards
		stdout   string   // a substring
		stderr   string   // a substring
	}{
		{"one by seq", []string{"--seq", "1"}, exitOK, []int{0}, []uint64{2, 3, 4, 5, 6},
			"replayed seq 1: event evt-1 to notify.acme.42.add_call via channel email", ""},
		{"router dead letter to every channel", []string{"--channel", "router", "--type", "add_error"}, exitOK, []int{3}, []uint64{1, 2, 3, 5, 6},
			"via every channel", ""},
		{"by event, kept", []string{"--event", "evt-1", "--keep"}, exitOK, []int{0, 1}, []uint64{1, 2, 3, 4, 5, 6},
			"replayed 2 dead letters (kept in NOTIFY_DLQ)", ""},
		{"reason and account", []string{"--reason", "max_attempts", "--account", "beta"}, exitOK, []int{4}, []uint64{1, 2, 3, 4, 6},
			"replayed 1 dead letter\n", ""},
		{"dry run", []string{"--channel", "email", "--dry-run"}, exitOK, nil, []uint64{1, 2, 3, 4, 5, 6},
			"would replay seq 3: event evt-2 to notify.acme.7.add_error via channel email\nwould replay 2 dead letters", ""},
		{"nothing selected", []string{"--account", "nobody"}, exitOK, nil, []uint64{1, 2, 3, 4, 5, 6},
			"replayed 0 dead letters", ""},
		{"all, invalid subject skipped", []string{"--all"}, exitFailure, []int{0, 1, 2, 3, 4}, []uint64{6},
			"replayed 5 dead letters, skipped 1", "skipped seq 6 (dlq.router.acme._._)"},
		{"missing seq", []string{"--seq", "2,99"}, exitFailure, []int{1}, []uint64{1, 3, 4, 5, 6},
			"replayed 1 dead letter, skipped 1", "skipped seq 99: no dead letter there"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, js := startDLQ(t)
			r := notify(t, env, "", append([]string{"dlq", "replay"}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit %d with %q and %q", r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
			if tt.stderr == "" && r.stderr != "" {
				t.Errorf("stderr %q, want nothing", r.stderr)
			}
			if got := dlqSeqs(t, js); !slices.Equal(got, tt.remain) {
				t.Errorf("NOTIFY_DLQ holds %v, want %v", got, tt.remain)
			}
			checkReplays(t, js, tt.replayed)
		})
	}
}

// checkReplays checks that NOTIFY holds exactly the replays of the fixture's dead
// letters at the given indexes, in order.
func checkReplays(t *testing.T, js jetstream.JetStream, want []int) {
	t.Helper()
	msgs := storedMsgs(t, js, dispatcher.StreamName)
	if len(msgs) != len(want) {
		t.Fatalf("NOTIFY holds %d messages, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		dl := deadLetters[want[i]]
		wantReplay := dl.channel
		if dl.channel == dispatcher.RouterChannel {
			wantReplay = ""
		}
		got := fmt.Sprintf("%s %s id=%q replay=%q msgid=%q", m.Subject, m.Data, m.Header.Get(dispatcher.HeaderEventID),
			m.Header.Get(dispatcher.HeaderReplay), m.Header.Get(jetstream.MsgIDHeader))
		wantS := fmt.Sprintf("notify.%s.%s.%s %s id=%q replay=%q msgid=%q", dl.account, dl.user, dl.typ, dl.body, dl.eventID, wantReplay, "")
		if got != wantS {
			t.Errorf("replay %d:\n got %s\nwant %s", i+1, got, wantS)
		}
		if _, present := m.Header[dispatcher.HeaderReplay]; present && wantReplay == "" {
			t.Errorf("replay %d of a router dead letter carries %s", i+1, dispatcher.HeaderReplay)
		}
	}
}

func TestDLQCommandErrors(t *testing.T) {
	// The command line is checked before connecting: nothing listens here.
	offline := map[string]string{"NATS_URL": "nats://127.0.0.1:1"}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no action", []string{"dlq"}, exitUsage, "list or replay"},
		{"unknown action", []string{"dlq", "show"}, exitUsage, `unknown action "show"`},
		{"extra argument", []string{"dlq", "list", "x"}, exitUsage, "unexpected argument"},
		{"replay without selector", []string{"dlq", "replay"}, exitUsage, "--all"},
		{"replay dry run without selector", []string{"dlq", "replay", "--dry-run", "--keep"}, exitUsage, "--all"},
		{"json on replay", []string{"dlq", "replay", "--all", "--json"}, exitUsage, "--json is not a flag of dlq replay"},
		{"keep on list", []string{"dlq", "list", "--keep"}, exitUsage, "--keep is not a flag of dlq list"},
		{"unknown channel", []string{"dlq", "list", "--channel", "sms"}, exitUsage, `unknown channel "sms"`},
		{"unknown reason", []string{"dlq", "replay", "--reason", "timeout"}, exitUsage, `unknown reason "timeout"`},
		{"wildcard account", []string{"dlq", "list", "--account", "*"}, exitUsage, "--account"},
		{"dotted type", []string{"dlq", "list", "--type", "add.call"}, exitUsage, "--type"},
		{"bad seq", []string{"dlq", "replay", "--seq", "1,x"}, exitUsage, `"x" is not a sequence number`},
		{"zero seq", []string{"dlq", "replay", "--seq", "0"}, exitUsage, "not a sequence number"},
		{"negative limit", []string{"dlq", "list", "--limit", "-1"}, exitUsage, "--limit"},
		{"NATS down", []string{"dlq", "list", "--timeout", "1s"}, exitFailure, "cannot reach NATS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := notify(t, offline, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d naming %s", r.code, r.stderr, r.stdout, tt.code, tt.want)
			}
		})
	}
}

func TestDLQHelp(t *testing.T) {
	for _, args := range [][]string{{"dlq", "--help"}, {"dlq", "replay", "-h"}, {"help", "dlq"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := notify(t, nil, "", args...)
			if r.code != exitOK || !strings.Contains(r.stdout, "Usage: notify dlq list|replay") || !strings.Contains(r.stdout, "-dry-run") || r.stderr != "" {
				t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
	if r := notify(t, nil, "", "--help"); !strings.Contains(r.stdout, "dlq") {
		t.Errorf("the command list does not name dlq:\n%s", r.stdout)
	}
}

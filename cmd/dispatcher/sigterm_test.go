//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/email/smtptest"
	"github.com/kommo-notify/notify/channels/push/fcmemu"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events/natstest"
)

// The acceptance test of graceful shutdown, with the daemon as a real process: on
// SIGTERM it stops taking work, lets the sends in flight finish within
// NOTIFY_SHUTDOWN_TIMEOUT or hands them back to JetStream, drains NATS and exits 0.
// A second dispatcher on the same NATS then delivers the rest. The users, event ids
// and tallies are those of the SIGKILL test (crash_test.go), on fewer events.

// sigtermCase is one way a SIGTERM meets the sends in flight.
type sigtermCase struct {
	name   string
	events int
	// latency is how long the FCM emulator takes to answer while the first
	// dispatcher runs; the second one meets an emulator that answers at once.
	latency         time.Duration
	shutdownTimeout time.Duration // NOTIFY_SHUTDOWN_TIMEOUT
	pushInFlight    int           // NOTIFY_PUSH_IN_FLIGHT
	// exitWithin bounds the time from SIGTERM to the exit.
	exitWithin time.Duration
	// The signal comes once the emulator has taken pushedBefore events and holds
	// at least heldAtSignal requests unanswered.
	pushedBefore, heldAtSignal int
	// finishes: the sends in flight at the signal end within the timeout, so each
	// is finished and acknowledged, and no event reaches a provider twice.
	// Otherwise they outlast it: cancelled and handed back, they may repeat.
	finishes bool
}

const (
	// sigtermAckWait is NOTIFY_ACK_WAIT: a delivery left neither acknowledged nor
	// handed back comes again only after it. It is longer than sigtermSettleWithin,
	// so such a delivery fails the test instead of slowing it down.
	sigtermAckWait = "2m"
	// sigtermRetryBase is NOTIFY_RETRY_BASE: a handed-back delivery (NAK with the
	// first retry's delay) is due again after at most this.
	sigtermRetryBase = "200ms"
	// sigtermSettleWithin bounds the second dispatcher's work, below sigtermAckWait.
	sigtermSettleWithin = 45 * time.Second
)

func TestSIGTERMFinishesOrHandsBackInFlightDeliveries(t *testing.T) {
	bin := buildDispatcher(t) // once for both cases: they run one after the other
	for _, tc := range []sigtermCase{
		{
			// The emulator answers well within the timeout: everything in flight
			// at the signal ends, the daemon exits long before the deadline.
			name: "finish", events: 300, latency: 300 * time.Millisecond,
			shutdownTimeout: 10 * time.Second, pushInFlight: 32,
			exitWithin: 10*time.Second + 5*time.Second, pushedBefore: 64, heldAtSignal: 16, finishes: true,
		},
		{
			// The emulator answers long after the timeout: the daemon cancels the
			// sends at the deadline and hands them back; it does not wait for FCM.
			name: "hand back", events: 200, latency: 5 * time.Second,
			shutdownTimeout: time.Second, pushInFlight: 16,
			exitWithin: time.Second + 2500*time.Millisecond, pushedBefore: 0, heldAtSignal: 16,
		},
	} {
		t.Run(tc.name, func(t *testing.T) { testSIGTERM(t, bin, tc) })
	}
}

func testSIGTERM(t *testing.T, bin string, tc sigtermCase) {
	began := time.Now()
	phase := func(what string) { t.Logf("%-36s at %6.2fs", what, time.Since(began).Seconds()) }
	r := newSigtermRig(t, tc)

	first := startChild(t, bin, "first", r.env)
	phase("first dispatcher routing")
	for i := range crashUsers {
		registerCrashUser(t, first.http, crashUser(i))
	}
	registerCrashUser(t, first.http, crashProbeUser)
	crashWaitForProbe(t, r.srv.Conn(t), r.sink, r.emu, r.emails, r.pushes)
	phase("profiles known to the daemon")

	r.emu.SetLatency(tc.latency)
	sigtermPublish(t, r.js, tc.events)
	phase(fmt.Sprintf("%d events published", tc.events))

	// The signal comes while the emulator holds many of the daemon's push slots
	// (the probes are done by now, the requests it holds are the test's).
	probes := r.emu.Stats().Accepted
	crashPoll(t, 30*time.Second, 2*time.Millisecond, "pushes in flight", func() (bool, string) {
		pushed, held := r.emu.Stats().Accepted-probes, len(r.fcm.inFlight())
		return pushed >= tc.pushedBefore && held >= tc.heldAtSignal,
			fmt.Sprintf("%d pushed (want %d), %d in flight (want %d of %d slots)", pushed, tc.pushedBefore, held, tc.heldAtSignal, tc.pushInFlight)
	})
	held := r.fcm.inFlight() // a subset of what is in flight when the signal lands
	pushedAtSignal := r.emu.Stats().Accepted - probes
	signalled := sigtermSignal(t, first, syscall.SIGTERM)
	phase(fmt.Sprintf("SIGTERM, %d pushes in flight", len(held)))

	code, took := sigtermWait(t, first, signalled, tc.exitWithin+15*time.Second)
	phase(fmt.Sprintf("first dispatcher exited %d", code))
	log := readSigtermLog(t, "first")
	r.emails.addEmails(r.sink.Messages())
	r.pushes.addPushes(r.emu.Messages())
	t.Logf("exit %d after %v (limit %v, shutdown timeout %v, FCM latency %v); pushed %d before the signal, %d by the exit; %d sends handed back with a retry (%v)",
		code, took.Round(time.Millisecond), tc.exitWithin, tc.shutdownTimeout, tc.latency,
		pushedAtSignal, r.pushes.events, log.total(), log.retries)
	if code != 0 {
		t.Errorf("the first dispatcher exited with %s after SIGTERM, want 0", describeExit(first))
	}
	if took > tc.exitWithin {
		t.Errorf("the first dispatcher took %v to exit after SIGTERM, more than %v (NOTIFY_SHUTDOWN_TIMEOUT %v, FCM latency %v)",
			took.Round(time.Millisecond), tc.exitWithin, tc.shutdownTimeout, tc.latency)
	}
	if !log.stopped {
		t.Error(`the first dispatcher did not log "dispatcher stopped"`)
	}
	for _, w := range log.warnings[:min(len(log.warnings), 20)] {
		t.Logf("first dispatcher: %s", w)
	}

	notify, err := r.js.Stream(t.Context(), dispatcher.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if tc.finishes {
		// Each push the emulator held at the signal was answered and the daemon
		// waited for it. What was pulled and not started yet is handed back, not
		// acknowledged: it awaits the second dispatcher, which must deliver it well
		// before the ack wait (a delivery left unanswered would wait that long).
		var unanswered []string
		for _, id := range held {
			if r.pushes.copies[id] == 0 {
				unanswered = append(unanswered, id)
			}
		}
		if len(unanswered) > 0 {
			t.Errorf("%d of the %d pushes in flight at SIGTERM never reached the emulator, such as %v",
				len(unanswered), len(held), unanswered[:min(len(unanswered), 20)])
		}
		if n := log.total(); n > 0 {
			t.Errorf("%d deliveries were cancelled and retried although the emulator answers within the shutdown timeout: %v", n, log.retries)
		}
		_, status := sigtermAckPending(t, notify)
		t.Logf("after the exit (handed-back deliveries await their redelivery): %s", status)
	} else {
		// The emulator answers these only after tc.latency, long past the deadline:
		// one it kept is a send the daemon let run beyond NOTIFY_SHUTDOWN_TIMEOUT.
		var answered []string
		for _, id := range held {
			if r.pushes.copies[id] > 0 {
				answered = append(answered, id)
			}
		}
		if len(answered) > 0 {
			t.Errorf("%d of the %d pushes in flight at SIGTERM ran to the emulator's answer %v later, past NOTIFY_SHUTDOWN_TIMEOUT=%v, such as %v",
				len(answered), len(held), tc.latency, tc.shutdownTimeout, answered[:min(len(answered), 10)])
		}
		_, status := sigtermAckPending(t, notify)
		t.Logf("after the exit (handed-back deliveries await their redelivery): %s", status)
		r.emu.SetLatency(0)
	}

	second := startChild(t, bin, "second", r.env)
	phase("second dispatcher routing")
	crashPoll(t, sigtermSettleWithin, 100*time.Millisecond, "every channel to finish", func() (bool, string) {
		return crashSettled(t.Context(), notify)
	})
	r.emails.addEmails(r.sink.Messages())
	r.pushes.addPushes(r.emu.Messages())
	phase("every channel done")

	sigtermCheckDelivered(t, channels.Push, r.pushes, tc.events, tc.finishes)
	sigtermCheckDelivered(t, channels.Email, r.emails, tc.events, tc.finishes)
	crashCheckCenter(t, second.http, r.js, tc.events)
	if info, err := r.js.Stream(t.Context(), dispatcher.DLQStreamName); err != nil {
		t.Errorf("dead-letter stream: %v", err)
	} else if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("%d dead letters: nothing should have failed", n)
	}

	// With nothing in flight, a SIGTERM ends the second dispatcher at once.
	if code, took := sigtermWait(t, second, sigtermSignal(t, second, syscall.SIGTERM), 15*time.Second); code != 0 {
		t.Errorf("the idle second dispatcher exited with %s after SIGTERM, want 0", describeExit(second))
	} else {
		t.Logf("idle second dispatcher exited 0 %v after SIGTERM", took.Round(time.Millisecond))
	}
	phase("checked")
}

// sigtermRig is what both dispatchers of a case share: NATS, the SMTP sink and the
// FCM emulator in the test process, the daemon's environment, and the tallies.
type sigtermRig struct {
	env            map[string]string
	srv            *natstest.Server
	js             jetstream.JetStream
	sink           *smtptest.Server
	emu            *fcmemu.Emulator
	fcm            *heldPushes
	emails, pushes *crashTally
}

func newSigtermRig(t *testing.T, tc sigtermCase) *sigtermRig {
	t.Helper()
	r := &sigtermRig{
		srv:    natstest.Start(t),
		sink:   smtptest.Start(t),
		emu:    fcmemu.New(fcmemu.Options{Project: crashProject, Keep: 10 * tc.events}),
		emails: newCrashTally(),
		pushes: newCrashTally(),
	}
	r.fcm = &heldPushes{next: r.emu, held: map[string]int{}}
	fcm := httptest.NewServer(r.fcm)
	t.Cleanup(fcm.Close)
	sa, err := fcmemu.NewServiceAccount(crashProject, fcm.URL+"/token")
	if err != nil {
		t.Fatal(err)
	}
	r.emu.Trust(sa.Email, &sa.Key.PublicKey)
	keyJSON, err := sa.JSON()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "fcm.json")
	if err := os.WriteFile(keyFile, keyJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	if r.js, err = jetstream.New(r.srv.Conn(t)); err != nil {
		t.Fatal(err)
	}
	r.env = map[string]string{
		"NATS_URL":                r.srv.URL(),
		"NOTIFY_DATA_DIR":         t.TempDir(),
		"NOTIFY_HTTP_ADDR":        "127.0.0.1:0",
		"NOTIFY_BASE_URL":         "https://acme.kommo.example",
		"NOTIFY_JWT_SECRET":       crashSecret,
		"NOTIFY_API_KEYS":         "sigterm-producer-key",
		"NOTIFY_ADMIN_KEYS":       crashAdminKey,
		"SMTP_URL":                fmt.Sprintf("smtp://%s?tls=none", r.sink.Addr()),
		"NOTIFY_MAIL_FROM":        "Kommo Notifications <noreply@notify.example>",
		"FCM_CREDENTIALS_FILE":    keyFile,
		"FCM_PROJECT_ID":          crashProject,
		"FCM_ENDPOINT":            fcm.URL,
		"NOTIFY_LOG_FORMAT":       "json", // startChild and readSigtermLog read it
		"NOTIFY_SHUTDOWN_TIMEOUT": tc.shutdownTimeout.String(),
		"NOTIFY_PUSH_IN_FLIGHT":   strconv.Itoa(tc.pushInFlight),
		"NOTIFY_ACK_WAIT":         sigtermAckWait,
		"NOTIFY_RETRY_BASE":       sigtermRetryBase,
	}
	return r
}

// heldPushes stands in front of the emulator and knows which events' pushes it is
// holding: a messages:send that arrived and is not answered yet is a send the
// daemon has in flight.
type heldPushes struct {
	next http.Handler
	mu   sync.Mutex
	held map[string]int // event id (data.id) to requests being answered
}

func (h *heldPushes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, ":send") {
		h.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var req struct {
		Message struct {
			Data map[string]string `json:"data"`
		} `json:"message"`
	}
	_ = json.Unmarshal(body, &req) // the emulator judges the body; this only reads the id
	id := req.Message.Data["id"]
	h.mu.Lock()
	h.held[id]++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.held[id]--; h.held[id] <= 0 {
			delete(h.held, id)
		}
	}()
	h.next.ServeHTTP(w, r)
}

// inFlight lists the test's events (not the probes) whose push is being answered.
func (h *heldPushes) inFlight() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for id := range h.held {
		if strings.HasPrefix(id, "crash-") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// sigtermPublish publishes n add_error events, each acknowledged by the stream.
func sigtermPublish(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	for i := range n {
		msg := nats.NewMsg(fmt.Sprintf("notify.%s.%s.add_error", crashAccount, crashEventUser(i)))
		msg.Header.Set(nats.MsgIdHdr, crashEventID(i))
		msg.Data = fmt.Appendf(nil, `{"header":"Sync failed","text":"Export %d stopped: the server did not answer.","link":"/settings/export/%d"}`, i, i)
		if _, err := js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatalf("publish %s: %v", crashEventID(i), err)
		}
	}
}

// sigtermSignal sends sig to the child and returns when it was sent.
func sigtermSignal(t *testing.T, c *childProcess, sig syscall.Signal) time.Time {
	t.Helper()
	at := time.Now()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to %s: %v", sig, c.name, err)
	}
	return at
}

// sigtermWait waits up to within after signalled for the child to exit and returns
// its exit code (-1 when a signal ended it) and how long after signalled it was
// reaped. A child still running then fails the test; the cleanup kills it.
func sigtermWait(t *testing.T, c *childProcess, signalled time.Time, within time.Duration) (int, time.Duration) {
	t.Helper()
	select {
	case <-c.exited:
	case <-time.After(time.Until(signalled.Add(within))):
		t.Fatalf("%s still running %v after the signal", c.name, within)
	}
	took := time.Since(signalled)
	if c.err == nil {
		return 0, took
	}
	return c.cmd.ProcessState.ExitCode(), took
}

// describeExit says how a reaped child ended.
func describeExit(c *childProcess) string {
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "death by " + ws.Signal().String()
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return "code " + strconv.Itoa(ee.ExitCode())
	}
	if c.err != nil {
		return c.err.Error()
	}
	return "code 0"
}

// sigtermLog is what a child's JSON log says about its shutdown.
type sigtermLog struct {
	stopped  bool           // it logged "dispatcher stopped"
	retries  map[string]int // channel to deliveries that failed and were handed back
	warnings []string       // the other WARN and ERROR lines
}

func (l sigtermLog) total() int {
	n := 0
	for _, c := range l.retries {
		n += c
	}
	return n
}

// readSigtermLog reads the JSON log of the exited child named name. startChild
// writes it as <name>.stderr in a directory from the test's t.TempDir.
func readSigtermLog(t *testing.T, name string) sigtermLog {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(filepath.Dir(t.TempDir()), "*", name+".stderr"))
	if err != nil || len(files) != 1 {
		t.Fatalf("the log of %s: found %v (%v); has startChild changed where it writes it?", name, files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := sigtermLog{retries: map[string]int{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Level, Msg, Channel string
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			l.warnings = append(l.warnings, "not JSON: "+sc.Text())
			continue
		}
		switch {
		case rec.Msg == "dispatcher stopped":
			l.stopped = true
		case rec.Msg == "delivery failed, will retry":
			l.retries[rec.Channel]++
		case rec.Level == "WARN" || rec.Level == "ERROR":
			l.warnings = append(l.warnings, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read the log of %s: %v", name, err)
	}
	return l
}

// sigtermPoll checks cond every interval until it holds or within has passed, and
// returns whether it held with cond's last account. Unlike crashPoll it does not
// end the test: what follows still has something to say.
func sigtermPoll(t *testing.T, within, interval time.Duration, cond func() (bool, string)) (bool, string) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, status := cond()
		if ok || time.Now().After(deadline) {
			return ok, status
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			return false, status
		}
	}
}

// sigtermAckPending is how many deliveries the channels' consumers have handed out
// and not had answered, and each consumer's state.
func sigtermAckPending(t *testing.T, notify jetstream.Stream) (int, string) {
	t.Helper()
	total := 0
	var state []string
	for _, name := range []string{channels.Relay, channels.Center, channels.Email, channels.Push} {
		c, err := notify.Consumer(t.Context(), name)
		if err != nil {
			t.Fatalf("consumer %s: %v", name, err)
		}
		ci := c.CachedInfo()
		total += ci.NumAckPending
		state = append(state, fmt.Sprintf("%s pending %d, awaiting ack %d", name, ci.NumPending, ci.NumAckPending))
	}
	return total, strings.Join(state, "; ")
}

// sigtermCheckDelivered fails for every one of the n events that the channel did
// not deliver and, when exactlyOnce, for every event it delivered more than once.
func sigtermCheckDelivered(t *testing.T, channel string, tl *crashTally, n int, exactlyOnce bool) {
	t.Helper()
	for _, p := range tl.problems[:min(len(tl.problems), 20)] {
		t.Errorf("%s: %s", channel, p)
	}
	var lost, repeated []string
	duplicates := 0
	for i := range n {
		c := tl.copies[crashEventID(i)]
		if c == 0 {
			lost = append(lost, crashEventID(i))
		}
		if c > 1 {
			repeated = append(repeated, fmt.Sprintf("%s x%d", crashEventID(i), c))
			duplicates += c - 1
		}
	}
	if tl.events != n-len(lost) {
		t.Errorf("%s reached %d events, of which only %d were published", channel, tl.events, n)
	}
	if len(lost) > 0 {
		t.Errorf("%s LOST %d of %d events, such as %v", channel, len(lost), n, lost[:min(len(lost), 20)])
	}
	t.Logf("%s: %d of %d events delivered, %d duplicates", channel, tl.events, n, duplicates)
	if exactlyOnce && len(repeated) > 0 {
		t.Errorf("%s delivered %d events more than once after a clean shutdown, such as %v",
			channel, len(repeated), repeated[:min(len(repeated), 20)])
	}
}

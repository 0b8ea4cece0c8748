//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/channels/email"
	"github.com/kommo-notify/notify/channels/email/smtptest"
	"github.com/kommo-notify/notify/channels/push/fcmemu"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events/natstest"
	"github.com/kommo-notify/notify/events/token"
)

const (
	crashAccount = "acme"
	crashUsers   = 100
	crashEvents  = 10_000
	// The dispatcher is killed once the faster of email and push has delivered
	// crashKillAt events and the slower at least crashStartedAt: a good part is
	// delivered, most is still to come, and both channels have sends in flight.
	// Which one is faster depends on the machine's load (the SMTP sink runs in the
	// test process, under -race when the suite does).
	crashKillAt    = crashEvents / 5
	crashStartedAt = crashEvents / 100
	// crashFCMLatency is how long the emulator takes to answer a send, as FCM does
	// (tens of milliseconds). Push then keeps every one of its slots busy, so the
	// kill finds the channel's whole in-flight window at the provider.
	crashFCMLatency = 50 * time.Millisecond
	// The daemon's settings that bound its sends in flight, given explicitly: every
	// send in flight at the kill may have reached the provider without its status
	// record being written, and is sent again after the restart (see crashWindows).
	crashSMTPConnections = 4 // NOTIFY_SMTP_CONNECTIONS, the default
	// crashPushInFlight is NOTIFY_PUSH_IN_FLIGHT. The default, 1,024, would push all
	// 10,000 events at the emulator's pace in a few seconds, before the kill.
	crashPushInFlight = 64
	// crashAckWait is NOTIFY_ACK_WAIT: the deliveries the kill interrupted come back
	// only once their ack wait runs out. The default, 30s, is most of the test's time.
	crashAckWait = "10s"

	crashSecret   = "crash-test-secret-0123456789abcdef"
	crashAdminKey = "crash-admin-key"
	crashProject  = "p1"
	// crashProbeUser is registered last; its probe events tell when the daemon's
	// directory cache holds every profile, and are left out of every count.
	crashProbeUser = "probe"
)

// The acceptance test of durable delivery: the dispatcher is killed with SIGKILL
// while 10,000 add_error events are in flight, then restarted on the same NATS and
// data dir. Every event reaches the center exactly once for every recipient, every
// email and push is delivered at least once, and the duplicates are counted and
// stay within the sends that were in flight at the kill.
func TestSIGKILLWhileDeliveringLosesNothing(t *testing.T) {
	began := time.Now()
	phase := func(what string) { t.Logf("%-34s at %6.1fs", what, time.Since(began).Seconds()) }
	bin := buildDispatcher(t)
	phase("dispatcher binary built")

	srv := natstest.Start(t) // in the test process: it outlives both children
	sink := smtptest.Start(t)
	emu := fcmemu.New(fcmemu.Options{Project: crashProject, Keep: 4 * crashEvents, Latency: crashFCMLatency})
	fcm := httptest.NewServer(emu)
	t.Cleanup(fcm.Close)
	sa, err := fcmemu.NewServiceAccount(crashProject, fcm.URL+"/token")
	if err != nil {
		t.Fatal(err)
	}
	emu.Trust(sa.Email, &sa.Key.PublicKey)
	keyJSON, err := sa.JSON()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "fcm.json")
	if err := os.WriteFile(keyFile, keyJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"NATS_URL":                srv.URL(),
		"NOTIFY_DATA_DIR":         t.TempDir(),
		"NOTIFY_HTTP_ADDR":        "127.0.0.1:0",
		"NOTIFY_BASE_URL":         "https://acme.kommo.example",
		"NOTIFY_JWT_SECRET":       crashSecret,
		"NOTIFY_API_KEYS":         "crash-producer-key",
		"NOTIFY_ADMIN_KEYS":       crashAdminKey,
		"SMTP_URL":                fmt.Sprintf("smtp://%s?tls=none", sink.Addr()),
		"NOTIFY_MAIL_FROM":        "Kommo Notifications <noreply@notify.example>",
		"FCM_CREDENTIALS_FILE":    keyFile,
		"FCM_PROJECT_ID":          crashProject,
		"FCM_ENDPOINT":            fcm.URL,
		"NOTIFY_LOG_FORMAT":       "json", // startChild reads the HTTP address from the log
		"NOTIFY_SMTP_CONNECTIONS": strconv.Itoa(crashSMTPConnections),
		"NOTIFY_PUSH_IN_FLIGHT":   strconv.Itoa(crashPushInFlight),
		"NOTIFY_ACK_WAIT":         crashAckWait,
	}
	emailWindow, pushWindow := crashWindows(t, env)

	first := startChild(t, bin, "first", env)
	phase("first dispatcher routing")
	for i := range crashUsers {
		registerCrashUser(t, first.http, crashUser(i))
	}
	registerCrashUser(t, first.http, crashProbeUser)
	emails, pushes := newCrashTally(), newCrashTally()
	crashWaitForProbe(t, srv.Conn(t), sink, emu, emails, pushes)
	phase("profiles known to the daemon")

	// The events go out while the first dispatcher delivers: the kill may come before
	// the last is published, and the publisher does not mind, NATS stays up.
	js, err := jetstream.New(srv.Conn(t), jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() { published <- publishCrashEvents(t.Context(), js) }()

	// Progress is read cheaply here (the emulator's count rather than a copy of all
	// it holds): the test process also runs the SMTP sink and NATS, and polling that
	// copies thousands of messages every few milliseconds would slow them down.
	probes := emu.Stats().Accepted
	crashPoll(t, 90*time.Second, 10*time.Millisecond, "the first emails and pushes", func() (bool, string) {
		emails.addEmails(sink.Messages())
		pushed := emu.Stats().Accepted - probes
		return max(emails.events, pushed) >= crashKillAt && min(emails.events, pushed) >= crashStartedAt,
			fmt.Sprintf("%d emails and %d pushes; waiting for %d of one and %d of the other", emails.events, pushed, crashKillAt, crashStartedAt)
	})
	first.kill(t)
	if !first.killedBySIGKILL() {
		t.Fatalf("the first dispatcher was not killed by SIGKILL: %v", first.err)
	}
	emails.addEmails(sink.Messages())
	pushes.addPushes(emu.Messages())
	phase("SIGKILL")
	t.Logf("delivered at the kill: %d emails, %d pushes, %d center items of %d events",
		emails.events, pushes.events, crashCenterItems(t, js), crashEvents)

	second := startChild(t, bin, "second", env)
	phase("second dispatcher routing")
	select {
	case err := <-published:
		if err != nil {
			t.Fatalf("publish the events: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the events were not all published within 60s")
	}
	phase("every event published")

	// Done is when JetStream holds no work for any channel: nothing pending, nothing
	// awaiting an ack (the deliveries the kill interrupted come back after the ack
	// wait) and, the stream keeping a message while any consumer has interest, an
	// empty stream. Counting before that would miss late duplicates.
	notify, err := js.Stream(t.Context(), dispatcher.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	crashPoll(t, 150*time.Second, 250*time.Millisecond, "every channel to finish", func() (bool, string) {
		return crashSettled(t.Context(), notify)
	})
	emails.addEmails(sink.Messages())
	pushes.addPushes(emu.Messages())
	phase("every channel done")

	if got, keep := emu.Stats().Accepted, 4*crashEvents; got > keep {
		t.Fatalf("the emulator accepted %d messages but keeps %d: counts are incomplete", got, keep)
	}
	crashCheckAtLeastOnce(t, channels.Email, emails, emailWindow)
	crashCheckAtLeastOnce(t, channels.Push, pushes, pushWindow)
	crashCheckCenter(t, second.http, js, crashEvents)
	if info, err := js.Stream(t.Context(), dispatcher.DLQStreamName); err != nil {
		t.Errorf("dead-letter stream: %v", err)
	} else if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("%d dead letters: nothing should have failed", n)
	}
	phase("checked")
}

// crashWindows are the most duplicates one SIGKILL may leave in email and in push.
// The router writes a delivery's status record as soon as the channel's Send has
// returned, before it acknowledges the event, and a redelivered event skips the
// recipients recorded as done. So a message goes out twice only when the provider
// accepted it and the process died before its record was written: a send in flight
// at the kill. The router runs at most the channel's concurrency (its own
// channels.Concurrent figure, else dispatcher.Config.Concurrency) per channel, and
// each user here has one address and one device, so one send is one message. Email
// runs what the channel says for the daemon's connections; push runs
// NOTIFY_PUSH_IN_FLIGHT.
func crashWindows(t *testing.T, env map[string]string) (emailWindow, pushWindow int) {
	t.Helper()
	server, err := email.ParseURL(env["SMTP_URL"])
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := email.New(email.Config{
		Server: server, From: env["NOTIFY_MAIL_FROM"], BaseURL: env["NOTIFY_BASE_URL"],
		Recipients: crashNoProfiles{}, Connections: crashSMTPConnections,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer mailer.Close(t.Context())
	return mailer.Concurrency(), crashPushInFlight
}

// crashNoProfiles stands in for the directory of a mailer that never sends.
type crashNoProfiles struct{}

func (crashNoProfiles) Profile(string, string) (directory.Profile, bool) {
	return directory.Profile{}, false
}
func (crashNoProfiles) Ready() <-chan struct{} { return nil }

func crashUser(i int) string    { return fmt.Sprintf("u%03d", i) }
func crashEventID(i int) string { return fmt.Sprintf("crash-%05d", i) }

// crashAddress and crashToken are where user u is reached.
func crashAddress(u string) string { return u + "@example.com" }
func crashToken(u string) string   { return "crash-token-" + u }

// crashEventUser is the user event i is addressed to: the events go round the users.
func crashEventUser(i int) string { return crashUser(i % crashUsers) }

func registerCrashUser(t *testing.T, base, user string) {
	t.Helper()
	putProfile(t, base, crashAdminKey, crashAccount, user, fmt.Sprintf(
		`{"email":%q,"name":"User %s","locale":"en","channels":{"email":true,"push":true},"devices":[{"token":%q,"platform":"android"}]}`,
		crashAddress(user), user, crashToken(user)))
}

// crashWaitForProbe waits until the daemon's directory cache holds every profile.
// The cache is fed by a watcher that sees the bucket in order, so once the probe
// user, registered last, gets an email and a push, so does everyone. An event routed
// before that is skipped (no_address, no_device): publish again, with a new id,
// until one arrives, as TestDaemonSendsEmail does.
func crashWaitForProbe(t *testing.T, nc *nats.Conn, sink *smtptest.Server, emu *fcmemu.Emulator, emails, pushes *crashTally) {
	t.Helper()
	n := 0
	publish := func() {
		t.Helper()
		msg := nats.NewMsg(fmt.Sprintf("notify.%s.%s.add_error", crashAccount, crashProbeUser))
		msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("probe-%d", n))
		msg.Data = []byte(`{"header":"Probe","text":"Is the directory loaded?"}`)
		if err := nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		n++
	}
	publish()
	again := time.NewTicker(time.Second)
	defer again.Stop()
	crashPoll(t, 30*time.Second, 5*time.Millisecond, "a probe email and push", func() (bool, string) {
		select {
		case <-again.C:
			publish()
		default:
		}
		emails.addEmails(sink.Messages())
		pushes.addPushes(emu.Messages())
		return emails.probes > 0 && pushes.probes > 0, fmt.Sprintf("%d probes published, %d emailed, %d pushed", n, emails.probes, pushes.probes)
	})
}

// publishCrashEvents publishes the events with a bounded window of unacknowledged
// publishes. A publish that fails is published again with its Nats-Msg-Id, which
// the stream's dedup window makes safe.
func publishCrashEvents(ctx context.Context, js jetstream.JetStream) error {
	msgs := make([]*nats.Msg, crashEvents)
	futures := make([]jetstream.PubAckFuture, crashEvents)
	for i := range crashEvents {
		msg := nats.NewMsg(fmt.Sprintf("notify.%s.%s.add_error", crashAccount, crashEventUser(i)))
		msg.Header.Set(nats.MsgIdHdr, crashEventID(i))
		msg.Data = fmt.Appendf(nil, `{"header":"Sync failed","text":"Export %d stopped: the server did not answer.","link":"/settings/export/%d"}`, i, i)
		msgs[i] = msg
		for {
			f, err := js.PublishMsgAsync(msg)
			if err == nil {
				futures[i] = f
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				return fmt.Errorf("publish %s: %w", crashEventID(i), err)
			}
			select { // the window is full: wait for it to drain, then go on
			case <-js.PublishAsyncComplete():
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(30 * time.Second):
				return fmt.Errorf("publish %s: no PubAck within 30s", crashEventID(i))
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return errors.New("outstanding PubAcks after 30s")
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
			continue
		case err := <-f.Err():
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err2 := js.PublishMsg(pctx, msgs[i])
			cancel()
			if err2 != nil {
				return fmt.Errorf("publish %s: %v, again: %w", crashEventID(i), err, err2)
			}
		default:
			return fmt.Errorf("publish %s: neither acknowledged nor failed", crashEventID(i))
		}
	}
	return nil
}

// crashSettled reports whether JetStream holds no more work for any channel, and
// what is left when it does not.
func crashSettled(ctx context.Context, notify jetstream.Stream) (bool, string) {
	info, err := notify.Info(ctx)
	if err != nil {
		return false, err.Error()
	}
	done := info.State.Msgs == 0
	var left []string
	for _, name := range []string{channels.Relay, channels.Center, channels.Email, channels.Push} {
		c, err := notify.Consumer(ctx, name)
		if err != nil {
			return false, fmt.Sprintf("consumer %s: %v", name, err)
		}
		ci := c.CachedInfo()
		if ci.NumPending > 0 || ci.NumAckPending > 0 {
			done = false
		}
		left = append(left, fmt.Sprintf("%s pending %d, awaiting ack %d, redelivered %d", name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered))
	}
	return done, fmt.Sprintf("stream holds %d messages; %s", info.State.Msgs, strings.Join(left, "; "))
}

// crashTally counts the messages a provider received per event. Its updates take in
// only what is new since the last one: the sink and the emulator list in arrival
// order, and the emulator keeps more than the test sends.
type crashTally struct {
	seen     int
	copies   map[string]int // event id to messages received
	events   int            // events of the test with at least one message
	probes   int            // probe messages
	problems []string       // messages that are not what was sent
}

func newCrashTally() *crashTally { return &crashTally{copies: map[string]int{}} }

func (t *crashTally) addEmails(ms []smtptest.Message) {
	for _, m := range ms[min(t.seen, len(ms)):] {
		t.seen++
		t.count(crashEmailID(m))
	}
}

func (t *crashTally) addPushes(ms []fcmemu.Received) {
	for _, m := range ms[min(t.seen, len(ms)):] {
		t.seen++
		t.count(crashPushID(m))
	}
}

// count takes in one message: the event it is of and the user it reached.
func (t *crashTally) count(id, user string, err error) {
	if err != nil {
		t.problems = append(t.problems, err.Error())
		return
	}
	if strings.HasPrefix(id, "probe-") {
		t.probes++
		return
	}
	var i int
	if _, err := fmt.Sscanf(id, "crash-%d", &i); err != nil || i < 0 || i >= crashEvents || crashEventID(i) != id {
		t.problems = append(t.problems, fmt.Sprintf("a message of an unknown event %q", id))
		return
	}
	if want := crashEventUser(i); user != want {
		t.problems = append(t.problems, fmt.Sprintf("%s reached %s, not %s", id, user, want))
	}
	if t.copies[id] == 0 {
		t.events++
	}
	t.copies[id]++
}

// crashEmailID names the event and the user of an email: its X-Notify-Event-Id and
// its recipient address.
func crashEmailID(m smtptest.Message) (string, string, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return "", "", fmt.Errorf("an unreadable email: %v", err)
	}
	id := msg.Header.Get("X-Notify-Event-Id")
	if len(m.To) != 1 {
		return id, "", fmt.Errorf("email %s to %v", id, m.To)
	}
	user, _, _ := strings.Cut(m.To[0], "@")
	return id, user, nil
}

// crashPushID names the event and the user of a push: data.id and the device token.
func crashPushID(m fcmemu.Received) (string, string, error) {
	return m.Message.Data["id"], strings.TrimPrefix(m.Message.Token, "crash-token-"), nil
}

// crashCheckAtLeastOnce fails for every event a channel lost and for duplicates
// beyond the channel's in-flight window, and logs the duplicates for the
// documentation.
func crashCheckAtLeastOnce(t *testing.T, channel string, tl *crashTally, window int) {
	t.Helper()
	for _, p := range tl.problems[:min(len(tl.problems), 20)] {
		t.Errorf("%s: %s", channel, p)
	}
	var lost []string
	duplicates, most := 0, 0
	for i := range crashEvents {
		n := tl.copies[crashEventID(i)]
		if n == 0 {
			lost = append(lost, crashEventID(i))
		}
		duplicates += max(n-1, 0)
		most = max(most, n)
	}
	if len(lost) > 0 {
		t.Errorf("%s LOST %d of %d events after SIGKILL, such as %v", channel, len(lost), crashEvents, lost[:min(len(lost), 20)])
	}
	t.Logf("%s duplicates after SIGKILL: %d of %d (at most %d copies of one event; window %d)",
		channel, duplicates, crashEvents, most, window)
	if duplicates > window {
		t.Errorf("%s: %d duplicates after one SIGKILL, more than the %d sends that can be in flight", channel, duplicates, window)
	}
}

// crashCheckCenter asserts that every user's center holds each of their first n events
// exactly once: through the center API, as the user sees it (the items and the
// unread count, a kept counter that a double add would skew), and in the center's
// stream, one message per item.
func crashCheckCenter(t *testing.T, base string, js jetstream.JetStream, n int) {
	t.Helper()
	signer, err := token.NewSigner([]byte(crashSecret))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for i := range n {
		u := crashEventUser(i)
		want[u] = append(want[u], crashEventID(i))
	}
	problems := 0
	report := func(format string, args ...any) {
		t.Helper()
		if problems++; problems <= 20 {
			t.Errorf(format, args...)
		}
	}
	stored := crashCenterSubjects(t, js)
	for u := range crashUsers {
		user := crashUser(u)
		ids, unread := crashCenterPages(t, base, signer, user)
		count := map[string]int{}
		for _, id := range ids {
			count[id]++
		}
		for _, id := range want[user] {
			switch c := count[id]; {
			case c == 0:
				report("center of %s LOST %s", user, id)
			case c > 1:
				report("center of %s holds %s %d times", user, id, c)
			}
			delete(count, id)
		}
		for id := range count {
			report("center of %s holds %s, which is not one of its events", user, id)
		}
		if unread != int64(len(want[user])) {
			report("center of %s: unread %d, want %d", user, unread, len(want[user]))
		}
		subject := center.SubjectPrefix + "." + crashAccount + "." + user
		if got := stored[subject]; got != uint64(len(want[user])) {
			report("%s holds %d messages, want %d", subject, got, len(want[user]))
		}
	}
	t.Logf("center: %d users, %d events; %d problems", crashUsers, n, problems)
}

// crashCenterSubjects counts the messages of each of the account's subjects in the
// center's stream: one per item.
func crashCenterSubjects(t *testing.T, js jetstream.JetStream) map[string]uint64 {
	t.Helper()
	s, err := js.Stream(t.Context(), center.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(center.SubjectPrefix+"."+crashAccount+".>"))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects
}

// crashCenterItems is how many items the test's users have in the center's stream.
func crashCenterItems(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	var n uint64
	for subject, count := range crashCenterSubjects(t, js) {
		if subject != center.SubjectPrefix+"."+crashAccount+"."+crashProbeUser {
			n += count
		}
	}
	return n
}

// crashCenterPages lists a user's whole center through the API, newest first, with
// a token minted for the user, and returns the ids and the unread count.
func crashCenterPages(t *testing.T, base string, signer *token.Signer, user string) ([]string, int64) {
	t.Helper()
	tok, err := signer.Mint(crashAccount, user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var unread int64
	for before := ""; ; {
		q := url.Values{"limit": {"200"}}
		if before != "" {
			q.Set("before", before)
		}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/api/v1/center?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Items  []struct{ ID string }
			Unread int64
			Next   string
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET the center of %s: %d %v", user, resp.StatusCode, err)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if before == "" {
			unread = page.Unread
		}
		if page.Next == "" {
			return ids, unread
		}
		before = page.Next
	}
}

// crashPoll checks cond every interval until it holds, failing the test after
// within with cond's last account of what it waits for.
func crashPoll(t *testing.T, within, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, status := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %s", within, what, status)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		}
	}
}

package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/kommo-notify/notify/channels/email/smtptest"
)

// The SMTP server is down for a while and comes back: nothing is lost. Every durable
// event published during the outage is emailed once the server is back, the failed
// attempts show as retries of the email channel in the metrics, nothing is
// dead-lettered, and the email consumer ends with nothing pending.
//
// Retries start at 100ms and back off to at most 1s, and an event has 20 attempts
// (at least 10s of retrying) before it is dead-lettered: the outage lasts several
// rounds of retries, about a second, and ends long before that.
func TestSMTPOutageLosesNothing(t *testing.T) {
	const (
		adminKey = "outage-test-admin-key-7c1f"
		apiKey   = "outage-test-api-key-52e0"
		events   = 50
	)
	users := []string{"ann", "bob", "chen", "dara", "eli"}
	address := func(user string) string { return user + "@example.com" }

	sink := smtptest.Start(t)
	env := embeddedEnv(t)
	env["SMTP_URL"] = fmt.Sprintf("smtp://%s?tls=none", sink.Addr())
	env["NOTIFY_MAIL_FROM"] = "Kommo Notifications <noreply@notify.example>"
	env["NOTIFY_ADMIN_KEYS"] = adminKey
	env["NOTIFY_API_KEYS"] = apiKey
	env["NOTIFY_RETRY_BASE"] = "100ms"
	env["NOTIFY_RETRY_MAX"] = "1s"
	env["NOTIFY_MAX_ATTEMPTS"] = "20"
	d := startDaemon(t, env)

	for _, user := range users {
		putProfile(t, d.ep.HTTP, adminKey, "acme", user, fmt.Sprintf(`{"email":%q,"name":%q,"locale":"en"}`, address(user), user))
	}

	nc, err := nats.Connect(d.ep.NATS)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	publish := func(user, id string) {
		t.Helper()
		msg := nats.NewMsg("notify.acme." + user + ".add_error")
		msg.Header.Set(nats.MsgIdHdr, id)
		msg.Data = fmt.Appendf(nil, `{"header":"Sync failed","text":"Event %s could not be synchronised"}`, id)
		if _, err := js.PublishMsg(t.Context(), msg); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}

	// The directory cache sees a new profile within its watcher's latency, and an event
	// routed before that is skipped (no_address), not retried. So first make sure the
	// email channel knows every address: an event per user, published again under a
	// new id until that user's email arrives.
	warm := map[string]bool{}
	round := 0
	warmUp := func() {
		for _, u := range users {
			if !warm[u] {
				publish(u, fmt.Sprintf("warm-up-%s-%d", u, round))
			}
		}
		round++
	}
	warmUp()
	deadline := time.After(15 * time.Second)
	again := time.NewTicker(500 * time.Millisecond)
	defer again.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for len(warm) < len(users) {
		select {
		case <-deadline:
			t.Fatalf("no warm-up email for every user within 15s (got %v):\n%s", warm, d.stderr.String())
		case <-again.C:
			warmUp()
		case <-tick.C:
		}
		for _, m := range sink.Messages() {
			for _, u := range users {
				if len(m.To) == 1 && m.To[0] == address(u) {
					warm[u] = true
				}
			}
		}
	}
	metric := func(outcome string) float64 {
		t.Helper()
		return seriesValue(scrape(t, d), "notify_deliveries_total",
			map[string]string{"channel": "email", "type": "add_error", "outcome": outcome})
	}
	if n := metric("retry"); n != 0 {
		t.Fatalf("%v email retries before the outage", n)
	}

	// The outage: nothing listens on the port, so a dial is refused.
	down := time.Now()
	sink.Stop()
	if c, err := net.DialTimeout("tcp", sink.Addr(), 2*time.Second); err == nil {
		c.Close()
		t.Fatalf("the stopped SMTP server still accepts connections on %s", sink.Addr())
	}
	received := len(sink.Messages())
	ids := make([]string, events)
	to := map[string]string{} // event id -> the address its email goes to
	for i := range ids {
		ids[i] = fmt.Sprintf("outage-%02d", i)
		user := users[i%len(users)]
		to[ids[i]] = address(user)
		publish(user, ids[i])
	}

	// The server stays down for three times as many failed attempts as there are
	// events: several rounds of backoff. Not one email is sent meanwhile.
	waitMetrics(t, d, 30*time.Second, func(families map[string]*dto.MetricFamily) []string {
		retries := seriesValue(families, "notify_deliveries_total",
			map[string]string{"channel": "email", "type": "add_error", "outcome": "retry"})
		if retries < 3*events {
			return []string{fmt.Sprintf("%v email retries, want at least %d", retries, 3*events)}
		}
		return nil
	})
	if n := len(sink.Messages()); n != received {
		t.Fatalf("%d emails arrived while the SMTP server was down", n-received)
	}

	// The delivery status says so too: the first event's email is retrying, with the
	// error that keeps it from going out.
	code, st := getStatus(t, d.ep.HTTP, apiKey, ids[0])
	if code != http.StatusOK {
		t.Fatalf("status of %s: %d", ids[0], code)
	}
	for _, dl := range st.Deliveries {
		if dl.Channel == "email" && (dl.State != "retrying" || dl.Error == "" || dl.Attempts < 2) {
			t.Errorf("email of %s while SMTP is down: %+v, want retrying with an error", ids[0], dl)
		}
	}

	up := time.Now()
	sink.Restart(t)
	t.Logf("SMTP server down for %v; %v retries counted", up.Sub(down).Round(time.Millisecond), metric("retry"))

	// Back on the same port: every event's email arrives.
	missing := func() []string {
		var out []string
		for _, id := range ids {
			if !emailedOnce(sink.Messages(), id, to[id]) {
				out = append(out, id)
			}
		}
		return out
	}
	deadline = time.After(60 * time.Second)
	for {
		left := missing()
		if len(left) == 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("60s after the SMTP server came back, %d of %d emails are missing: %v\n%s",
				len(left), events, left, d.stderr.String())
		case <-tick.C:
		}
	}
	t.Logf("every email arrived %v after the SMTP server came back", time.Since(up).Round(time.Millisecond))
	for i, id := range ids {
		key := "email/" + users[i%len(users)]
		waitStatus(t, d.ep.HTTP, apiKey, id, func(st eventStatus) bool { return st.states()[key] == "sent" })
	}

	// Nothing dead-lettered or failed; every delivery acknowledged.
	for _, outcome := range []string{"dead", "failed"} {
		if n := metric(outcome); n != 0 {
			t.Errorf("notify_deliveries_total{channel=email,outcome=%s} = %v, want 0", outcome, n)
		}
	}
	if n := metric("sent"); n < events {
		t.Errorf("notify_deliveries_total{channel=email,outcome=sent} = %v, want at least %d", n, events)
	}
	dlq, err := js.Stream(t.Context(), "NOTIFY_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d dead letters, want none", info.State.Msgs)
	}
	consumer, err := js.Consumer(t.Context(), "NOTIFY", "email")
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.After(10 * time.Second)
	for {
		ci, err := consumer.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumPending == 0 && ci.NumAckPending == 0 && ci.NumRedelivered == 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("email consumer: %d pending, %d unacknowledged, %d redelivering", ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
		case <-tick.C:
		}
	}
	if dups := len(sink.Messages()) - received - events; dups != 0 {
		t.Logf("%d emails sent twice (at least once is the contract)", dups)
	}
}

// emailedOnce reports whether some message carries event id and went to addr.
func emailedOnce(msgs []smtptest.Message, id, addr string) bool {
	header := []byte("X-Notify-Event-Id: " + id + "\r\n")
	for _, m := range msgs {
		if len(m.To) == 1 && m.To[0] == addr && bytes.Contains(m.Data, header) {
			return true
		}
	}
	return false
}

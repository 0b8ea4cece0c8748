package push_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/channels/push"
	"github.com/kommo-notify/notify/channels/push/fcmemu"
	"github.com/kommo-notify/notify/events"
)

func TestQuotaExceededHonoursRetryAfterAndRetriesOnlyTheFailedDevice(t *testing.T) {
	e := newEnv(t, nil)
	e.addDevices(t, "42", android("fine"), ios("throttled"))
	mustFail(t, e.emu, fcmemu.Rule{Token: "throttled", Error: fcmemu.QuotaExceeded, Times: 1, RetryAfter: 30})
	ev := event(t, "err-1", events.AddError, "42", `{"text":"x"}`)

	err := e.send(t, ev, "42", 1)
	if err == nil || channels.IsPermanent(err) {
		t.Fatalf("Send = %v, want a transient error", err)
	}
	if d, ok := channels.RetryDelay(err); !ok || d != 30*time.Second {
		t.Fatalf("RetryDelay = %v, %v; want FCM's Retry-After of 30s", d, ok)
	}
	if got := e.metric(t, "notify_push_messages_total", "outcome", "retry"); got != 1 {
		t.Errorf("retry outcomes = %v, want 1", got)
	}

	if err := e.send(t, ev, "42", 2); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(e.emu.MessagesTo("fine")); n != 1 {
		t.Errorf("the device that had it got %d messages, want 1: a retry goes to the failed devices only", n)
	}
	if n := len(e.emu.MessagesTo("throttled")); n != 1 {
		t.Errorf("the throttled device got %d messages, want 1", n)
	}
	if st := e.emu.Stats(); st.Requests != 3 {
		t.Errorf("emulator requests = %d, want 3 (two, then the failed one again)", st.Requests)
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rule       fcmemu.Rule
		retryAfter time.Duration
	}{
		// go-fcm does not retry a 500: it comes straight back to the router.
		{name: "INTERNAL", rule: fcmemu.Rule{Error: fcmemu.Internal}},
		// go-fcm retries a 503 itself unless its Retry-After is over two minutes.
		{name: "UNAVAILABLE", rule: fcmemu.Rule{Error: fcmemu.Unavailable, RetryAfter: 300}, retryAfter: 300 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.addDevices(t, "42", android("phone"))
			mustFail(t, e.emu, tc.rule)
			ev := event(t, "err-1", events.AddError, "42", `{"text":"x"}`)
			err := e.send(t, ev, "42", 1)
			if err == nil || channels.IsPermanent(err) {
				t.Fatalf("Send = %v, want a transient error", err)
			}
			if d, _ := channels.RetryDelay(err); d != tc.retryAfter {
				t.Errorf("RetryDelay = %v, want %v", d, tc.retryAfter)
			}
			e.emu.ClearRules()
			if err := e.send(t, ev, "42", 2); err != nil {
				t.Fatalf("retry after the server recovered: %v", err)
			}
			if n := len(e.emu.MessagesTo("phone")); n != 1 {
				t.Errorf("got %d messages, want 1", n)
			}
		})
	}
}

func TestBriefUnavailabilityIsRetriedByTheLibrary(t *testing.T) {
	e := newEnv(t, nil)
	e.addDevices(t, "42", android("phone"))
	mustFail(t, e.emu, fcmemu.Rule{Error: fcmemu.Unavailable, Times: 1})
	if err := e.send(t, event(t, "err-1", events.AddError, "42", `{"text":"x"}`), "42", 1); err != nil {
		t.Fatalf("Send = %v, want go-fcm to retry one 503 at once", err)
	}
	if st := e.emu.Stats(); st.Requests != 2 || st.Accepted != 1 {
		t.Errorf("emulator stats %+v, want 2 requests, 1 accepted", st)
	}
}

func TestBroadcastIsRememberedForTheRouterRetry(t *testing.T) {
	e := newEnv(t, nil)
	e.addDevices(t, "ann", android("ann-phone"))
	ev := event(t, "err-all", events.AddError, events.AllUsers, `{"text":"x"}`)
	// The router resends an _all event to every user when one of them failed.
	for attempt := 1; attempt <= 2; attempt++ {
		if err := e.send(t, ev, "ann", attempt); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	if n := len(e.emu.MessagesTo("ann-phone")); n != 1 {
		t.Errorf("got %d messages, want 1", n)
	}
}

func TestRefusedCredentialsArePermanent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		adjust   func(*env, *push.Config)
		requests int // messages:send requests the emulator gets
	}{
		{
			// FCM answers 401 UNAUTHENTICATED to a token it does not know.
			name: "access token refused by FCM",
			adjust: func(_ *env, c *push.Config) {
				c.Credentials, c.ProjectID = nil, project
				c.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "revoked"})
			},
			requests: 2,
		},
		{
			// The token endpoint refuses the assertion: the emulator knows the
			// account by another key, as Google does once a key is deleted.
			name: "service account key refused by the token endpoint",
			adjust: func(e *env, c *push.Config) {
				c.Credentials = credentialsFile(t, e.emu, e.url, false)
				other, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				e.emu.Trust(c.Credentials.ClientEmail, &other.PublicKey)
			},
		},
		{
			// A project the account may not send for: 403 PERMISSION_DENIED.
			name:     "project refused by FCM",
			adjust:   func(_ *env, c *push.Config) { c.ProjectID = "someone-elses" },
			requests: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.adjust)
			e.addDevices(t, "42", android("phone"))
			ev := event(t, "err-1", events.AddError, "42", `{"text":"x"}`)
			for range 2 {
				err := e.send(t, ev, "42", 1)
				if !channels.IsPermanent(err) || !errors.Is(err, push.ErrCredentials) {
					t.Fatalf("Send = %v, want a permanent ErrCredentials", err)
				}
			}
			if n := e.metric(t, "notify_push_config_errors_total", "problem", "credentials"); n != 2 {
				t.Errorf("credential problems counted %v, want 2", n)
			}
			if logs := e.logs.errors(); len(logs) != 1 {
				t.Errorf("%d error logs, want 1 per interval", len(logs))
			}
			if st := e.emu.Stats(); st.Requests != tc.requests || st.Accepted != 0 {
				t.Errorf("emulator stats %+v, want %d requests, none accepted", st, tc.requests)
			}
		})
	}
}

func TestThirdPartyAuthErrorIsAConfigurationProblem(t *testing.T) {
	e := newEnv(t, nil)
	e.addDevices(t, "42", android("android-phone"), ios("iphone"))
	mustFail(t, e.emu, fcmemu.Rule{Token: "iphone", Error: fcmemu.ThirdPartyAuthError})
	for i := range 3 {
		ev := event(t, fmt.Sprintf("err-%d", i), events.AddError, "42", `{"text":"x"}`)
		err := e.send(t, ev, "42", 1)
		if !channels.IsPermanent(err) || !errors.Is(err, push.ErrThirdPartyAuth) {
			t.Fatalf("Send = %v, want a permanent ErrThirdPartyAuth", err)
		}
	}
	if n := e.metric(t, "notify_push_config_errors_total", "problem", "third_party_auth"); n != 3 {
		t.Errorf("third-party auth problems counted %v, want 3", n)
	}
	logs := e.logs.errors()
	if len(logs) != 1 {
		t.Fatalf("%d error logs, want 1 per interval", len(logs))
	}
	logs[0].Attrs(func(a slog.Attr) bool {
		if a.Key == "problem" && a.Value.String() != "third_party_auth" {
			t.Errorf("logged problem %q", a.Value)
		}
		return true
	})
	if n := len(e.emu.MessagesTo("android-phone")); n != 3 {
		t.Errorf("the Android phone got %d messages, want 3: APNs trouble does not stop Android", n)
	}
	if toks := e.tokens("42"); len(toks) != 2 {
		t.Errorf("devices %v: a configuration problem prunes nothing", toks)
	}
}

func TestRateLimitKeepsUnderTheQuota(t *testing.T) {
	// 600 a minute: ten a second, in bursts of ten.
	e := newEnv(t, func(_ *env, c *push.Config) { c.RatePerMinute = 600 })
	var devices []directory.Device
	for i := range 12 {
		devices = append(devices, android(fmt.Sprintf("phone-%02d", i)))
	}
	e.addDevices(t, "42", devices...)

	start := time.Now()
	if err := e.send(t, event(t, "err-1", events.AddError, "42", `{"text":"x"}`), "42", 1); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("12 messages at 10/s with a burst of 10 took %v, want about 200ms", took)
	}

	// The limiter is empty now: a send whose context ends before its turn gives up
	// at once, without sending, and is retried later.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := e.sender.Send(ctx, &channels.Delivery{Event: event(t, "err-2", events.AddError, "42", `{"text":"y"}`), User: "42", Attempt: 1})
	if err == nil || channels.IsPermanent(err) {
		t.Fatalf("Send = %v, want a transient error", err)
	}
	if st := e.emu.Stats(); st.Requests != 12 {
		t.Errorf("emulator requests = %d, want 12", st.Requests)
	}
}

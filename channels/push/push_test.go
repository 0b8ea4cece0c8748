package push_test

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/channels/push"
	"github.com/kommo-notify/notify/channels/push/fcmemu"
	"github.com/kommo-notify/notify/events"
)

const callBody = `{"header":"Call from +1 (415) 523-7743","text":"<p>Jeremy Watts is calling</p><p>about <b>order 42</b></p>",
	"from":"Jeremy Watts","to":"Jason Nash","element":{"id":18221265,"type":"contact"},
	"link":"https://rec.example.com/calls/7781.mp3","duration":250}`

func TestSendCallToEveryDevice(t *testing.T) {
	e := newEnv(t, nil)
	e.addDevices(t, "42", android("android-token-1"), ios("ios-token-1"), directory.Device{Token: "web-token-1", Platform: directory.Web})

	ev := event(t, "call-7781", events.AddCall, "42", callBody)
	if err := e.send(t, ev, "42", 1); err != nil {
		t.Fatalf("Send: %v", err)
	}

	for _, token := range []string{"android-token-1", "ios-token-1", "web-token-1"} {
		got := e.emu.MessagesTo(token)
		if len(got) != 1 {
			t.Fatalf("%s got %d messages, want 1", token, len(got))
		}
		m := got[0].Message
		if m.Notification == nil || m.Notification.Title != "Call from +1 (415) 523-7743" || m.Notification.Body != "Jeremy Watts is calling\n\nabout order 42" {
			t.Errorf("%s: notification %+v", token, m.Notification)
		}
		wantData := map[string]string{
			"type": "add_call", "id": "call-7781", "click": baseURL + "/contacts/detail/18221265",
			"call_from": "Jeremy Watts", "to": "Jason Nash", "element_type": "contact", "element_id": "18221265",
		}
		if !maps.Equal(m.Data, wantData) {
			t.Errorf("%s: data %v, want %v", token, m.Data, wantData)
		}
		a := m.Android
		if a == nil || a.Priority != "high" || a.CollapseKey == "" || a.Notification == nil ||
			a.Notification.ChannelID != "calls" || a.Notification.Sound != "default" || a.Notification.Tag != a.CollapseKey ||
			a.Notification.NotificationPriority != "PRIORITY_MAX" {
			t.Errorf("%s: android %+v (notification %+v)", token, a, a.Notification)
		}
		h := m.APNS.Headers
		if h["apns-priority"] != "10" || h["apns-push-type"] != "alert" || h["apns-collapse-id"] != a.CollapseKey {
			t.Errorf("%s: apns headers %v", token, h)
		}
		aps := m.APNS.Aps()
		if aps["sound"] != "default" || aps["interruption-level"] != "time-sensitive" || aps["thread-id"] != "add_call" {
			t.Errorf("%s: aps %v", token, aps)
		}
		if m.Webpush == nil || m.Webpush.FCMOptions == nil || m.Webpush.FCMOptions.Link != wantData["click"] {
			t.Errorf("%s: webpush %+v", token, m.Webpush)
		}
	}
}

func TestSendErrorShape(t *testing.T) {
	e := newEnv(t, nil)
	e.addDevices(t, "42", android("android-token-1"))

	ev := event(t, "err-1", events.AddError, "42",
		`{"text":"Failed to set the task! <a href=\"/contacts/list/?term=4951234567\">Contact</a> not found!","link":"/contacts/list/?term=4951234567"}`)
	if err := e.send(t, ev, "42", 1); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := e.emu.MessagesTo("android-token-1")
	if len(got) != 1 {
		t.Fatalf("got %d messages, want 1", len(got))
	}
	m := got[0].Message
	if m.Notification.Title != "Error" || m.Notification.Body != "Failed to set the task! Contact (/contacts/list/?term=4951234567) not found!" {
		t.Errorf("notification %+v", m.Notification)
	}
	want := map[string]string{"type": "add_error", "id": "err-1", "click": baseURL + "/contacts/list/?term=4951234567"}
	if !maps.Equal(m.Data, want) {
		t.Errorf("data %v, want %v", m.Data, want)
	}
	if a := m.Android; a.Priority != "high" || a.CollapseKey != "" || a.Notification.ChannelID != "errors" || a.Notification.Tag == "" {
		t.Errorf("android %+v (notification %+v): want high priority, no collapse key, the errors channel and a tag", a, a.Notification)
	}
	if _, ok := m.APNS.Aps()["interruption-level"]; ok {
		t.Errorf("an error is not time-sensitive: aps %v", m.APNS.Aps())
	}
}

func TestCallWithoutElementClicksTheRecording(t *testing.T) {
	e := newEnv(t, nil)
	e.addDevices(t, "42", android("android-token-1"))
	ev := event(t, "call-2", events.AddCall, "42", `{"text":"Missed call","link":"https://rec.example.com/2.mp3"}`)
	if err := e.send(t, ev, "42", 1); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := e.emu.MessagesTo("android-token-1")[0].Message
	if m.Notification.Title != "Incoming call" || m.Data["click"] != "https://rec.example.com/2.mp3" {
		t.Errorf("title %q, click %q", m.Notification.Title, m.Data["click"])
	}
	for _, k := range []string{"call_from", "to", "element_type", "element_id"} {
		if _, ok := m.Data[k]; ok {
			t.Errorf("data has %s without a value: %v", k, m.Data)
		}
	}
}

func TestDeadTokensArePruned(t *testing.T) {
	e := newEnv(t, nil)
	good := []string{"good-android", "good-ios"}
	dead := []string{"unregistered", "other-project", "not.a.valid.token"}
	e.addDevices(t, "42", android(good[0]), ios(good[1]), android(dead[0]), ios(dead[1]), android(dead[2]))
	mustFail(t, e.emu, fcmemu.Rule{Token: "unregistered", Error: fcmemu.Unregistered})
	mustFail(t, e.emu, fcmemu.Rule{Token: "other-project", Error: fcmemu.SenderIDMismatch})
	// not.a.valid.token is refused by the emulator's own check: INVALID_ARGUMENT.

	if err := e.send(t, event(t, "err-1", events.AddError, "42", `{"text":"x"}`), "42", 1); err != nil {
		t.Fatalf("Send: %v, want nil: a dead token is not an error of the send", err)
	}
	e.waitTokens(t, "42", func(have []string) bool { return slices.Equal(have, good) })
	if n := e.metric(t, "notify_push_tokens_pruned_total"); n != 3 {
		t.Errorf("notify_push_tokens_pruned_total = %v, want 3", n)
	}
	for _, token := range good {
		if n := len(e.emu.MessagesTo(token)); n != 1 {
			t.Errorf("%s got %d messages, want 1", token, n)
		}
	}

	// The next event goes to the good devices alone.
	if err := e.send(t, event(t, "err-2", events.AddError, "42", `{"text":"y"}`), "42", 1); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if st := e.emu.Stats(); st.Requests != 7 || st.Accepted != 4 {
		t.Errorf("emulator stats %+v, want 7 requests (5 then 2), 4 accepted", st)
	}
}

func TestEveryDevicePrunedIsNoDevice(t *testing.T) {
	e := newEnv(t, nil)
	e.addDevices(t, "42", android("gone-1"), ios("gone-2"))
	mustFail(t, e.emu, fcmemu.Rule{Error: fcmemu.Unregistered})
	err := e.send(t, event(t, "err-1", events.AddError, "42", `{"text":"x"}`), "42", 1)
	if reason, ok := channels.IsSkip(err); !ok || reason != channels.ReasonNoDevice {
		t.Fatalf("Send = %v, want a no_device skip", err)
	}
	e.waitTokens(t, "42", func(have []string) bool { return len(have) == 0 })
}

func TestSkips(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	if _, _, err := e.store.Put(ctx, account, "no-devices", directory.Profile{Channels: directory.DefaultChannels}); err != nil {
		t.Fatal(err)
	}
	e.addDevices(t, "opted-out", android("muted-phone"))
	if _, err := e.store.SetChannels(ctx, account, "opted-out", directory.Channels{Email: true}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the cache sees both", func() bool {
		p, ok := e.cache.Profile(account, "opted-out")
		_, ok2 := e.cache.Profile(account, "no-devices")
		return ok && ok2 && !p.Channels.Push
	})

	for _, tc := range []struct{ user, reason string }{
		{"nobody", channels.ReasonNoDevice}, // no profile
		{"no-devices", channels.ReasonNoDevice},
		{"opted-out", channels.ReasonOptedOut},
	} {
		t.Run(tc.user, func(t *testing.T) {
			err := e.send(t, event(t, "err-1", events.AddError, tc.user, `{"text":"x"}`), tc.user, 1)
			if reason, ok := channels.IsSkip(err); !ok || reason != tc.reason {
				t.Fatalf("Send = %v, want skipped %s", err, tc.reason)
			}
		})
	}
	if st := e.emu.Stats(); st.Requests != 0 {
		t.Errorf("the emulator got %d requests, want none", st.Requests)
	}
}

func TestOnlyWithPush(t *testing.T) {
	e := newEnv(t, nil)
	err := e.send(t, event(t, "m-1", events.ShowMessage, "42", `{"header":"h","text":"t"}`), "42", 1)
	if !channels.IsPermanent(err) || !strings.Contains(err.Error(), "show_message") {
		t.Fatalf("Send(show_message) = %v, want a permanent error", err)
	}
}

func mustFail(t *testing.T, emu *fcmemu.Emulator, r fcmemu.Rule) {
	t.Helper()
	if err := emu.Fail(r); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsExportedFromTheStart(t *testing.T) {
	e := newEnv(t, nil)
	want := map[string]int{
		"notify_push_tokens_pruned_total": 1,
		"notify_push_messages_total":      4, // sent, pruned, retry, failed
		"notify_push_config_errors_total": 2, // credentials, third_party_auth
	}
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		n, ok := want[f.GetName()]
		if !ok {
			continue
		}
		if len(f.GetMetric()) != n {
			t.Errorf("%s has %d series, want %d", f.GetName(), len(f.GetMetric()), n)
		}
		for _, m := range f.GetMetric() {
			if v := m.GetCounter().GetValue(); v != 0 {
				t.Errorf("%s = %v before any send", f.GetName(), v)
			}
		}
		delete(want, f.GetName())
	}
	for name := range want {
		t.Errorf("%s is not exported before the first send", name)
	}
}

func TestWaitsForTheDirectoryToLoad(t *testing.T) {
	_, url := startEmulator(t, fcmemu.Options{AccessTokens: []string{"t"}})
	loading := loadingDirectory{}
	s, err := push.New(t.Context(), push.Config{
		ProjectID: project, TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}),
		Endpoint: url, BaseURL: baseURL, Profiles: loading, Devices: oneDeviceEach{},
		Timeout: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(t.Context(), &channels.Delivery{Event: event(t, "e1", events.AddError, "42", `{"text":"x"}`), User: "42", Attempt: 1})
	if err == nil || channels.IsPermanent(err) || !strings.Contains(err.Error(), "still loading") {
		t.Fatalf("Send = %v, want a transient error: no profile yet is not no device", err)
	}
	if _, ok := channels.IsSkip(err); ok {
		t.Fatal("skipped before the directory loaded")
	}
}

// loadingDirectory has not finished its first load.
type loadingDirectory struct{ oneDeviceEach }

func (loadingDirectory) Ready() <-chan struct{} { return nil }

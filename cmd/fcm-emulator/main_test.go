package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/channels/push"
	"github.com/kommo-notify/notify/events"
)

// start runs the emulator with args until the test ends and returns its base URL.
func start(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan int, 1)
	var stdout, stderr bytes.Buffer
	go func() {
		done <- run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), &stdout, &stderr, func(u string) { urls <- u })
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit code %d: %s", code, stderr.String())
		}
	})
	select {
	case u := <-urls:
		return u
	case code := <-done:
		t.Fatalf("exited with %d: %s", code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("the emulator did not start")
	}
	return ""
}

// TestTheKeyFileItWritesWorksWithThePushChannel runs the channel against the command
// as a person would: the key file from --credentials-out, FCM_ENDPOINT at its URL.
func TestTheKeyFileItWritesWorksWithThePushChannel(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "fcm.json")
	base := start(t, "--credentials-out", keyFile, "--fail", "error=UNREGISTERED,token=gone", "--latency", "1ms")

	creds, err := push.LoadCredentials(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := push.New(t.Context(), push.Config{
		Credentials: creds, Endpoint: base, BaseURL: "https://crm.example.com",
		Profiles: devices{"phone", "gone"}, Devices: devices{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	p, _, err := events.Validate(events.AddError, []byte(`{"text":"Disk full"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ev := &events.Event{ID: "e1", Address: events.Address{Account: "acme", User: "42", Type: events.AddError}, Payload: p}
	if err := s.Send(t.Context(), &channels.Delivery{Event: ev, User: "42", Attempt: 1}); err != nil {
		t.Fatalf("Send: %v", err)
	}

	resp, err := http.Get(base + "/emulator/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Total    int `json:"total"`
		Messages []struct {
			Message struct {
				Token        string            `json:"token"`
				Data         map[string]string `json:"data"`
				Notification struct{ Body string }
			} `json:"message"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if page.Total != 1 || page.Messages[0].Message.Token != "phone" || page.Messages[0].Message.Notification.Body != "Disk full" {
		t.Fatalf("received %+v, want the one message to phone", page)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--help"}, 0, "--credentials-out"},
		{[]string{"--fail", "error=NOPE"}, 2, "unknown error"},
		{[]string{"--listen", "4004"}, 2, "--listen"},
		{[]string{"--latency", "-1s"}, 2, "--latency"},
		{[]string{"extra"}, 2, "unexpected argument"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), tc.args, &stdout, &stderr, nil); code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.out) {
			t.Errorf("%v: exit %d, output %q; want %d mentioning %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.out)
		}
	}
}

// devices is a directory in which user 42 has the listed Android tokens.
type devices []string

func (d devices) Profile(_, user string) (directory.Profile, bool) {
	p := directory.Profile{Channels: directory.DefaultChannels}
	for _, tok := range d {
		p.Devices = append(p.Devices, directory.Device{Token: tok, Platform: directory.Android})
	}
	return p, user == "42"
}

func (devices) Ready() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (devices) RemoveDevice(context.Context, string, string, string) (bool, error) { return true, nil }

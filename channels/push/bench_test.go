package push_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/channels/push"
	"github.com/kommo-notify/notify/channels/push/fcmemu"
	"github.com/kommo-notify/notify/events"
)

// benchLatency is how long the emulator takes to answer, as PERFORMANCE.md asks.
const benchLatency = 100 * time.Millisecond

// benchCases are the protocols and sends in flight measured. FCM speaks HTTP/2 (over
// TLS); h2c is the same protocol without TLS, which the emulator also serves. 64 is
// the router's default concurrency per channel; 1,024 is what 5,000 msgs/s at
// 100 ms needs (at most 10,240/s in theory).
var benchCases = []struct {
	proto    string
	inFlight int
}{
	{"h2c", 64}, {"h2c", 1024}, {"http1", 1024},
}

// BenchmarkSend is the push channel at full speed against an emulator that answers
// after 100 ms: one device per user, so one send is one message. Compare with
// BenchmarkRawPost, the same emulator without the channel.
func BenchmarkSend(b *testing.B) {
	p, _, err := events.Validate(events.AddCall, []byte(callBody), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range benchCases {
		// One emulator and sender per case, shared by the rounds that size b.N, so
		// they reuse their connections instead of leaving thousands in TIME_WAIT.
		_, url := startEmulator(b, fcmemu.Options{Latency: benchLatency, AccessTokens: []string{"bench"}, Keep: 1})
		s, err := push.New(b.Context(), push.Config{
			ProjectID:   project,
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "bench"}),
			Endpoint:    url,
			BaseURL:     baseURL,
			Profiles:    oneDeviceEach{},
			Devices:     oneDeviceEach{},
			Transport:   benchTransport(bc.proto),
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close(context.Background()) })
		b.Run(fmt.Sprintf("proto=%s/in_flight=%d", bc.proto, bc.inFlight), func(b *testing.B) {
			inParallel(b, bc.inFlight, func(i int64) error {
				ev := &events.Event{
					ID:      "bench-" + strconv.FormatInt(i, 10),
					Address: events.Address{Account: account, User: strconv.FormatInt(i%10_000, 10), Type: events.AddCall},
					Payload: p,
				}
				return s.Send(context.Background(), &channels.Delivery{Event: ev, User: ev.User, Attempt: 1})
			})
		})
	}
}

// BenchmarkRawPost is the baseline of BenchmarkSend: one message, already encoded,
// POSTed in a loop to the same emulator with the same transport and concurrency.
func BenchmarkRawPost(b *testing.B) {
	body := []byte(`{"message":{"token":"tok-1","notification":{"title":"Call from +1 (415) 523-7743","body":"Jeremy Watts is calling"},` +
		`"data":{"type":"add_call","id":"bench","click":"https://crm.example.com/contacts/detail/18221265"},` +
		`"android":{"priority":"high","collapse_key":"k","notification":{"channel_id":"calls","sound":"default","tag":"k"}},` +
		`"apns":{"headers":{"apns-priority":"10","apns-push-type":"alert","apns-collapse-id":"k"},"payload":{"aps":{"sound":"default"}}}}}`)
	for _, bc := range benchCases {
		_, url := startEmulator(b, fcmemu.Options{Latency: benchLatency, AccessTokens: []string{"bench"}, Keep: 1})
		tr := benchTransport(bc.proto)
		b.Cleanup(tr.CloseIdleConnections)
		client := &http.Client{Transport: tr, Timeout: push.DefaultTimeout}
		endpoint := url + "/v1/projects/" + project + "/messages:send"
		b.Run(fmt.Sprintf("proto=%s/in_flight=%d", bc.proto, bc.inFlight), func(b *testing.B) {
			inParallel(b, bc.inFlight, func(int64) error {
				req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(body))
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "Bearer bench")
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				_, _ = io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			})
		})
	}
}

// inParallel runs op b.N times with inFlight calls at a time and reports msgs/s. The
// callers start one by one over one emulator latency, as a steady flow of events
// arrives, rather than all at once: a thousand requests started together come back
// together, and the run would measure that wave, CPU-bound for a moment and idle for
// the rest. One untimed round first opens the connections.
func inParallel(b *testing.B, inFlight int, op func(i int64) error) {
	var failed atomic.Int64
	run := func(n int64, next *atomic.Int64) {
		tick := time.NewTicker(benchLatency / time.Duration(inFlight))
		defer tick.Stop()
		var wg sync.WaitGroup
		for range inFlight {
			<-tick.C
			wg.Go(func() {
				for i := next.Add(1); i <= n; i = next.Add(1) {
					if err := op(i); err != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
	}
	var warm atomic.Int64
	warm.Store(-int64(inFlight)) // negative ids: the timed run's are 1..b.N
	run(0, &warm)
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	run(int64(b.N), &next)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d calls failed", f)
	}
}

// benchTransport is the channel's default transport for http1, and the same speaking
// HTTP/2 without TLS for h2c.
func benchTransport(proto string) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 1024
	if proto == "h2c" {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
	}
	return t
}

// loaded is a closed channel: a directory that is ready.
var loaded = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// oneDeviceEach gives every user one Android device, without NATS, so the benchmark
// measures the channel and FCM's round trip alone.
type oneDeviceEach struct{}

func (oneDeviceEach) Profile(_, user string) (directory.Profile, bool) {
	return directory.Profile{
		Channels: directory.DefaultChannels,
		Devices:  []directory.Device{{Token: "tok-" + user, Platform: directory.Android}},
	}, true
}

func (oneDeviceEach) Ready() <-chan struct{} { return loaded }

func (oneDeviceEach) RemoveDevice(context.Context, string, string, string) (bool, error) {
	return false, nil
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// push: add_error events to users with one Android device each, through the
// dispatcher's push channel (its own consumer, go-fcm, the OAuth flow of a service
// account) to the FCM emulator in the harness, which answers every send after
// 100 ms. The baseline is a raw HTTP POST loop of the same kind of message against
// the same emulator with as many requests in flight as the channel runs sends
// (NOTIFY_PUSH_IN_FLIGHT, 1,024 by default). Latency ends when the emulator has the
// request. Both sides open their connections in an untimed round first.
//
// Defaults: 5,000 events (--events) to 1,000 users (--users), 1,024 in flight
// (--inflight).

const pushLatency = 100 * time.Millisecond

func runPush(ctx context.Context, h *harness) (*Result, error) {
	users := or(h.o.Users, 1000)
	n := or(h.o.Events, 5000)
	inflight := or(h.o.InFlight, 1024)
	cur := &current{}
	fcm, err := startFCM(h.dir("fcm"), pushLatency, func(id string) { cur.arrive(id) })
	if err != nil {
		return nil, err
	}
	defer fcm.close()
	d, err := h.startDaemon(ctx, "", map[string]string{
		"FCM_CREDENTIALS_FILE":  fcm.credentials,
		"FCM_PROJECT_ID":        fcmProject,
		"FCM_ENDPOINT":          fcm.url,
		"NOTIFY_PUSH_IN_FLIGHT": strconv.Itoa(inflight),
	})
	if err != nil {
		return nil, err
	}
	defer d.stop()
	nc, err := h.connect(d.nats, "bench-push")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := putProfiles(ctx, nc, users, false, true); err != nil {
		return nil, err
	}
	// One event to the last user first (the daemon's directory has every profile once
	// it is delivered), then a round as large as the sends in flight, so the
	// channel's connections are open before anything is measured.
	if err := h.waitProfiles(ctx, cur, nc, users); err != nil {
		return nil, err
	}
	if _, err := h.durablePhase(ctx, cur, nc, "warm-up", false, nil, 0, inflight, 0, users); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	raw := newRawPusher(fcm.url, inflight)
	defer raw.close()
	if _, err := raw.loop(ctx, cur, "warm-up", inflight, users, nil); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	procs := []proc{{"dispatcher", d.pid}, self()}
	rawName := fmt.Sprintf("raw POST loop, %s in flight", thousands(float64(inflight)))
	runs, err := h.repeat(ctx, func(ctx context.Context, _ int) ([]Row, error) {
		target, err := h.durablePhase(ctx, cur, nc, "push channel", false, procs, d.pid, n, 0, users)
		if err != nil {
			return nil, err
		}
		h.logf("%s", rawName)
		base, err := raw.loop(ctx, cur, rawName, n, users, procs)
		if err != nil {
			return nil, err
		}
		return []Row{target, base}, d.alive()
	})
	if err != nil {
		return nil, err
	}
	rows := medianRows(runs)
	compare(rows, "push channel", rawName)
	var bars []Bar
	if t, b := row(rows, "push channel"), row(rows, rawName); t != nil && b != nil {
		bars = append(bars, atLeast("push: at least 5,000 msgs/s against an emulator that answers after 100 ms", t.Name, ">= 5,000/s",
			fmt.Sprintf("%s msgs/s with %s sends in flight (the raw loop: %s/s)", thousands(t.Throughput), thousands(float64(inflight)), thousands(b.Throughput)), t.Throughput, 5000))
	}
	notes := []string{
		fmt.Sprintf("target: %s add_error events published to JetStream at once to %s users with one Android device each (email off); the dispatcher's push consumer (NOTIFY_PUSH_IN_FLIGHT=%d sends in flight) sends each through go-fcm to the emulator (%s latency, FCM's validation, an OAuth bearer minted from the service account); per s runs from the first publish to the emulator's last arrival", thousands(float64(n)), thousands(float64(users)), inflight, pushLatency),
		fmt.Sprintf("baseline: the same kind of message (token, notification, data, android and apns blocks) POSTed by %d goroutines (started over one latency period) with the channel's default transport (HTTP/1.1 to an http:// endpoint, up to 1,024 idle connections); latency from building the request to the emulator having it", inflight),
		"the dispatcher's other consumers (relay, center, and email recorded as skipped) take the same events at the same time",
		"the emulator runs in the harness process for both rows",
	}
	return &Result{
		Title:  fmt.Sprintf("add_error by push to an FCM emulator answering after %s", pushLatency),
		Params: map[string]string{"events": fmt.Sprint(n), "users": fmt.Sprint(users), "inflight": fmt.Sprint(inflight), "latency": pushLatency.String()},
		Rows:   rows, Bars: bars, Notes: notes, Runs: runs,
	}, nil
}

// rawPusher is the baseline: an HTTP client as the push channel's, POSTing to the
// emulator with a number of requests in flight.
type rawPusher struct {
	t        *http.Transport
	client   *http.Client
	endpoint string
	inflight int
}

func newRawPusher(base string, inflight int) *rawPusher {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 1024
	return &rawPusher{t: t, client: &http.Client{Transport: t, Timeout: 30 * time.Second},
		endpoint: base + "/v1/projects/" + fcmProject + "/messages:send", inflight: inflight}
}

func (r *rawPusher) close() { r.t.CloseIdleConnections() }

// loop POSTs n messages, r.inflight at a time; with procs nil it is not measured.
func (r *rawPusher) loop(ctx context.Context, cur *current, name string, n, users int, procs []proc) (Row, error) {
	p := cur.begin(phasePrefix(name), 0)
	defer cur.end()
	var m *meter
	var err error
	if procs != nil {
		if m, err = startMeter(procs...); err != nil {
			return Row{}, err
		}
	}
	var next, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	tick := time.NewTicker(pushLatency / time.Duration(r.inflight))
	defer tick.Stop()
	for range r.inflight {
		select {
		case <-tick.C:
		case <-ctx.Done():
			wg.Wait()
			return Row{}, ctx.Err()
		}
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n) && ctx.Err() == nil; i = next.Add(1) {
				_, id := p.id(time.Now())
				if err := rawPush(r.client, r.endpoint, userName(int(i)%users), id); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return Row{}, fmt.Errorf("%s: %d requests failed: %w", name, failed.Load(), *e)
	}
	if err := p.drain(ctx, 1, 10*time.Second); err != nil {
		return Row{}, err
	}
	if m == nil {
		return Row{}, nil
	}
	return p.row(name, true, m)
}

// rawPush sends one message as the push channel would for user's device.
func rawPush(client *http.Client, endpoint, user, id string) error {
	var b bytes.Buffer
	b.Grow(700)
	b.WriteString(`{"message":{"token":"tok-`)
	b.WriteString(user)
	b.WriteString(`","notification":{"title":"Error","body":"Failed to set the task! Contact not found!"},"data":{"type":"add_error","id":"`)
	b.WriteString(id)
	b.WriteString(`","click":"https://crm.example.com/contacts/list/?term=4951234567"},`)
	b.WriteString(`"android":{"priority":"high","collapse_key":"k","notification":{"channel_id":"errors","sound":"default","tag":"k"}},`)
	b.WriteString(`"apns":{"headers":{"apns-priority":"10","apns-push-type":"alert","apns-collapse-id":"k"},"payload":{"aps":{"sound":"default"}}}}}`)
	req, err := http.NewRequest(http.MethodPost, endpoint, &b)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+fcmStaticToken)
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
}

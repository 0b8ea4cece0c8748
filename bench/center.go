package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/events"
)

// center: what a tab asks the notification center for, over the dispatcher's HTTP API
// with a user token, for a user holding 100,000 items: the newest page of 50, the
// unread count, and marking one item read; also the unread count of a user holding
// one item (a count that scanned would grow with the items). The baseline is one raw
// JetStream direct get of the same number of messages (a batch of 50 from the user's
// subject) from the harness, on the same server.
//
// Defaults: 100,000 items (--items), 2,000 operations of each kind per run (--events).

const (
	centerUser  = "u0" // holds the items
	centerSmall = "u1" // holds one item
)

func runCenter(ctx context.Context, h *harness) (*Result, error) {
	items := or(h.o.Items, 100_000)
	ops := or(h.o.Events, 2000)
	if items < 2 || items > center.MaxMaxItems {
		return nil, fmt.Errorf("--items must be 2 to %d", center.MaxMaxItems)
	}
	d, err := h.startDaemon(ctx, "", map[string]string{"NOTIFY_CENTER_MAX_ITEMS": strconv.Itoa(max(items, 1000))})
	if err != nil {
		return nil, err
	}
	defer d.stop()
	nc, err := h.connect(d.nats, "bench-center")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	api := &centerAPI{base: d.http, client: &http.Client{Timeout: 30 * time.Second}, token: h.token(centerUser), small: h.token(centerSmall)}
	h.logf("seeding %s items", thousands(float64(items)))
	start := time.Now()
	if err := seedCenter(ctx, nc, api, items); err != nil {
		return nil, err
	}
	h.logf("seeded in %s", time.Since(start).Round(time.Millisecond))
	stream, err := js.Stream(ctx, center.StreamName)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	directGet := "$JS.API.DIRECT.GET." + center.StreamName
	subject := center.SubjectPrefix + "." + benchAccount + "." + centerUser

	procs := []proc{{"dispatcher", d.pid}, self()}
	marked := 0
	runs, err := h.repeat(ctx, func(ctx context.Context, _ int) ([]Row, error) {
		cases := []struct {
			name     string
			baseline bool
			op       func() error
		}{
			{"list newest 50", false, func() error { return api.list(50) }},
			{"unread", false, func() error { return api.unread(api.token, int64(items-marked)) }},
			{"unread, 1 item", false, func() error { return api.unread(api.small, 1) }},
			{"mark one read", false, func() error {
				marked++
				return api.markRead(fmt.Sprintf("seed-%d", items-1-marked))
			}},
			{"direct get 50", true, func() error { return rawDirectGet(ctx, nc, directGet, subject, last-60, 50) }},
		}
		var rows []Row
		for _, c := range cases {
			h.logf("%s", c.name)
			r, err := h.sequential(ctx, c.name, c.baseline, procs, d.pid, ops, c.op)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.name, err)
			}
			rows = append(rows, r)
		}
		return rows, d.alive()
	})
	if err != nil {
		return nil, err
	}
	rows := medianRows(runs)
	compare(rows, "list newest 50", "direct get 50")
	var bars []Bar
	const text = "center: list and unread count p99 at most 5 ms with 100,000 items for the user; unread count does not scan"
	for _, name := range []string{"list newest 50", "unread"} {
		if r := row(rows, name); r != nil {
			bars = append(bars, atMost(text, name, "p99 <= 5 ms",
				fmt.Sprintf("%s: p99 %s ms with %s items", name, short(r.Latency.P99), thousands(float64(items))), r.Latency.P99, 5))
		}
	}
	if big, small := row(rows, "unread"), row(rows, "unread, 1 item"); big != nil && small != nil && small.Latency.P50 > 0 {
		ratio := big.Latency.P50 / small.Latency.P50
		bars = append(bars, atMost(text, "unread", "no scan",
			fmt.Sprintf("unread count p50 %s ms with %s items against %s ms with 1 item (x%.2f; a scan would grow with the items)", short(big.Latency.P50), thousands(float64(items)), short(small.Latency.P50), ratio),
			ratio, 1.5))
	}
	notes := []string{
		fmt.Sprintf("seeding: %s stored items published straight to the center's stream (center.bench.u0, as a writer that crashed before folding them in would leave them), then one add_error through the dispatcher, whose center folds them all in through the code of every add; the run starts once GET /api/v1/center/unread says %s", thousands(float64(items-1)), thousands(float64(items))),
		"target rows: one HTTP/1.1 client with keep-alive calling the dispatcher's API one request at a time (GET /api/v1/center?limit=50, GET /api/v1/center/unread, POST /api/v1/center/read with one id), each answer decoded and checked; per s is operations per second of that one client",
		"baseline: the harness's own batched direct get of the newest 50 messages of the user's subject ($JS.API.DIRECT.GET.NOTIFY_CENTER, next_by_subj, batch 50), one at a time; no HTTP, no token, no state record",
		"\"no scan\" compares the unread count of the user holding every item with that of a user holding one item (bar: at most 1.5 times)",
	}
	if items != 100_000 {
		notes = append(notes, "the bars are defined at 100,000 items; this run used another size")
	}
	return &Result{
		Title:  fmt.Sprintf("the notification center of a user holding %s items", thousands(float64(items))),
		Params: map[string]string{"items": fmt.Sprint(items), "ops": fmt.Sprint(ops)},
		Rows:   rows, Bars: bars, Notes: notes, Runs: runs,
	}, nil
}

// sequential runs op n times, one after another, and measures each call.
func (h *harness) sequential(ctx context.Context, name string, baseline bool, procs []proc, pid, n int, op func() error) (Row, error) {
	rec := &Recorder{}
	m, err := startMeter(procs...)
	if err != nil {
		return Row{}, err
	}
	stopProfile := func() {}
	if !baseline {
		stopProfile = h.profile(name, proc{"dispatcher", pid})
	}
	start := time.Now()
	for range n {
		if ctx.Err() != nil {
			stopProfile()
			return Row{}, ctx.Err()
		}
		t := time.Now()
		if err := op(); err != nil {
			stopProfile()
			return Row{}, err
		}
		rec.Add(time.Since(t))
	}
	took := time.Since(start)
	stopProfile()
	procFigures, err := m.stop(int64(n))
	if err != nil {
		return Row{}, err
	}
	return Row{Name: name, Baseline: baseline, Events: int64(n), Seconds: took.Seconds(), Throughput: float64(n) / took.Seconds(),
		Latency: rec.Summary(), Procs: procFigures}, nil
}

// centerAPI calls the dispatcher's center API as a tab does.
type centerAPI struct {
	base   string
	client *http.Client
	token  string // the user holding the items
	small  string // the user holding one item
}

func (a *centerAPI) do(method, path, tok string, body []byte, into any) error {
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, into)
}

func (a *centerAPI) list(limit int) error {
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := a.do(http.MethodGet, "/api/v1/center?limit="+strconv.Itoa(limit), a.token, nil, &page); err != nil {
		return err
	}
	if len(page.Items) != limit {
		return fmt.Errorf("a page of %d items, want %d", len(page.Items), limit)
	}
	return nil
}

func (a *centerAPI) unreadCount(tok string) (int64, error) {
	var u struct {
		Unread int64 `json:"unread"`
	}
	err := a.do(http.MethodGet, "/api/v1/center/unread", tok, nil, &u)
	return u.Unread, err
}

func (a *centerAPI) unread(tok string, want int64) error {
	n, err := a.unreadCount(tok)
	if err == nil && n != want {
		err = fmt.Errorf("unread %d, want %d", n, want)
	}
	return err
}

func (a *centerAPI) markRead(id string) error {
	var u struct {
		Unread int64 `json:"unread"`
	}
	return a.do(http.MethodPost, "/api/v1/center/read", a.token, []byte(`{"ids":["`+id+`"]}`), &u)
}

// centerItem is the body of a stored center item (the center's own format, see
// channels/center/item.go): the seeding writes it as the center would.
type centerItem struct {
	ID        string          `json:"id"`
	Type      events.Type     `json:"type"`
	CreatedAt int64           `json:"created_at"`
	Payload   json.RawMessage `json:"payload"`
	Links     center.Links    `json:"links"`
}

// durableBody is the add_error every durable event of the harness carries.
const durableBody = `{"header":"Error","text":"Failed to set the task! Contact not found!","link":"/contacts/list/?term=4951234567"}`

// seedCenter gives centerUser items items and centerSmall one: items-1 stored
// directly, then one add_error each through the dispatcher, whose center folds the
// stored ones in; it returns once the API counts them all.
func seedCenter(ctx context.Context, nc *nats.Conn, api *centerAPI, items int) error {
	ev, _, err := events.NewEvent(events.Address{Account: benchAccount, User: centerUser, Type: events.AddError}, "seed", []byte(durableBody), time.Now())
	if err != nil {
		return err
	}
	pub, err := newAsyncPublisher(nc)
	if err != nil {
		return err
	}
	now := time.Now().Unix()
	subject := center.SubjectPrefix + "." + benchAccount + "." + centerUser
	for i := range items - 1 {
		body, err := json.Marshal(centerItem{ID: fmt.Sprintf("seed-%d", i), Type: events.AddError, CreatedAt: now, Payload: ev.Body,
			Links: center.Links{Click: "https://crm.example.com/contacts/list/?term=4951234567"}})
		if err != nil {
			return err
		}
		if err := pub.publish(&nats.Msg{Subject: subject, Data: body}); err != nil {
			return err
		}
	}
	for _, user := range []string{centerUser, centerSmall} {
		m := nats.NewMsg(events.SubjectPrefix + "." + benchAccount + "." + user + "." + string(events.AddError))
		m.Data = []byte(durableBody)
		m.Header.Set(jetstream.MsgIDHeader, "seed-trigger-"+user)
		if err := pub.publish(m); err != nil {
			return err
		}
	}
	if err := pub.wait(ctx); err != nil {
		return err
	}
	want := map[string]int64{api.token: int64(items), api.small: 1}
	var got int64
	return waitFor(ctx, 250*time.Millisecond, 2*time.Minute, func() bool {
		for tok, n := range want {
			if c, err := api.unreadCount(tok); err != nil || c != n {
				got = c
				return false
			}
		}
		return true
	}, func() int64 { return got })
}

// rawDirectGet is one batched direct get: n messages of subject from seq on, read
// until the server's end of batch.
func rawDirectGet(ctx context.Context, nc *nats.Conn, api, subject string, seq uint64, n int) error {
	replies := make(chan *nats.Msg, n+1)
	inbox := nc.NewInbox()
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	req := fmt.Appendf(nil, `{"seq":%d,"next_by_subj":%q,"batch":%d}`, seq, subject, n)
	if err := nc.PublishRequest(api, inbox, req); err != nil {
		return err
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	got := 0
	for {
		select {
		case m := <-replies:
			switch status := m.Header.Get("Status"); status {
			case "":
				got++
			case "204":
				if got != n {
					return fmt.Errorf("direct get: %d messages, want %d", got, n)
				}
				return nil
			default:
				return fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
			}
		case <-timeout.C:
			return errors.New("direct get: no end of batch after 10s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

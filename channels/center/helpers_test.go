package center_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
)

// wait bounds every wait for something that should happen at once.
const wait = 10 * time.Second

const baseURL = "https://crm.example.com"

// rig is a center store on a real JetStream server, with a settable clock.
type rig struct {
	nats  *natstest.Server
	nc    *nats.Conn
	store *center.Store
	clock *clock
}

// clock is a settable Now, for created_at and age retention.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newRig starts NATS and a store; adjust may change the config first.
func newRig(t *testing.T, adjust func(*center.Config)) *rig {
	t.Helper()
	r := &rig{nats: natstest.Start(t), clock: &clock{t: time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)}}
	r.nc = r.nats.Conn(t)
	r.store = r.newStore(t, r.nc, adjust)
	return r
}

// newStore is a store on nc. The rig's store shares the test's connection, so the
// frames it publishes and the test's markers (see quiet) keep their order.
func (r *rig) newStore(t *testing.T, nc *nats.Conn, adjust func(*center.Config)) *center.Store {
	t.Helper()
	cfg := center.Config{Conn: nc, BaseURL: baseURL, Now: r.clock.Now}
	if adjust != nil {
		adjust(&cfg)
	}
	s, err := center.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("center.New: %v", err)
	}
	return s
}

// event validates body as a typ payload, as the router does before a channel sees it.
func event(t *testing.T, account, user, id string, typ events.Type, body string) *events.Event {
	t.Helper()
	p, _, err := events.Validate(typ, []byte(body), time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("validate %s: %v", body, err)
	}
	canonical, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return &events.Event{ID: id, Address: events.Address{Account: account, User: user, Type: typ}, Payload: p, Body: canonical}
}

// add delivers an add_error with id to account/user through the channel.
func (r *rig) add(t *testing.T, account, user, id string) {
	t.Helper()
	r.send(t, r.store, event(t, account, user, id, events.AddError, `{"text":"`+id+`"}`))
}

func (r *rig) send(t *testing.T, s *center.Store, ev *events.Event) {
	t.Helper()
	if err := s.Send(t.Context(), &channels.Delivery{Event: ev, User: ev.User, Attempt: 1}); err != nil {
		t.Fatalf("send %s: %v", ev.ID, err)
	}
}

// page lists one page and decodes its items.
func (r *rig) page(t *testing.T, account, user string, before uint64, limit int) (items []center.Item, next uint64, unread int64) {
	t.Helper()
	raw, next, unread, err := r.store.List(t.Context(), account, user, before, limit)
	if err != nil {
		t.Fatalf("list %s/%s before %d: %v", account, user, before, err)
	}
	items = make([]center.Item, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &items[i]); err != nil {
			t.Fatalf("item %s: %v", b, err)
		}
	}
	return items, next, unread
}

// all walks every page of limit items and returns the items, newest first.
func (r *rig) all(t *testing.T, account, user string, limit int) []center.Item {
	t.Helper()
	var out []center.Item
	for before := uint64(0); ; {
		items, next, _ := r.page(t, account, user, before, limit)
		out = append(out, items...)
		if next == 0 {
			return out
		}
		before = next
	}
}

func ids(items []center.Item) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return strings.Join(out, ",")
}

func (r *rig) unread(t *testing.T, account, user string) int64 {
	t.Helper()
	n, err := r.store.Unread(t.Context(), account, user)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkState fails unless the user's state agrees with the stream.
func (r *rig) checkState(t *testing.T, account, user string) {
	t.Helper()
	if err := r.store.CheckState(t.Context(), account, user); err != nil {
		t.Fatalf("state of %s/%s: %v", account, user, err)
	}
}

// expectCenters checks, for each account/user pair, the ids of its items newest
// first (want, keyed "account/user"), its unread count and its stored state.
func (r *rig) expectCenters(t *testing.T, users [][2]string, want map[string]string, wantUnread map[string]int64) {
	t.Helper()
	for _, u := range users {
		key := u[0] + "/" + u[1]
		if got := ids(r.all(t, u[0], u[1], 50)); got != want[key] {
			t.Errorf("%s has %s, want %s", key, got, want[key])
		}
		if n := r.unread(t, u[0], u[1]); n != wantUnread[key] {
			t.Errorf("%s unread %d, want %d", key, n, wantUnread[key])
		}
		r.checkState(t, u[0], u[1])
	}
}

// flush waits until the frames the rig's store published have reached the server.
func (r *rig) flush(t *testing.T) {
	t.Helper()
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// frame is any center frame.
type frame struct {
	Kind   string          `json:"kind"`
	Op     string          `json:"op"`
	Item   json.RawMessage `json:"item"`
	IDs    []string        `json:"ids"`
	All    bool            `json:"all"`
	Seq    uint64          `json:"seq"`
	Unread int64           `json:"unread"`
}

func (f frame) itemID(t *testing.T) string {
	t.Helper()
	var it center.Item
	if err := json.Unmarshal(f.Item, &it); err != nil {
		t.Fatalf("item %s: %v", f.Item, err)
	}
	return it.ID
}

// tabs subscribes to the frames for account/user's tabs.
func (r *rig) tabs(t *testing.T, account, user string) <-chan frame {
	t.Helper()
	ch := make(chan frame, 1024)
	sub, err := r.nc.Subscribe(channels.UISubject(account, user), func(m *nats.Msg) {
		var f frame
		if err := json.Unmarshal(m.Data, &f); err != nil {
			t.Errorf("frame %s: %v", m.Data, err)
		}
		ch <- f
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

func nextFrame(t *testing.T, ch <-chan frame) frame {
	t.Helper()
	select {
	case f := <-ch:
		return f
	case <-time.After(wait):
		t.Fatal("no frame")
		return frame{}
	}
}

// quiet proves no frame is pending on ch: it publishes a marker to the subject and
// expects it to be the next frame.
func (r *rig) quiet(t *testing.T, ch <-chan frame, account, user string) {
	t.Helper()
	if err := r.nc.Publish(channels.UISubject(account, user), []byte(`{"kind":"marker"}`)); err != nil {
		t.Fatal(err)
	}
	if f := nextFrame(t, ch); f.Kind != "marker" {
		t.Fatalf("unexpected frame %+v", f)
	}
}

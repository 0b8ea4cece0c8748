package center

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
)

// benchItems is how many items the benchmarked user holds: PERFORMANCE.md's bar.
const benchItems = 100_000

// BenchmarkCenter measures what a tab asks for, against one user holding
// benchItems items: the newest page of 50, a page deep in the list, the unread
// count, marking one item read, and as the baseline a raw JetStream direct get of 50
// messages. Each reports its p99 latency (p99-ms) besides ns/op.
//
//	go test -run '^$' -bench Center -benchtime 2000x ./channels/center/
func BenchmarkCenter(b *testing.B) {
	s, u := seedCenter(b, benchItems)
	ctx := b.Context()
	_, _, unread, err := s.List(ctx, u.account, u.user, 0, 50)
	if err != nil || unread != benchItems {
		b.Fatalf("seeded %d unread (%v), want %d", unread, err, benchItems)
	}
	st, _, err := s.load(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	value, _ := st.MarshalBinary()
	b.Logf("state record: %d bytes, %d blocks", len(value), len(st.blocks))
	middle := st.blocks[len(st.blocks)/2].first + 7
	marked := 0

	cases := []struct {
		name string
		op   func() error
	}{
		{"list_newest_50", func() error {
			items, _, _, err := s.List(ctx, u.account, u.user, 0, 50)
			return check(len(items), 50, err)
		}},
		{"list_page_50_at_half", func() error {
			items, _, _, err := s.List(ctx, u.account, u.user, middle, 50)
			return check(len(items), 50, err)
		}},
		{"unread", func() error {
			n, err := s.Unread(ctx, u.account, u.user)
			return check(int(n), benchItems, err)
		}},
		{"mark_read_one", func() error {
			marked++
			n, err := s.MarkRead(ctx, u.account, u.user, []string{"call-" + strconv.Itoa(marked)})
			return check(int(n), benchItems-marked, err)
		}},
		{"baseline_direct_get_50", func() error {
			msgs, _, err := s.getBatch(ctx, u.subject(), middle, 50)
			return check(len(msgs), 50, err)
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			took := make([]time.Duration, 0, 4096)
			for b.Loop() {
				start := time.Now()
				if err := c.op(); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func check(got, want int, err error) error {
	if err == nil && got != want {
		err = fmt.Errorf("got %d, want %d", got, want)
	}
	return err
}

// seedCenter stores n items for one user quickly: the messages go to the stream with
// asynchronous publishes, as a crashed writer would leave them, and one catch-up
// folds them all in, through the same code as every add.
func seedCenter(tb testing.TB, n int) (*Store, user) {
	tb.Helper()
	srv := natstest.Start(tb)
	s, err := New(tb.Context(), Config{Conn: srv.Conn(tb), BaseURL: "https://crm.example.com", MaxItems: n})
	if err != nil {
		tb.Fatal(err)
	}
	u := user{account: "acme", user: "42"}
	js, err := jetstream.New(srv.Conn(tb))
	if err != nil {
		tb.Fatal(err)
	}
	body := `{"header":"Incoming call","text":"Call from +1 (415) 523-7743","date":1714566795,"from":"Jeremy Watts","to":"Jason Nash","element":{"id":18221265,"type":"contact"},"duration":250}`
	payload, _, err := events.Validate(events.AddCall, []byte(body), time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	created := s.cfg.Now().Unix()
	for i := range n {
		ev := &events.Event{ID: "call-" + strconv.Itoa(i), Address: events.Address{Account: u.account, User: u.user, Type: events.AddCall}, Payload: payload, Body: []byte(body)}
		item, err := s.encodeItem(ev, created)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := js.PublishAsync(u.subject(), item); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("seeding publishes did not complete")
	}
	ctx, cancel := context.WithTimeout(tb.Context(), 5*time.Minute)
	defer cancel()
	stream, err := s.js.Stream(ctx, StreamName)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.catchUp(ctx, u, info.State.LastSeq, nil); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("seeded %d items in %s", n, time.Since(start).Round(time.Millisecond))
	return s, u
}

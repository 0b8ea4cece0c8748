package center

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
)

// BenchmarkCenterAdd measures an add, the write path of every add_error and
// add_call: to one user, and round robin over many users whose items interleave in
// the stream, as a busy account's do. Each reports its p99 latency (p99-ms).
//
//	go test -run '^$' -bench CenterAdd -benchtime 5000x ./channels/center/
func BenchmarkCenterAdd(b *testing.B) {
	for _, users := range []int{1, 1000} {
		b.Run("users_"+strconv.Itoa(users), func(b *testing.B) {
			srv := natstest.Start(b)
			s, err := New(b.Context(), Config{Conn: srv.Conn(b), BaseURL: "https://crm.example.com", MaxItems: MaxMaxItems})
			if err != nil {
				b.Fatal(err)
			}
			body := []byte(`{"text":"Deal lost","date":1714566795}`)
			payload, _, err := events.Validate(events.AddError, body, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			add := func(u user) error {
				n++
				ev := &events.Event{ID: "ev-" + strconv.Itoa(n), Address: events.Address{Account: u.account, User: u.user, Type: events.AddError}, Payload: payload, Body: body}
				item, err := s.encodeItem(ev, s.cfg.Now().Unix())
				if err != nil {
					return err
				}
				return s.add(b.Context(), u, item)
			}
			us := make([]user, users)
			for i := range us {
				us[i] = user{account: "acme", user: strconv.Itoa(i)}
				if err := add(us[i]); err != nil { // every user has an item and a state
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			took := make([]time.Duration, 0, 4096)
			i := 0
			for b.Loop() {
				start := time.Now()
				if err := add(us[i%users]); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				i++
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

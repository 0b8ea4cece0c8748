package center_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels/center"
)

// model is what a user's center should hold: a list, oldest first.
type model struct {
	items []modelItem
	known map[string]bool // every id ever stored: a redelivery never stores it again
}

type modelItem struct {
	id      string
	created int64
	read    bool
}

func (m *model) find(id string) int {
	return slices.IndexFunc(m.items, func(it modelItem) bool { return it.id == id })
}

func (m *model) unread() int64 {
	n := int64(0)
	for _, it := range m.items {
		if !it.read {
			n++
		}
	}
	return n
}

// evict applies retention as the store does on every add and sweep.
func (m *model) evict(maxItems int, cutoff int64) {
	for len(m.items) > 0 && (len(m.items) > maxItems || m.items[0].created < cutoff) {
		m.items = m.items[1:]
	}
}

// TestCountsMatchAModel runs seeded random sequences of adds, redeliveries, reads,
// deletes and retention sweeps over two users of one account and one of another,
// and after every step compares the unread counts with a simple model; every few
// steps it also compares the full listing and checks the state record against the
// stream.
func TestCountsMatchAModel(t *testing.T) {
	const (
		maxItems = 20
		maxAge   = 6 * time.Hour
		steps    = 400
	)
	users := [][2]string{{"acme", "42"}, {"acme", "43"}, {"globex", "42"}}
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run("seed "+strconv.FormatUint(seed, 10), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(c *center.Config) { c.MaxItems = maxItems; c.MaxAge = maxAge })
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			models := make([]*model, len(users))
			for i := range models {
				models[i] = &model{known: map[string]bool{}}
			}
			ctx := t.Context()
			cutoff := func() int64 { return r.clock.Now().Add(-maxAge).Unix() }
			// someID is an id the user has (or had), one of another user, or a new one.
			someID := func(m *model) string {
				switch k := rng.IntN(10); {
				case k < 7 && len(m.items) > 0:
					return m.items[rng.IntN(len(m.items))].id
				case k < 9:
					return "e" + strconv.Itoa(rng.IntN(60)) // maybe stored, maybe another user's
				default:
					return "never"
				}
			}

			for step := range steps {
				ui := rng.IntN(len(users))
				u, m := users[ui], models[ui]
				var what string
				switch op := rng.IntN(100); {
				case op < 45: // add, or redeliver an id stored before (maybe gone since)
					id := "e" + strconv.Itoa(rng.IntN(60))
					what = "add " + id
					r.add(t, u[0], u[1], id)
					if !m.known[id] {
						m.known[id] = true
						m.items = append(m.items, modelItem{id: id, created: r.clock.Now().Unix()})
					}
					m.evict(maxItems, cutoff())
				case op < 65:
					var pick []string
					for range 1 + rng.IntN(4) {
						pick = append(pick, someID(m))
					}
					what = fmt.Sprintf("read %v", pick)
					n, err := r.store.MarkRead(ctx, u[0], u[1], pick)
					if err != nil {
						t.Fatal(err)
					}
					for _, id := range pick {
						if i := m.find(id); i >= 0 {
							m.items[i].read = true
						}
					}
					if n != m.unread() {
						t.Fatalf("step %d (%s): MarkRead says unread %d, want %d", step, what, n, m.unread())
					}
				case op < 70:
					what = "read all"
					if n, err := r.store.MarkAllRead(ctx, u[0], u[1]); err != nil || n != 0 {
						t.Fatalf("step %d: MarkAllRead = %d, %v", step, n, err)
					}
					for i := range m.items {
						m.items[i].read = true
					}
				case op < 88:
					id := someID(m)
					what = "delete " + id
					found, err := r.store.Delete(ctx, u[0], u[1], id)
					if err != nil {
						t.Fatal(err)
					}
					i := m.find(id)
					if found != (i >= 0) {
						t.Fatalf("step %d (%s): found %v, model has it at %d", step, what, found, i)
					}
					if i >= 0 {
						m.items = slices.Delete(m.items, i, i+1)
					}
				default:
					d := time.Duration(rng.IntN(120)) * time.Minute
					what = "sweep after " + d.String()
					r.clock.Advance(d)
					if err := r.store.Sweep(ctx); err != nil {
						t.Fatal(err)
					}
					for _, mm := range models {
						mm.evict(maxItems, cutoff())
					}
				}

				for i, uu := range users {
					if n := r.unread(t, uu[0], uu[1]); n != models[i].unread() {
						t.Fatalf("step %d (%s on %s/%s): %s/%s unread %d, want %d", step, what, u[0], u[1], uu[0], uu[1], n, models[i].unread())
					}
				}
				if step%25 == 0 || step == steps-1 {
					for i, uu := range users {
						compareListing(t, r, uu, models[i], 1+rng.IntN(9))
						r.checkState(t, uu[0], uu[1])
					}
				}
			}
		})
	}
}

func compareListing(t *testing.T, r *rig, u [2]string, m *model, limit int) {
	t.Helper()
	got := r.all(t, u[0], u[1], limit)
	var want []string
	for i := len(m.items) - 1; i >= 0; i-- {
		want = append(want, fmt.Sprintf("%s:%v", m.items[i].id, m.items[i].read))
	}
	var have []string
	for _, it := range got {
		have = append(have, fmt.Sprintf("%s:%v", it.ID, it.Read))
	}
	if !slices.Equal(have, want) {
		t.Fatalf("%s/%s lists\n%v\nwant\n%v", u[0], u[1], have, want)
	}
}

package center

import (
	"context"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
)

// These tests stop a write half-way, as a crash would, and check that the next
// delivery of the same event (JetStream redelivers what was not acknowledged) or the
// next write of the user leaves exactly one item and exact counts.

func newCrashStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(t.Context(), Config{Conn: natstest.Start(t).Conn(t), BaseURL: "https://crm.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func crashEvent(t *testing.T, id string) *events.Event {
	t.Helper()
	body := `{"text":"` + id + `","date":1714566795}`
	p, _, err := events.Validate(events.AddError, []byte(body), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &events.Event{ID: id, Address: events.Address{Account: "acme", User: "42", Type: events.AddError}, Payload: p, Body: []byte(body)}
}

func deliver(t *testing.T, s *Store, ev *events.Event) {
	t.Helper()
	if err := s.Send(t.Context(), &channels.Delivery{Event: ev, User: ev.User, Attempt: 2}); err != nil {
		t.Fatal(err)
	}
}

// publishOnly does the first write of an add: the item's message, nothing else.
func publishOnly(t *testing.T, s *Store, u user, ev *events.Event) uint64 {
	t.Helper()
	body, err := s.encodeItem(ev, s.cfg.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	ack, err := s.js.Publish(t.Context(), u.subject(), body)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func TestCrashBetweenWrites(t *testing.T) {
	u := user{account: "acme", user: "42"}
	cases := []struct {
		name string
		// crash leaves the store as a writer that stopped part-way through ev.
		crash func(t *testing.T, s *Store, ev *events.Event)
		// then runs before the redelivery: another event folds in what was left.
		then func(t *testing.T, s *Store)
		want int64
	}{
		{"after the item's message", func(t *testing.T, s *Store, ev *events.Event) {
			publishOnly(t, s, u, ev)
		}, nil, 1},
		{"after the id was claimed", func(t *testing.T, s *Store, ev *events.Event) {
			seq := publishOnly(t, s, u, ev)
			if _, err := s.claimID(t.Context(), u.idKey(ev.ID), seq); err != nil {
				t.Fatal(err)
			}
		}, nil, 1},
		{"after the message, folded in by another add", func(t *testing.T, s *Store, ev *events.Event) {
			publishOnly(t, s, u, ev)
		}, func(t *testing.T, s *Store) {
			deliver(t, s, crashEvent(t, "other"))
		}, 2},
		{"after the state write (no acknowledgement)", func(t *testing.T, s *Store, ev *events.Event) {
			deliver(t, s, ev)
		}, nil, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newCrashStore(t)
			ev := crashEvent(t, "call-1")
			tc.crash(t, s, ev)
			if tc.then != nil {
				tc.then(t, s)
			}
			deliver(t, s, ev) // the redelivery
			items, _, unread, err := s.List(t.Context(), u.account, u.user, 0, 50)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(items)) != tc.want || unread != tc.want {
				t.Errorf("%d items, unread %d; want %d", len(items), unread, tc.want)
			}
			if err := s.CheckState(t.Context(), u.account, u.user); err != nil {
				t.Error(err)
			}
		})
	}
}

// A crash between counting an item out (the state write) and deleting its message
// leaves the message in the stream: pages skip it, and the next write deletes it.
func TestCrashBeforeTheMessageIsDeleted(t *testing.T) {
	ctx := t.Context()
	s := newCrashStore(t)
	u := user{account: "acme", user: "42"}
	deliver(t, s, crashEvent(t, "keep"))
	deliver(t, s, crashEvent(t, "gone"))
	refs, err := s.lookup(ctx, u, []string{"gone"})
	if err != nil || len(refs) != 1 {
		t.Fatalf("lookup: %v %v", refs, err)
	}
	seq := refs[0].seq
	if _, err := s.update(ctx, u, func(_ context.Context, st *state) (bool, error) {
		st.remove(seq)
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}

	items, _, unread, err := s.List(ctx, u.account, u.user, 0, 50)
	if err != nil || len(items) != 1 || unread != 1 {
		t.Fatalf("after the crash: %d items, unread %d, %v", len(items), unread, err)
	}
	if found, err := s.Delete(ctx, u.account, u.user, "gone"); err != nil || found {
		t.Errorf("Delete of the counted-out item = %v, %v", found, err)
	}
	if err := s.CheckState(ctx, u.account, u.user); err != nil {
		t.Fatal(err)
	}

	deliver(t, s, crashEvent(t, "next"))
	if m, err := s.leaderMsg(ctx, seq); m != nil || err != nil {
		t.Errorf("the message is still there after the next write: %v", err)
	}
	st, _, err := s.load(ctx, u)
	if err != nil || len(st.deleting) != 0 || st.count != 2 || st.unread != 2 {
		t.Errorf("state %+v, %v", st, err)
	}
}

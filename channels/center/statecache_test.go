package center_test

import (
	"testing"

	"github.com/kommo-notify/notify/events"
)

// A store starts a write from the state it last wrote; writes of another store (another
// dispatcher) in between make that copy stale, and the counts must come out exact all
// the same: adds, marks and deletes, each on whichever store remembers the older state.
func TestStoresWritingOneUserInTurnKeepExactCounts(t *testing.T) {
	r := newRig(t, nil)
	other := r.newStore(t, r.nats.Conn(t), nil)
	const account, user = "acme", "42"
	stores := []struct {
		name string
		send func(id string)
	}{
		{"rig", func(id string) { r.add(t, account, user, id) }},
		{"other", func(id string) {
			r.send(t, other, event(t, account, user, id, events.AddError, `{"text":"`+id+`"}`))
		}},
	}
	want := int64(0)
	for i, id := range []string{"a", "b", "c", "d", "e", "f"} {
		stores[i%2].send(id)
		want++
		if got := r.unread(t, account, user); got != want {
			t.Fatalf("after %s through %s: unread %d, want %d", id, stores[i%2].name, got, want)
		}
	}
	// The rig's store last wrote before other's add of f: its copy is stale. A mark on
	// it that its copy says changes nothing must still be checked on a fresh read.
	if n, err := r.store.MarkRead(t.Context(), account, user, []string{"f"}); err != nil || n != want-1 {
		t.Fatalf("mark f read on the stale store: unread %d (%v), want %d", n, err, want-1)
	}
	if n, err := other.MarkRead(t.Context(), account, user, []string{"a"}); err != nil || n != want-2 {
		t.Fatalf("mark a read on other: unread %d (%v), want %d", n, err, want-2)
	}
	if ok, err := r.store.Delete(t.Context(), account, user, "b"); err != nil || !ok {
		t.Fatalf("delete b: %v %v", ok, err)
	}
	// A redelivery through either store stays one item.
	r.add(t, account, user, "e")
	r.send(t, other, event(t, account, user, "c", events.AddError, `{"text":"c"}`))
	if got, want := ids(r.all(t, account, user, 2)), "f,e,d,c,a"; got != want {
		t.Errorf("items %s, want %s", got, want)
	}
	if got := r.unread(t, account, user); got != 3 {
		t.Errorf("unread %d, want 3 (c, d and e)", got)
	}
	r.checkState(t, account, user)
}

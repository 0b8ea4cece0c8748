package center_test

import (
	"testing"

	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/events"
)

// An add publishes its item on the condition that the user's newest message is the
// one its state last folded in; when the stream accepts it, the fold reads nothing
// back. These tests count the direct gets the server answers for the center's
// stream (the read that made the server walk past other users' messages) and check
// the counts whichever way an add goes.

// directGets returns a counter of the requests sent so far to the center stream's
// direct get subject, by any connection. The rig's store shares the probe's
// connection, and a request reaches the probe before its reply reaches the
// requester, so a flush makes the count exact.
func (r *rig) directGets(t *testing.T) func() int {
	t.Helper()
	sub, err := r.nc.SubscribeSync("$JS.API.DIRECT.GET." + center.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	r.flush(t)
	return func() int {
		t.Helper()
		r.flush(t)
		n, _, err := sub.Pending()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

func TestAddsReadNothingBack(t *testing.T) {
	r := newRig(t, nil)
	gets := r.directGets(t)
	r.add(t, "acme", "42", "first") // a user without state: nothing expected on the subject
	if n := gets(); n != 0 {
		t.Fatalf("the first add of a user made %d direct gets, want 0", n)
	}
	r.page(t, "acme", "42", 0, 10)
	if gets() == 0 {
		t.Fatal("the probe did not see a page's direct get")
	}
	before := gets()

	users := [][2]string{{"acme", "42"}, {"acme", "43"}, {"globex", "42"}}
	tabs := r.tabs(t, "acme", "43")
	for round := range 4 {
		for _, u := range users { // interleaved in the stream
			r.add(t, u[0], u[1], u[0]+"-"+u[1]+"-"+string(rune('a'+round)))
		}
		if f := nextFrame(t, tabs); f.Op != center.OpAdded || f.itemID(t) != "acme-43-"+string(rune('a'+round)) || f.Unread != int64(round+1) {
			t.Fatalf("frame %+v, want acme-43-%c added with unread %d", f, 'a'+round, round+1)
		}
	}
	// Another store, as another dispatcher would be, remembers nothing: it reads the
	// state first and publishes on the same condition.
	other := r.newStore(t, r.nats.Conn(t), nil)
	r.send(t, other, event(t, "acme", "42", "from-other", events.AddError, `{"text":"o"}`))
	if n := gets() - before; n != 0 {
		t.Errorf("%d direct gets for the adds, want 0", n)
	}

	want := map[string]string{
		"acme/42":   "from-other,acme-42-d,acme-42-c,acme-42-b,acme-42-a,first",
		"acme/43":   "acme-43-d,acme-43-c,acme-43-b,acme-43-a",
		"globex/42": "globex-42-d,globex-42-c,globex-42-b,globex-42-a",
	}
	wantUnread := map[string]int64{"acme/42": 6, "acme/43": 4, "globex/42": 4}
	r.expectCenters(t, users, want, wantUnread)
}

// A redelivery of an event folded in already passes the publish's condition (the
// user's newest message is the state's last) like any new event: the id claim is
// what finds it out, and its message is deleted.
func TestRedeliveryOnTheConditionalPathIsNoSecondItem(t *testing.T) {
	r := newRig(t, nil)
	const account, user = "acme", "42"
	r.add(t, account, user, "a")
	r.add(t, account, user, "b")
	gets := r.directGets(t)
	r.add(t, account, user, "b") // the newest again
	if n := gets(); n != 0 {
		t.Errorf("the redelivery made %d direct gets, want 0 (it should pass the condition)", n)
	}
	if got := ids(r.all(t, account, user, 50)); got != "b,a" {
		t.Errorf("items %s, want b,a", got)
	}
	if n := r.unread(t, account, user); n != 2 {
		t.Errorf("unread %d, want 2", n)
	}
	r.checkState(t, account, user)
}

// When the condition fails the item is published without it and folded in from what
// the stream holds: slower, and just as exact.
func TestAddWhenTheNewestMessageIsNotTheStates(t *testing.T) {
	const account, user = "acme", "42"
	cases := []struct {
		name string
		// before leaves the rig's store with a, b, c folded in and a state whose last
		// is not the user's newest message, or a copy of the state that is stale.
		before func(t *testing.T, r *rig)
		want   string
		unread int64
	}{
		{"the newest item deleted", func(t *testing.T, r *rig) {
			if found, err := r.store.Delete(t.Context(), account, user, "c"); err != nil || !found {
				t.Fatalf("delete c: %v %v", found, err)
			}
		}, "d,b,a", 3},
		{"a redelivery's message deleted", func(t *testing.T, r *rig) {
			r.add(t, account, user, "a")
		}, "d,c,b,a", 4},
		{"another store wrote since", func(t *testing.T, r *rig) {
			other := r.newStore(t, r.nats.Conn(t), nil)
			r.send(t, other, event(t, account, user, "x", events.AddError, `{"text":"x"}`))
			r.send(t, other, event(t, account, user, "y", events.AddError, `{"text":"y"}`))
		}, "d,y,x,c,b,a", 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			for _, id := range []string{"a", "b", "c"} {
				r.add(t, account, user, id)
			}
			tc.before(t, r)
			gets := r.directGets(t)
			r.add(t, account, user, "d")
			if gets() == 0 {
				t.Error("the add read nothing back: its condition should have failed")
			}
			if got := ids(r.all(t, account, user, 2)); got != tc.want {
				t.Errorf("items %s, want %s", got, tc.want)
			}
			if n := r.unread(t, account, user); n != tc.unread {
				t.Errorf("unread %d, want %d", n, tc.unread)
			}
			r.checkState(t, account, user)

			// The fold made the state's last the newest message again.
			before := gets()
			r.add(t, account, user, "e")
			if n := gets() - before; n != 0 {
				t.Errorf("the next add made %d direct gets, want 0", n)
			}
			if n := r.unread(t, account, user); n != tc.unread+1 {
				t.Errorf("unread %d after e, want %d", n, tc.unread+1)
			}
			r.checkState(t, account, user)
		})
	}
}

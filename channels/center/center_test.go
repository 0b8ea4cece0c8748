package center_test

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/center"
	"github.com/kommo-notify/notify/events"
)

func TestItemShapeAndLinks(t *testing.T) {
	const recording = "https://pbx.example.com/rec/7.mp3"
	cases := []struct {
		name      string
		typ       events.Type
		body      string
		noBase    bool
		click     string
		recording string
	}{
		{"error with a path", events.AddError, `{"text":"t","link":"/contacts/list/?term=4951234567"}`, false, baseURL + "/contacts/list/?term=4951234567", ""},
		{"error with a URL", events.AddError, `{"text":"t","link":"https://other.example.com/x?y=1"}`, false, "https://other.example.com/x?y=1", ""},
		{"error without a link", events.AddError, `{"text":"t"}`, false, "", ""},
		{"error with a path, no base URL", events.AddError, `{"text":"t","link":"/leads/list/"}`, true, "", ""},
		{"call to a contact", events.AddCall, `{"text":"t","element":{"id":18221265,"type":"contact"},"link":"` + recording + `"}`, false, baseURL + "/contacts/detail/18221265", recording},
		{"call to a lead", events.AddCall, `{"text":"t","element":{"id":7,"type":"lead"}}`, false, baseURL + "/leads/detail/7", ""},
		{"call to a company", events.AddCall, `{"text":"t","element":{"id":9,"type":"company"}}`, false, baseURL + "/companies/detail/9", ""},
		{"call with a recording only", events.AddCall, `{"text":"t","link":"` + recording + `"}`, false, recording, recording},
		{"call with nothing to open", events.AddCall, `{"text":"t"}`, false, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, func(c *center.Config) {
				if tc.noBase {
					c.BaseURL = ""
				}
			})
			tabs := r.tabs(t, "acme", "42")
			ev := event(t, "acme", "42", "ev-1", tc.typ, tc.body)
			r.send(t, r.store, ev)

			items, next, unread := r.page(t, "acme", "42", 0, 50)
			if len(items) != 1 || next != 0 || unread != 1 {
				t.Fatalf("page: %d items, next %d, unread %d", len(items), next, unread)
			}
			it := items[0]
			if it.ID != "ev-1" || it.Type != tc.typ || it.Seq == 0 || it.Read || it.CreatedAt != r.clock.Now().Unix() {
				t.Errorf("item %+v", it)
			}
			if string(it.Payload) != string(ev.Body) {
				t.Errorf("payload %s, want %s", it.Payload, ev.Body)
			}
			if it.Links.Click != tc.click || it.Links.Recording != tc.recording {
				t.Errorf("links %+v, want click %q recording %q", it.Links, tc.click, tc.recording)
			}

			f := nextFrame(t, tabs)
			var framed center.Item
			if err := json.Unmarshal(f.Item, &framed); err != nil {
				t.Fatal(err)
			}
			if f.Kind != "center" || f.Op != center.OpAdded || f.Unread != 1 || framed.Seq != it.Seq || framed.Links != it.Links {
				t.Errorf("frame %+v, item %+v", f, framed)
			}
		})
	}
}

func TestRedeliveredEventIsOneItem(t *testing.T) {
	cases := []struct {
		name string
		// deliver sends ev the way the case's redeliveries happen.
		deliver func(t *testing.T, r *rig, ev *events.Event)
	}{
		{"twice in a row", func(t *testing.T, r *rig, ev *events.Event) {
			r.send(t, r.store, ev)
			r.send(t, r.store, ev)
		}},
		{"eight times at once", func(t *testing.T, r *rig, ev *events.Event) {
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					if err := r.store.Send(t.Context(), &channels.Delivery{Event: ev, User: ev.User, Attempt: 2}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}},
		{"by two dispatchers at once", func(t *testing.T, r *rig, ev *events.Event) {
			// The other store publishes on the test's connection too, so frames keep order.
			other := r.newStore(t, r.nc, nil)
			var wg sync.WaitGroup
			for _, s := range []*center.Store{r.store, other, r.store, other} {
				wg.Go(func() {
					if err := s.Send(t.Context(), &channels.Delivery{Event: ev, User: ev.User, Attempt: 2}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nil)
			tabs := r.tabs(t, "acme", "42")
			r.add(t, "acme", "42", "before")
			nextFrame(t, tabs)

			tc.deliver(t, r, event(t, "acme", "42", "call-7781", events.AddCall, `{"text":"ring"}`))

			if got := ids(r.all(t, "acme", "42", 50)); got != "call-7781,before" {
				t.Errorf("items %s", got)
			}
			if n := r.unread(t, "acme", "42"); n != 2 {
				t.Errorf("unread %d, want 2", n)
			}
			if f := nextFrame(t, tabs); f.Op != center.OpAdded || f.itemID(t) != "call-7781" || f.Unread != 2 {
				t.Errorf("frame %+v", f)
			}
			r.quiet(t, tabs, "acme", "42") // one added frame, not one per delivery
			r.checkState(t, "acme", "42")
		})
	}
}

func TestConcurrentAddsForOneUser(t *testing.T) {
	r := newRig(t, nil)
	other := r.newStore(t, r.nats.Conn(t), nil)
	var wg sync.WaitGroup
	for i := range 40 {
		s := r.store
		if i%2 == 1 {
			s = other
		}
		wg.Go(func() {
			ev := event(t, "acme", "42", "e"+strconv.Itoa(i%30), events.AddError, `{"text":"x"}`)
			if err := s.Send(t.Context(), &channels.Delivery{Event: ev, User: "42", Attempt: 1}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	items := r.all(t, "acme", "42", 7)
	if len(items) != 30 {
		t.Errorf("%d items, want 30: %s", len(items), ids(items))
	}
	for i := 1; i < len(items); i++ {
		if items[i].Seq >= items[i-1].Seq {
			t.Errorf("not newest first: %d after %d", items[i].Seq, items[i-1].Seq)
		}
	}
	if n := r.unread(t, "acme", "42"); n != 30 {
		t.Errorf("unread %d, want 30", n)
	}
	r.checkState(t, "acme", "42")
}

func TestUsersAndAccountsAreIsolated(t *testing.T) {
	r := newRig(t, nil)
	users := [][2]string{{"acme", "42"}, {"acme", "43"}, {"globex", "42"}}
	for _, u := range users {
		r.add(t, u[0], u[1], "same-id") // the same event id everywhere: three items
		r.add(t, u[0], u[1], "own-"+u[0]+"-"+u[1])
	}
	ctx := t.Context()

	// acme/43 and globex/42 act on acme/42's ids: nothing of acme/42 changes.
	for _, u := range users[1:] {
		if _, err := r.store.MarkRead(ctx, u[0], u[1], []string{"own-acme-42"}); err != nil {
			t.Fatal(err)
		}
		if found, err := r.store.Delete(ctx, u[0], u[1], "own-acme-42"); err != nil || found {
			t.Errorf("%s/%s deleted acme/42's item: %v %v", u[0], u[1], found, err)
		}
	}
	if n, err := r.store.MarkRead(ctx, "acme", "42", []string{"same-id"}); err != nil || n != 1 {
		t.Errorf("acme/42 unread after marking its own: %d %v", n, err)
	}
	if found, err := r.store.Delete(ctx, "acme", "42", "own-acme-42"); err != nil || !found {
		t.Errorf("acme/42 could not delete its item: %v %v", found, err)
	}

	want := map[string]string{
		"acme/42":   "same-id",
		"acme/43":   "own-acme-43,same-id",
		"globex/42": "own-globex-42,same-id",
	}
	wantUnread := map[string]int64{"acme/42": 0, "acme/43": 2, "globex/42": 2}
	r.expectCenters(t, users, want, wantUnread)
}

func TestSendRefusesWhatIsNoItem(t *testing.T) {
	r := newRig(t, nil)
	cases := []struct {
		name string
		d    *channels.Delivery
	}{
		{"a pop-up", &channels.Delivery{Event: event(t, "acme", "42", "p", events.ShowMessage, `{"header":"h","text":"t"}`), User: "42"}},
		{"every user at once", &channels.Delivery{Event: event(t, "acme", events.AllUsers, "a", events.AddError, `{"text":"t"}`), User: events.AllUsers}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := r.store.Send(t.Context(), tc.d); !channels.IsPermanent(err) {
				t.Errorf("Send = %v, want a permanent error", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	r := newRig(t, nil)
	cases := []struct {
		name string
		cfg  center.Config
		ok   bool
	}{
		{"defaults", center.Config{Conn: r.nc}, true},
		{"no connection", center.Config{}, false},
		{"relative base URL", center.Config{Conn: r.nc, BaseURL: "crm.example.com"}, false},
		{"javascript base URL", center.Config{Conn: r.nc, BaseURL: "javascript:alert(1)"}, false},
		{"negative max items", center.Config{Conn: r.nc, MaxItems: -1}, false},
		{"too many items", center.Config{Conn: r.nc, MaxItems: center.MaxMaxItems + 1}, false},
		{"max age under a minute", center.Config{Conn: r.nc, MaxAge: 59 * 1e9}, false},
		{"two replicas", center.Config{Conn: r.nc, Replicas: 2}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

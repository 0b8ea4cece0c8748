package dispatcher

import (
	"errors"
	"testing"
	"time"

	"github.com/kommo-notify/notify/events"
)

func TestDecodedIsSharedByTheConsumers(t *testing.T) {
	at := time.Unix(1714566795, 0)
	calls := 0
	decode := func(id string, err error) func() (*events.Event, error) {
		return func() (*events.Event, error) {
			calls++
			if err != nil {
				return nil, err
			}
			return &events.Event{ID: id}, nil
		}
	}
	t.Run("each consumer takes it once, then it is gone", func(t *testing.T) {
		c, calls0 := newDecoded(3, 8), calls
		for range 3 {
			if ev, err := c.get(1, at, decode("a", nil)); err != nil || ev.ID != "a" {
				t.Fatalf("got %v %v", ev, err)
			}
		}
		if calls-calls0 != 1 {
			t.Errorf("decoded %d times for three consumers, want once", calls-calls0)
		}
		if len(c.entries) != 0 {
			t.Errorf("%d entries left after every consumer took it", len(c.entries))
		}
	})
	t.Run("errors are shared too", func(t *testing.T) {
		c, calls0 := newDecoded(2, 8), calls
		bad := errors.New("invalid")
		for range 2 {
			if _, err := c.get(1, at, decode("", bad)); !errors.Is(err, bad) {
				t.Fatalf("err %v", err)
			}
		}
		if calls-calls0 != 1 {
			t.Errorf("decoded %d times", calls-calls0)
		}
	})
	t.Run("another stream's message with the same sequence is not confused", func(t *testing.T) {
		c := newDecoded(2, 8)
		c.get(1, at, decode("old", nil))
		if ev, _ := c.get(1, at.Add(time.Second), decode("new", nil)); ev.ID != "new" {
			t.Errorf("got %s for a message stored at another time", ev.ID)
		}
	})
	t.Run("the oldest entries make room", func(t *testing.T) {
		c, calls0 := newDecoded(2, 4), calls
		for seq := range uint64(10) {
			c.get(seq+1, at, decode("x", nil))
		}
		if len(c.entries) != 4 {
			t.Errorf("%d entries, want the capacity 4", len(c.entries))
		}
		c.get(1, at, decode("x", nil)) // pushed out: decoded again
		c.get(10, at, decode("x", nil))
		if calls-calls0 != 11 {
			t.Errorf("decoded %d times, want 11", calls-calls0)
		}
	})
}

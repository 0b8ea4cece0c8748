package events

import (
	"errors"
	"testing"
	"time"
)

func TestNewEvent(t *testing.T) {
	now := time.Unix(1714566795, 0)
	addr := Address{Account: "acme", User: "42", Type: AddError}

	ev, warnings, err := NewEvent(addr, "", []byte(`{" text":1,"text":"  Failed  ","x":1}`), now)
	if err != nil {
		t.Fatal(err)
	}
	if CheckID(ev.ID) != nil || ev.Accepted != now || ev.Address != addr {
		t.Errorf("event %+v", ev)
	}
	if string(ev.Body) != `{"text":"Failed","date":1714566795}` {
		t.Errorf("body %s, want the canonical encoding", ev.Body)
	}
	if len(warnings) != 2 {
		t.Errorf("warnings %v, want the two unknown fields", warnings)
	}

	if ev, _, err := NewEvent(addr, "call-1", []byte(`{"text":"t"}`), now); err != nil || ev.ID != "call-1" {
		t.Errorf("given id: %v %v", ev, err)
	}

	// Checked in order: the address, the id, then the payload.
	cases := []struct {
		name  string
		addr  Address
		id    string
		body  string
		field string
	}{
		{"address", Address{Account: "ac.me", User: "42", Type: AddError}, "has space", `{}`, "account"},
		{"id", addr, "has space", `{}`, "id"},
		{"payload", addr, "", `{}`, "text"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewEvent(tc.addr, tc.id, []byte(tc.body), now)
			var e *Error
			if !errors.As(err, &e) || e.Field != tc.field {
				t.Errorf("error %v, want field %s", err, tc.field)
			}
		})
	}
}

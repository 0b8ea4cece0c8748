package center

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kommo-notify/notify/events"
)

// The write path reads an item's id and created_at from the front of its body; it
// must read what a full decode reads, whatever the id holds.
func TestLeadingMetaReadsWhatJSONDoes(t *testing.T) {
	body := `{"header":"Error","text":"Disk full","date":1714566795}`
	payload, _, err := events.Validate(events.AddError, []byte(body), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{}
	for _, id := range []string{
		"plain-1", "01JD5QZ8X0000000000000000", "quote\"d", `back\slash`, "<html>&", "ünïcödé",
		"line\u2028sep", "tab\tbed", "", "id,\"type\":\"x\",\"created_at\":1,",
	} {
		for _, created := range []int64{0, 1, 1714566795} {
			ev := &events.Event{ID: id, Address: events.Address{Account: "acme", User: "42", Type: events.AddError}, Payload: payload, Body: []byte(body)}
			item, err := s.encodeItem(ev, created)
			if err != nil {
				t.Fatal(err)
			}
			var want itemMeta
			if err := json.Unmarshal(item, &want); err != nil {
				t.Fatal(err)
			}
			m := storedMsg{data: item}
			if got := m.meta(); got != want {
				t.Errorf("meta of %s = %+v, want %+v", item, got, want)
			}
		}
	}
	for _, malformed := range []string{"", "{", `{"id":"x"`, `{"id":"x","type":"t","created_at":}`, `{"id":"x","type":"t","created_at":12`, "[1]"} {
		m := storedMsg{data: []byte(malformed)}
		var want itemMeta
		_ = json.Unmarshal([]byte(malformed), &want)
		if got := m.meta(); got != want {
			t.Errorf("meta of %q = %+v, want %+v", malformed, got, want)
		}
	}
}

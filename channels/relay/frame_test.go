package relay_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels/relay"
	"github.com/kommo-notify/notify/events"
)

// EncodePopup builds the frame by hand; it must be byte for byte what encoding/json
// makes of a PopupFrame, whatever the payload and the id.
func FuzzEncodePopup(f *testing.F) {
	for _, seed := range []struct{ id, body string }{
		{"01HX6Y2Q8R0000000000000001", benchPopup},
		{`a"b\c<d>e&f`, `{"text":"<b>bold</b> & <i>x</i> \u2028 é 😀 \"q\""}`},
		{"x", `{"text":"t","link":"https://crm.example.com/a?b=1&c=2"}`},
		{"", `{"header":"h","text":"<script>alert(1)</script><p onclick=x>p</p>"}`},
	} {
		f.Add(seed.id, seed.body)
	}
	f.Fuzz(func(t *testing.T, id, body string) {
		for _, typ := range []events.Type{events.ShowMessage, events.ShowMessageError, events.ShowNotification, events.AddError} {
			ev, _, err := events.NewEvent(events.Address{Account: "acme", User: "42", Type: typ}, id, []byte(body), time.Unix(1714566795, 0))
			if err != nil {
				continue
			}
			checkFrame(t, ev)
		}
	})
}

func TestEncodePopupWithoutBody(t *testing.T) {
	checkFrame(t, &events.Event{ID: "1", Address: events.Address{Type: events.ShowMessage}})
	checkFrame(t, &events.Event{ID: "é\x01", Address: events.Address{Type: events.ShowMessage}, Body: []byte(`{"text":"t"}`)})
}

func checkFrame(t *testing.T, ev *events.Event) {
	t.Helper()
	got, err := relay.EncodePopup(ev)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(relay.PopupFrame{Kind: "popup", Type: ev.Type, ID: ev.ID, Payload: ev.Body})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("frame\n%s\nencoding/json\n%s", got, want)
	}
}

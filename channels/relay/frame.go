package relay

import (
	"encoding/json"

	"github.com/kommo-notify/notify/events"
)

// SubjectPrefix is the first token of the relay's internal subjects: ui.<account>.<user>
// carries ready-to-send websocket frames to whichever dispatcher holds the user's tabs.
const SubjectPrefix = "ui"

// Subject is ui.<account>.<user>; user events.AllUsers reaches every connected user of
// the account.
func Subject(account, user string) string {
	return SubjectPrefix + "." + account + "." + user
}

// PopupFrame is the websocket frame of a pop-up, for every type.
type PopupFrame struct {
	Kind    string          `json:"kind"` // always "popup"
	Type    events.Type     `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// EncodePopup encodes ev's pop-up frame once; the bytes go unchanged to every tab.
func EncodePopup(ev *events.Event) ([]byte, error) {
	return json.Marshal(PopupFrame{Kind: "popup", Type: ev.Type, ID: ev.ID, Payload: ev.Body})
}

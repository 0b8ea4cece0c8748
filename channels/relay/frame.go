package relay

import (
	"encoding/json"

	"github.com/kommo-notify/notify/events"
)

// PopupFrame is the websocket frame of a pop-up, for every type.
type PopupFrame struct {
	Kind    string          `json:"kind"` // always "popup"
	Type    events.Type     `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// HelloFrame is the first frame of every connection, sent once it is subscribed.
type HelloFrame struct {
	Kind    string `json:"kind"` // always "hello"
	Account string `json:"account"`
	User    string `json:"user"`
	Unread  int64  `json:"unread"`
	Seq     uint64 `json:"seq"`
}

// ResumedFrame ends the replay that answers a resume request.
type ResumedFrame struct {
	Kind   string `json:"kind"` // always "center"
	Op     string `json:"op"`   // always "resumed"
	Seq    uint64 `json:"seq"`
	Unread int64  `json:"unread"`
}

// EncodePopup encodes ev's pop-up frame once; the bytes go unchanged to every tab.
//
// ev.Body is already the payload's encoding by encoding/json, compact and escaped:
// the frame is put together around it, byte for byte what json.Marshal of a
// PopupFrame gives, without scanning the payload again. An event without a body
// takes json.Marshal.
func EncodePopup(ev *events.Event) ([]byte, error) {
	if len(ev.Body) == 0 {
		return json.Marshal(PopupFrame{Kind: "popup", Type: ev.Type, ID: ev.ID, Payload: ev.Body})
	}
	b := make([]byte, 0, len(`{"kind":"popup","type":"","id":"","payload":}`)+len(ev.Type)+len(ev.ID)+len(ev.Body))
	b = append(b, `{"kind":"popup","type":`...)
	b = events.AppendJSONString(b, string(ev.Type))
	b = append(b, `,"id":`...)
	b = events.AppendJSONString(b, ev.ID)
	b = append(b, `,"payload":`...)
	b = append(b, ev.Body...)
	return append(b, '}'), nil
}

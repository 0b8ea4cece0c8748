package center

import (
	"encoding/json"
	"strconv"

	"github.com/kommo-notify/notify/channels"
)

// The center's websocket frames, published to ui.<account>.<user> so that every tab
// of the user shows the same list and badge. Each carries the user's unread count
// after the change. Clients ignore ops they do not know.
const (
	OpAdded   = "added"   // {"kind":"center","op":"added","item":{...},"unread":N}
	OpRead    = "read"    // {"kind":"center","op":"read","ids":[...],"all":bool,"unread":N}
	OpDeleted = "deleted" // {"kind":"center","op":"deleted","ids":[...],"unread":N}
)

// readFrame says items were marked read: ids lists those that changed; all is true
// for "mark all read", whose ids are empty (every item is read then).
type readFrame struct {
	Kind   string   `json:"kind"`
	Op     string   `json:"op"`
	IDs    []string `json:"ids"`
	All    bool     `json:"all"`
	Unread int64    `json:"unread"`
}

// deletedFrame says items left the center: deleted by the user or evicted by
// retention. Tabs drop them from their list.
type deletedFrame struct {
	Kind   string   `json:"kind"`
	Op     string   `json:"op"`
	IDs    []string `json:"ids"`
	Unread int64    `json:"unread"`
}

// addedFrame encodes a center added frame around an item's JSON without decoding it.
func addedFrame(item json.RawMessage, unread int64) []byte {
	out := make([]byte, 0, len(item)+64)
	out = append(out, `{"kind":"center","op":"added","item":`...)
	out = append(out, item...)
	out = append(out, `,"unread":`...)
	out = strconv.AppendInt(out, unread, 10)
	return append(out, '}')
}

// publish sends a frame to the user's open tabs. Nobody connected is not an error,
// and a lost frame costs nothing lasting: tabs resync with resume and the API.
func (s *Store) publish(u user, frame []byte) {
	s.pub.post(channels.UISubject(u.account, u.user), frame)
}

func (s *Store) publishJSON(u user, v any) {
	frame, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode center frame", "error", err)
		return
	}
	s.publish(u, frame)
}

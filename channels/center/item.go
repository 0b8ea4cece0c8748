package center

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/kommo-notify/notify/events"
)

// Item is a center item as the HTTP API and the websocket frames show it.
type Item struct {
	ID        string          `json:"id"` // the event id, unique per user
	Type      events.Type     `json:"type"`
	Seq       uint64          `json:"seq"`        // increasing per user: the stream sequence
	CreatedAt int64           `json:"created_at"` // Unix seconds, when the center stored it
	Read      bool            `json:"read"`
	Payload   json.RawMessage `json:"payload"` // the validated payload, date in seconds
	Links     Links           `json:"links"`
}

// Links are the absolute URLs an item opens.
type Links struct {
	Click     string `json:"click"`     // on click: the link, or an add_call's element; empty when none
	Recording string `json:"recording"` // an add_call's link (the call recording); empty otherwise
}

// stored is the body of an item's message: the item without seq and read, which are
// known only when it is served (see served).
type stored struct {
	ID        string          `json:"id"`
	Type      events.Type     `json:"type"`
	CreatedAt int64           `json:"created_at"`
	Payload   json.RawMessage `json:"payload"`
	Links     Links           `json:"links"`
}

// encodeItem is the stored body of ev's item.
func (s *Store) encodeItem(ev *events.Event, created int64) ([]byte, error) {
	if !ev.Type.Durable() {
		return nil, fmt.Errorf("%s is not kept in the center", ev.Type)
	}
	if len(ev.Body) == 0 || ev.Body[0] != '{' {
		return nil, errors.New("the event has no encoded payload")
	}
	return json.Marshal(stored{ID: ev.ID, Type: ev.Type, CreatedAt: created, Payload: ev.Body, Links: s.links(ev.Payload)})
}

// links resolves what an item opens: an add_call's element wins the click over its
// link, which is the recording; any other link is the click, a path resolved
// against the base URL.
func (s *Store) links(p events.Payload) Links {
	switch p := p.(type) {
	case *events.AddCallPayload:
		l := Links{Click: s.absolute(p.Link), Recording: p.Link}
		if p.Element != nil {
			if section, ok := elementSections[p.Element.Type]; ok && s.cfg.BaseURL != "" {
				l.Click = s.cfg.BaseURL + "/" + section + "/detail/" + strconv.FormatInt(p.Element.ID, 10)
			}
		}
		return l
	case *events.AddErrorPayload:
		return Links{Click: s.absolute(p.Link)}
	}
	return Links{}
}

// elementSections are the CRM sections of an add_call's element types.
var elementSections = map[string]string{
	events.ElementContact: "contacts",
	events.ElementLead:    "leads",
	events.ElementCompany: "companies",
}

// absolute resolves a validated link: a path is appended to the base URL, an
// absolute URL stays as it is. A path without a base URL resolves to nothing.
func (s *Store) absolute(link string) string {
	if !events.IsPath(link) {
		return link
	}
	if s.cfg.BaseURL == "" {
		return ""
	}
	return s.cfg.BaseURL + link
}

// served is the item JSON of a stored body: seq and read are spliced in front, so a
// page is served without decoding a single item. A body that is no JSON object
// (never one the center wrote) serves as nothing.
func served(body []byte, seq uint64, read bool) json.RawMessage {
	if len(body) < 2 || body[0] != '{' {
		return nil
	}
	out := make([]byte, 0, len(body)+32)
	out = append(out, `{"seq":`...)
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, `,"read":`...)
	out = strconv.AppendBool(out, read)
	out = append(out, ',')
	return append(out, body[1:]...)
}

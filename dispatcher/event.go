package dispatcher

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
)

// decode turns a message into a validated event. accepted is when NATS took the
// event (the stream timestamp for durable events), used for a missing date and for
// latency; assignID gives the id of a message without Nats-Msg-Id.
func decode(subject string, hdr nats.Header, data []byte, accepted time.Time, assignID func() string) (*events.Event, []string, error) {
	addr, err := events.ParseSubject(subject)
	if err != nil {
		return nil, nil, err
	}
	header, id := headerID(hdr)
	if id == "" {
		id = assignID()
	} else if err := events.CheckID(id); err != nil {
		return nil, nil, events.FieldError(header, "must be 1 to %d printable ASCII characters without spaces", events.MaxIDHeaderLen)
	}
	p, warnings, err := events.Validate(addr.Type, data, accepted)
	if err != nil {
		return nil, nil, err
	}
	body, err := events.Encode(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", addr.Type, err)
	}
	return &events.Event{ID: id, Address: addr, Payload: p, Body: body, Accepted: accepted}, warnings, nil
}

func errorCode(err error) string { return events.AsError(err).Code }

// headerID is the event id a message carries and the header it came in: a replay's
// Notify-Event-Id (the original event's id), else the producer's Nats-Msg-Id.
func headerID(hdr nats.Header) (header, id string) {
	if id := hdr.Get(HeaderEventID); id != "" {
		return HeaderEventID, id
	}
	return jetstream.MsgIDHeader, hdr.Get(jetstream.MsgIDHeader)
}

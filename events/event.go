package events

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"
)

// MaxIDHeaderLen bounds a producer-chosen event id (the Nats-Msg-Id header or an
// HTTP Idempotency-Key).
const MaxIDHeaderLen = 128

// Event is a validated notification on its way to channels.
type Event struct {
	ID       string    // the Nats-Msg-Id, or an id the dispatcher assigned
	Address            // account, user (possibly AllUsers) and type
	Payload  Payload   // validated, sanitized payload
	Body     []byte    // Payload's canonical JSON encoding, encoded once
	Accepted time.Time // when NATS or the HTTP API accepted the event
}

// NewID returns a fresh ULID: sortable by time, unique without coordination.
func NewID() string {
	return ulid.MustNew(ulid.Now(), rand.Reader).String()
}

// StreamID derives the id of an event that was published without Nats-Msg-Id from its
// place in the stream, so every consumer of the same message agrees on it without
// talking to the others. The result is a ULID whose time part is the stream timestamp.
func StreamID(stamp time.Time, seq uint64) string {
	var entropy [10]byte
	binary.BigEndian.PutUint64(entropy[2:], seq)
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(stamp))
	_ = id.SetEntropy(entropy[:])
	return id.String()
}

// CheckID validates a producer-chosen event id: 1 to MaxIDHeaderLen printable ASCII
// characters without spaces, so it is safe in headers, logs and URL paths.
func CheckID(id string) error {
	if id == "" || len(id) > MaxIDHeaderLen {
		return FieldError("id", "must be 1 to %d characters", MaxIDHeaderLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return FieldError("id", "must be printable ASCII without spaces")
		}
	}
	return nil
}

// NewEvent builds the event a producer publishes: it checks addr and id (empty: a
// fresh ULID), validates body as addr's payload accepted at now (a missing date is
// now), and encodes the payload once, canonically. The warnings name the fields that
// were dropped. The Go client, the CLI and the HTTP API all build their events here.
func NewEvent(addr Address, id string, body []byte, now time.Time) (*Event, []string, error) {
	if err := addr.Validate(); err != nil {
		return nil, nil, err
	}
	if id == "" {
		id = NewID()
	} else if err := CheckID(id); err != nil {
		return nil, nil, err
	}
	p, warnings, err := Validate(addr.Type, body, now)
	if err != nil {
		return nil, nil, err
	}
	canonical, err := Encode(p)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", addr.Type, err)
	}
	return &Event{ID: id, Address: addr, Payload: p, Body: canonical, Accepted: now}, warnings, nil
}

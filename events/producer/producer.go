// Package producer is the Go client for services that raise notifications. It
// validates locally with the same rules as the dispatcher, so a bad payload fails at
// the caller with the field named, and publishes durable types through JetStream
// (acknowledged, deduplicated by Nats-Msg-Id) and pop-up types on core NATS.
package producer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
)

// Client publishes notification events. It is safe for concurrent use.
type Client struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	now func() time.Time
}

// New returns a client on an established connection. The connection stays the caller's.
func New(nc *nats.Conn) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("producer: jetstream: %w", err)
	}
	return &Client{nc: nc, js: js, now: time.Now}, nil
}

// Result says what became of a published event.
type Result struct {
	ID        string   `json:"id"`                  // the event id (Nats-Msg-Id)
	Warnings  []string `json:"warnings"`            // unknown fields that were dropped
	Stream    string   `json:"stream,omitempty"`    // durable types: the stream that stored it
	Seq       uint64   `json:"seq,omitempty"`       // durable types: its stream sequence
	Duplicate bool     `json:"duplicate,omitempty"` // durable types: the id was seen inside the dedup window
}

// Option adjusts one Publish call.
type Option func(*publishOptions)

type publishOptions struct{ id string }

// WithID sets the event id, which is also its idempotency key: the same id published
// twice inside the dedup window is delivered once. Without it a fresh ULID is used.
func WithID(id string) Option { return func(o *publishOptions) { o.id = id } }

// Publish validates payload for addr's type and publishes it to addr's subject. The
// payload is a []byte or json.RawMessage holding JSON, or any value encoding to a JSON
// object (such as *events.AddCallPayload). A validation failure is an *events.Error.
func (c *Client) Publish(ctx context.Context, addr events.Address, payload any, opts ...Option) (Result, error) {
	var o publishOptions
	for _, opt := range opts {
		opt(&o)
	}
	body, err := encode(payload)
	if err != nil {
		return Result{}, err
	}
	ev, warnings, err := events.NewEvent(addr, o.id, body, c.now())
	if err != nil {
		return Result{}, err
	}
	res, err := c.PublishEvent(ctx, ev)
	res.Warnings = warnings
	return res, err
}

// PublishEvent publishes an event that was already validated (ev.Body is the payload's
// canonical encoding). Warnings are left empty.
func (c *Client) PublishEvent(ctx context.Context, ev *events.Event) (Result, error) {
	msg := nats.NewMsg(ev.Subject())
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	msg.Data = ev.Body
	res := Result{ID: ev.ID, Warnings: []string{}}
	if !ev.Type.Durable() {
		if err := c.nc.PublishMsg(msg); err != nil {
			return res, fmt.Errorf("producer: publish %s: %w", ev.ID, err)
		}
		return res, nil
	}
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		return res, fmt.Errorf("producer: publish %s: %w", ev.ID, err)
	}
	res.Stream, res.Seq, res.Duplicate = ack.Stream, ack.Sequence, ack.Duplicate
	return res, nil
}

func encode(payload any) ([]byte, error) {
	switch p := payload.(type) {
	case []byte:
		return p, nil
	case json.RawMessage:
		return p, nil
	case string:
		return []byte(p), nil
	default:
		b, err := json.Marshal(p)
		if err != nil {
			return nil, &events.Error{Code: events.CodeInvalidJSON, Message: "payload does not encode to JSON: " + err.Error()}
		}
		return b, nil
	}
}

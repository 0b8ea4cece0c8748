package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/channels"
)

// Config configures the relay channel.
type Config struct {
	Conn *nats.Conn // the dispatcher's connection; stays the caller's
	// Hub, if set, is this dispatcher's own hub: it gets each frame straight from Send
	// instead of back from the NATS server, which saves a hop and a decode of the
	// message for every tab held here. Conn must then be the hub's connection and be
	// opened with nats.NoEcho, so the server sends the frame to the other dispatchers
	// only and no tab gets it twice.
	Hub *Hub
}

// Validate reports a missing connection, or a hub that would get frames twice.
func (c *Config) Validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("relay: a NATS connection is required")
	case c.Hub != nil && c.Hub.cfg.Conn != c.Conn:
		return errors.New("relay: the hub must subscribe on the relay's connection")
	case c.Hub != nil && !c.Conn.Opts.NoEcho:
		return errors.New("relay: a connection shared with the hub needs nats.NoEcho, or its tabs get each frame twice")
	}
	return nil
}

// Relay delivers pop-ups to the open tabs of a user by publishing one encoded frame to
// ui.<account>.<user>; the dispatcher that holds the user's websockets forwards it,
// and the relay's own hub, if it has one, gets the frame directly.
type Relay struct {
	nc  *nats.Conn
	hub *Hub
}

var (
	_ channels.Channel     = (*Relay)(nil)
	_ channels.Broadcaster = (*Relay)(nil)
	_ channels.Live        = (*Relay)(nil)
)

// New returns a relay publishing on cfg.Conn.
func New(cfg Config) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Relay{nc: cfg.Conn, hub: cfg.Hub}, nil
}

// Name is channels.Relay.
func (*Relay) Name() string { return channels.Relay }

// Broadcasts: _all is one publish to the account's broadcast subject.
func (*Relay) Broadcasts() bool { return true }

// Live: a pop-up matters only while it is fresh.
func (*Relay) Live() bool { return true }

// Send publishes the event's pop-up frame for d.User, and hands it to the local hub
// if there is one. Nobody connected is not an error: a pop-up is ephemeral.
func (r *Relay) Send(ctx context.Context, d *channels.Delivery) error {
	frame, err := EncodePopup(d.Event)
	if err != nil {
		return channels.Permanent(fmt.Errorf("relay: encode %s: %w", d.Event.ID, err))
	}
	subject := channels.UISubject(d.Event.Account, d.User)
	if err := r.nc.Publish(subject, frame); err != nil {
		// Not delivered anywhere, locally neither: a retry must not show it twice.
		return fmt.Errorf("relay: publish %s: %w", d.Event.ID, err)
	}
	if r.hub != nil {
		r.hub.fanout(subject, frame)
	}
	return nil
}

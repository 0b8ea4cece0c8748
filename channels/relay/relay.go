package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/channels"
)

// Config configures the relay channel.
type Config struct {
	Conn   *nats.Conn // the dispatcher's connection; stays the caller's
	Logger *slog.Logger
}

// Validate reports a missing connection.
func (c *Config) Validate() error {
	if c.Conn == nil {
		return errors.New("relay: a NATS connection is required")
	}
	return nil
}

// Relay delivers pop-ups to the open tabs of a user by publishing one encoded frame to
// ui.<account>.<user>; the dispatcher that holds the user's websockets forwards it.
type Relay struct {
	nc  *nats.Conn
	log *slog.Logger
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Relay{nc: cfg.Conn, log: cfg.Logger}, nil
}

// Name is channels.Relay.
func (*Relay) Name() string { return channels.Relay }

// Broadcasts: _all is one publish to the account's broadcast subject.
func (*Relay) Broadcasts() bool { return true }

// Live: a pop-up matters only while it is fresh.
func (*Relay) Live() bool { return true }

// Send publishes the event's pop-up frame for d.User. Nobody connected is not an
// error: a pop-up is ephemeral.
func (r *Relay) Send(ctx context.Context, d *channels.Delivery) error {
	frame, err := EncodePopup(d.Event)
	if err != nil {
		return channels.Permanent(fmt.Errorf("relay: encode %s: %w", d.Event.ID, err))
	}
	if err := r.nc.Publish(channels.UISubject(d.Event.Account, d.User), frame); err != nil {
		return fmt.Errorf("relay: publish %s: %w", d.Event.ID, err)
	}
	return nil
}

package email

import (
	"context"
	"fmt"
	"log/slog"
	netmail "net/mail"

	"github.com/wneessen/go-mail"

	"github.com/kommo-notify/notify/channels"
)

// Sender is the email channel: it sends add_error and add_call to the recipient's
// address from the directory, over a pool of SMTP connections.
type Sender struct {
	cfg        Config
	from       *netmail.Address
	domain     string // of Message-IDs
	render     renderer
	recipients Profiles
	pool       *pool
	log        *slog.Logger
}

var (
	_ channels.Channel    = (*Sender)(nil)
	_ channels.Closer     = (*Sender)(nil)
	_ channels.Concurrent = (*Sender)(nil)
)

// New checks cfg and returns the channel. It dials nothing: connections open with
// the first messages, so a mail server that is down delays mail, not the daemon.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	from, err := parseFrom(cfg.From)
	if err != nil {
		return nil, err
	}
	p, err := newPool(&cfg)
	if err != nil {
		return nil, err
	}
	return &Sender{
		cfg:        cfg,
		from:       from,
		domain:     idDomain(from),
		render:     renderer{base: cfg.BaseURL},
		recipients: cfg.Recipients,
		pool:       p,
		log:        cfg.Logger.With("channel", channels.Email),
	}, nil
}

// Name is channels.Email.
func (*Sender) Name() string { return channels.Email }

// Concurrency is twice the connections: while one send of a connection is in its
// SMTP transaction, the next is ready to take the connection the moment it is free.
func (s *Sender) Concurrency() int { return 2 * s.cfg.Connections }

// Send emails d.Event to d.User. It skips a user without a profile or an address
// (no_address) and one who switched email off (opted_out), and otherwise answers by
// the SMTP server's verdict (see classify): nil once the server took the message, a
// permanent error for a 5xx, a transient one for a 4xx or a lost connection. It
// returns within the configured Timeout, and sooner when ctx ends.
func (s *Sender) Send(ctx context.Context, d *channels.Delivery) error {
	ev := d.Event
	if !ev.Type.Durable() {
		return channels.Permanent(fmt.Errorf("email: %s %s: only add_error and add_call are sent by email", ev.Type, ev.ID))
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	select {
	case <-s.recipients.Ready():
	case <-ctx.Done():
		return fmt.Errorf("email: send %s: the recipient directory is still loading: %w", ev.ID, context.Cause(ctx))
	}
	p, ok := s.recipients.Profile(ev.Account, d.User)
	switch {
	case !ok:
		return channels.Skip(channels.ReasonNoAddress)
	case !p.Channels.Email:
		return channels.Skip(channels.ReasonOptedOut)
	case p.Email == "":
		return channels.Skip(channels.ReasonNoAddress)
	}
	msg, err := s.compose(ev, d.User, p)
	if err != nil {
		return channels.Permanent(fmt.Errorf("email: compose %s: %w", ev.ID, err))
	}
	env, err := envelopeOf(msg)
	if err != nil {
		return channels.Permanent(fmt.Errorf("email: compose %s: envelope: %w", ev.ID, err))
	}
	if err := s.deliver(ctx, msg, env, p.Email); err != nil {
		return fmt.Errorf("email: send %s: %w", ev.ID, err)
	}
	return nil
}

// deliver sends msg over a pooled connection. A connection that went stale while
// idle (the server timed it out) fails MAIL or RCPT, before the server could take
// anything, and the message goes out on a fresh one within the same call.
func (s *Sender) deliver(ctx context.Context, msg *mail.Msg, env envelope, rcpt string) error {
	c, err := s.pool.get(ctx)
	if err != nil {
		return err
	}
	defer s.pool.put(c)
	done := c.guard(ctx)
	err = s.transact(ctx, c, msg, env, rcpt)
	if done() {
		c.drop() // the watcher closed the connection under the session
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	return err
}

func (s *Sender) transact(ctx context.Context, c *conn, msg *mail.Msg, env envelope, rcpt string) error {
	for {
		dialled, err := c.connect(ctx)
		if err != nil {
			// Refused, unreachable, TLS or AUTH failure: the server's or the
			// configuration's trouble, not the message's. Retried with backoff.
			return redact(fmt.Errorf("connect to %s: %w", s.cfg.Server, err), rcpt)
		}
		v := classify(c.send(msg, env), rcpt)
		if !v.keep {
			c.drop()
		}
		if v.stale && !dialled && ctx.Err() == nil {
			s.log.Debug("SMTP connection went stale while idle, redialling", "error", v.err)
			continue // at most once: the next connect dials, so dialled is true
		}
		return v.err
	}
}

// Close ends every SMTP session with QUIT. The dispatcher calls it after the last
// Send has returned; a Send after Close fails (transient).
func (s *Sender) Close(ctx context.Context) error { return s.pool.close(ctx) }

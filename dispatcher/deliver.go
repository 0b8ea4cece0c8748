package dispatcher

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
)

// result is what one Send came to, before the router decides about retries.
type result struct {
	outcome string // OutcomeSent, OutcomeSkipped, OutcomeFailed (permanent) or OutcomeRetry
	reason  string // the skip reason
	err     error
}

// send calls the channel once and classifies its answer by the channel contract. It
// records the send time; the outcome is counted by the caller once it is final.
func (d *Dispatcher) send(ctx context.Context, ch channels.Channel, ev *events.Event, user string, attempt int) result {
	start := time.Now()
	err := ch.Send(ctx, &channels.Delivery{Event: ev, User: user, Attempt: attempt})
	took := time.Since(start)
	if rm := d.metrics.byRoute[routeKey{ch.Name(), ev.Type}]; rm != nil {
		rm.duration.Observe(took.Seconds())
	}
	if err == nil {
		return result{outcome: OutcomeSent}
	}
	if reason, ok := channels.IsSkip(err); ok {
		return result{outcome: OutcomeSkipped, reason: reason}
	}
	if channels.IsPermanent(err) {
		return result{outcome: OutcomeFailed, err: err}
	}
	return result{outcome: OutcomeRetry, err: err}
}

// record counts a final or retried outcome and logs it with the event and channel.
// Sent and skipped deliveries log at debug; the level is checked first, so the hot
// path builds no record when debug is off.
func (d *Dispatcher) record(ch string, ev *events.Event, user string, attempt int, r result) {
	d.metrics.delivered(ch, ev.Type, r.outcome, ev.Accepted)
	level, msg := slog.LevelDebug, "delivered"
	switch r.outcome {
	case OutcomeSkipped:
		msg = "skipped"
	case OutcomeRetry:
		level, msg = slog.LevelWarn, "delivery failed, will retry"
	case OutcomeFailed, OutcomeDead:
		level, msg = slog.LevelError, "delivery failed"
	}
	ctx := context.Background()
	if !d.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("event_id", ev.ID), slog.String("channel", ch), slog.String("type", string(ev.Type)),
		slog.String("account", ev.Account), slog.String("user", user), slog.Int("attempt", attempt),
		slog.String("outcome", r.outcome),
	}
	if r.reason != "" {
		attrs = append(attrs, slog.String("reason", r.reason))
	}
	if r.err != nil {
		attrs = append(attrs, slog.Any("error", r.err))
	}
	d.log.LogAttrs(ctx, level, msg, attrs...)
}

// recipients lists who a channel delivers ev to: the addressed user, or for _all
// every user of the account's directory, unless the channel broadcasts by itself.
func (d *Dispatcher) recipients(ctx context.Context, ch channels.Channel, ev *events.Event) ([]string, error) {
	if ev.User != events.AllUsers {
		return []string{ev.User}, nil
	}
	if b, ok := ch.(channels.Broadcaster); ok && b.Broadcasts() {
		return []string{events.AllUsers}, nil
	}
	if d.cfg.Recipients == nil {
		return nil, nil
	}
	return d.cfg.Recipients.Users(ctx, ev.Account)
}

func isLive(ch channels.Channel) bool {
	l, ok := ch.(channels.Live)
	return ok && l.Live()
}

// backoff is the delay before attempt+1: exponential from RetryBase, capped at
// RetryMax, with equal jitter so a burst of failures does not retry in lockstep. A
// provider's Retry-After is a floor.
func (d *Dispatcher) backoff(attempt int, err error) time.Duration {
	delay := d.cfg.RetryMax
	if attempt < 30 {
		delay = min(d.cfg.RetryBase<<(attempt-1), d.cfg.RetryMax)
	}
	delay = delay/2 + rand.N(delay/2+1)
	if after, ok := channels.RetryDelay(err); ok && after > delay {
		delay = after
	}
	return delay
}

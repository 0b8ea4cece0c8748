package channels

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kommo-notify/notify/events"
)

// Channel names: the same words in metrics, delivery status and dead letters.
const (
	Relay  = "relay"
	Center = "center"
	Email  = "email"
	Push   = "push"
)

// Channel delivers one event to one recipient over one medium.
//
// Send must be safe for concurrent use. Its error is the whole retry contract:
//   - nil: delivered; the router records it as sent and will not call again for
//     this event and recipient;
//   - an error for which IsSkip is true (see Skip): nothing to deliver for this
//     recipient (opted out, no address, channel not configured); recorded, not retried;
//   - an error for which IsPermanent is true (see Permanent): it can never succeed
//     (the provider refused the message); dead-lettered at once;
//   - any other error: transient; retried later with backoff, after RetryAfter's
//     delay when the error carries one, until the router's attempt limit.
//
// Send must return when ctx ends. The router owns concurrency, retries, metrics and
// dead letters; a channel only delivers.
type Channel interface {
	Name() string
	Send(ctx context.Context, d *Delivery) error
}

// Delivery is one event for one recipient.
type Delivery struct {
	Event   *events.Event
	User    string // the recipient; events.AllUsers only for a Broadcaster
	Attempt int    // 1 on the first try
}

// Broadcaster is implemented by channels that reach every user of an account by
// themselves (the relay publishes once to the account's broadcast subject). For them
// the router passes events.AllUsers as the user instead of expanding the directory.
type Broadcaster interface {
	Broadcasts() bool
}

// Live is implemented by channels whose deliveries only matter in the moment (the
// relay's pop-ups in open tabs). The router neither retries nor dead-letters them, and
// skips a durable event that reaches them too late (reason expired), so a call that
// waited out an outage does not ring in a tab minutes later.
type Live interface {
	Live() bool
}

// Concurrent is implemented by channels that know how many sends they can keep in
// flight: a pool's size, or what a provider's latency asks for (push needs about a
// thousand requests in flight to reach thousands of messages a second at 100 ms).
// The router runs at most that many sends of the channel at once instead of its
// default, and lets JetStream hand it no more than a few times that.
type Concurrent interface {
	Concurrency() int
}

// Runner is implemented by channels with background work (pools, watchers). The
// dispatcher runs it for as long as it routes and waits for it to return.
type Runner interface {
	Run(ctx context.Context) error
}

// Closer is implemented by channels holding resources. Close is called once, after
// the last Send has returned.
type Closer interface {
	Close(ctx context.Context) error
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Skip reasons of the contract.
const (
	ReasonChannelDisabled = "channel_disabled"
	ReasonOptedOut        = "opted_out"
	ReasonNoAddress       = "no_address"
	ReasonNoDevice        = "no_device"
	ReasonExpired         = "expired" // a Live channel got the event too late to matter
)

// SkipError says there was nothing to deliver, and why.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Skip returns the error a channel gives when it has nothing to deliver.
func Skip(reason string) error { return &SkipError{Reason: reason} }

// IsSkip returns the skip reason when err is, or wraps, a SkipError.
func IsSkip(err error) (reason string, ok bool) {
	var s *SkipError
	if errors.As(err, &s) {
		return s.Reason, true
	}
	return "", false
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return fmt.Sprintf("%v (retry after %s)", e.err, e.after) }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks a transient err with the delay the provider asked for
// (an HTTP Retry-After, an SMTP greylisting hint). The router waits at least that long.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: after}
}

// RetryDelay returns the delay carried by RetryAfter, if any.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}

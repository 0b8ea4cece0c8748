package channels

import "context"

// Disabled stands for a channel that is not configured (no SMTP server, no FCM
// project): every delivery is recorded as skipped with reason channel_disabled, so
// the status of an event says why nobody got an email rather than saying nothing.
type Disabled string

var _ Channel = Disabled("")

// Name is the channel's name.
func (d Disabled) Name() string { return string(d) }

// Send skips every delivery.
func (Disabled) Send(context.Context, *Delivery) error { return Skip(ReasonChannelDisabled) }

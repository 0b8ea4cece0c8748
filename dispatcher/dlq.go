package dispatcher

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/events"
)

// RouterChannel names dead letters of events that never reached a channel.
const RouterChannel = "router"

// Dead-letter reasons, the Notify-Reason header.
const (
	ReasonInvalid     = "invalid"
	ReasonPermanent   = "permanent"
	ReasonMaxAttempts = "max_attempts"
)

// Dead-letter headers.
const (
	HeaderEventID  = "Notify-Event-Id"
	HeaderReason   = "Notify-Reason"
	HeaderError    = "Notify-Error"
	HeaderAttempts = "Notify-Attempts"
	// HeaderSubject is the original subject of a router dead letter whose account or
	// user could not stand in a dead-letter subject as it was (see deadLetterTokens).
	HeaderSubject = "Notify-Subject"
)

// HeaderReplay marks an event republished from a dead letter (notify dlq replay): it
// names the one channel that delivers it, the others acknowledge it untouched. A
// replay carries its original id in HeaderEventID and no Nats-Msg-Id, so the dedup
// window cannot swallow it. Dead letters of the router (invalid events) are replayed
// without it, to every channel.
const HeaderReplay = "Notify-Replay"

// maxErrorHeader keeps an error message from bloating a header.
const maxErrorHeader = 1024

type deadLetter struct {
	channel, account, user, typ string
	eventID, reason             string
	err                         error
	attempts                    int
	body                        []byte // the original payload
	subject                     string // the original subject, when the tokens were replaced
}

// DLQSubject is dlq.<channel>.<account>.<user>.<type>.
func DLQSubject(channel, account, user, typ string) string {
	return strings.Join([]string{DLQPrefix, channel, account, user, typ}, ".")
}

// deadLetter stores one dead letter and waits for the stream's acknowledgement. It
// carries no Nats-Msg-Id: two dead letters of one event are two messages.
func (d *Dispatcher) deadLetter(ctx context.Context, dl deadLetter) error {
	msg := nats.NewMsg(DLQSubject(dl.channel, dl.account, dl.user, dl.typ))
	msg.Data = dl.body
	msg.Header.Set(HeaderEventID, dl.eventID)
	msg.Header.Set(HeaderReason, dl.reason)
	msg.Header.Set(HeaderAttempts, strconv.Itoa(dl.attempts))
	if dl.err != nil {
		msg.Header.Set(HeaderError, headerSafe(dl.err.Error()))
	}
	if dl.subject != "" {
		msg.Header.Set(HeaderSubject, headerSafe(strings.ToValidUTF8(dl.subject, "\uFFFD")))
	}
	if _, err := d.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("dead letter %s: %w", dl.eventID, err)
	}
	return nil
}

// deadLetterTokens splits <account>.<user>.<type> of an invalid event into tokens fit
// for its dead-letter subject: a token that is not a valid name (a wildcard, a byte
// the server does not index, nothing at all) becomes "~", which no address can hold,
// so a subject-filtered read of the dead letters never matches more than it should
// and a replay refuses the address instead of guessing. exact is false when a token
// was replaced: the original subject then travels in HeaderSubject.
func deadLetterTokens(tail string) (account, user, typ string, exact bool) {
	parts := strings.SplitN(tail, ".", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	exact = true
	for i, p := range parts {
		if !events.ValidName(p) {
			parts[i], exact = "~", false
		}
	}
	return parts[0], parts[1], parts[2], exact
}

// headerSafe makes s a single-line header value of bounded length, without control
// characters.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorHeader {
		s = s[:maxErrorHeader]
	}
	return s
}

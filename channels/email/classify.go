package email

import (
	"errors"
	"strings"

	"github.com/kommo-notify/notify/channels"
)

// verdict is what one SMTP transaction came to.
type verdict struct {
	err error // nil: the server took the message
	// keep: the session ended the transaction cleanly and may carry the next one.
	keep bool
	// stale: the session was dead before the server could have taken anything (MAIL
	// or RCPT failed without a reply, or with 421), so a new session may try again at
	// once without risking a duplicate.
	stale bool
}

// classify reads the outcome of send (nil or a *stepError) for a message to rcpt by
// the retry contract:
//
//   - accepted (250 to the end of DATA) is sent. Nothing follows the reply in the
//     transaction, so nothing can make it unsent;
//   - a 5xx reply is permanent: the server will refuse the message again;
//   - a 4xx reply (greylisting, a full mailbox, a busy server) is transient; 421 is
//     the server closing the session, which is dropped;
//   - no reply at all (a dropped connection, a timeout, a cut on cancel) is transient,
//     and the session is abandoned.
//
// The one ambiguous case is a connection lost after the message's final "." and
// before the server's reply: the server may have taken it. It is retried, so the
// recipient may get it twice, with the same Message-ID (at least once, never zero).
func classify(err error, rcpt string) verdict {
	if err == nil {
		return verdict{keep: true}
	}
	var se *stepError
	if !errors.As(err, &se) {
		return verdict{err: redact(err, rcpt)}
	}
	err = redact(err, rcpt)
	switch code := reply(se.err); {
	case code == 0 || code == 421:
		// A server that timed an idle session out closes it, often with a 421 first;
		// the first command of the next transaction meets either.
		return verdict{err: err, stale: se.step.beforeData()}
	case code >= 500:
		return verdict{err: channels.Permanent(err), keep: endsCleanly(se)}
	case code >= 400:
		return verdict{err: err, keep: endsCleanly(se)}
	default:
		// A reply out of sequence: the session is in an unknown state.
		return verdict{err: err}
	}
}

// endsCleanly reports the refusals after which the session is ready for the next
// transaction: the RSET after a refused MAIL or RCPT went through, or the refusal is
// the reply to the end of DATA, which ends the transaction. A refused DATA command
// leaves MAIL and RCPT standing.
func endsCleanly(e *stepError) bool {
	switch e.step {
	case stepMail, stepRcpt:
		return e.reset == nil
	case stepEnd:
		return true
	}
	return false
}

// redacted is an error whose text no longer carries the recipient's address (servers
// often quote it in their replies), because the router logs
// errors and writes them into dead letters and delivery status. errors.As still
// finds the original.
type redacted struct {
	text string
	err  error
}

func (e *redacted) Error() string { return e.text }
func (e *redacted) Unwrap() error { return e.err }

func redact(err error, addr string) error {
	text := err.Error()
	if addr == "" || !strings.Contains(text, addr) {
		return err
	}
	return &redacted{text: strings.ReplaceAll(text, addr, maskAddress(addr)), err: err}
}

// maskAddress keeps the first character of the local part and the domain:
// ann@example.com is a***@example.com.
func maskAddress(addr string) string {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		return "***"
	}
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}

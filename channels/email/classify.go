package email

import (
	"errors"
	"strings"

	"github.com/wneessen/go-mail"

	"github.com/kommo-notify/notify/channels"
)

// verdict is what one SMTP transaction came to.
type verdict struct {
	err error // nil: the server took the message
	// keep: the session ended the transaction cleanly and may carry the next one.
	keep bool
	// stale: the session was dead before the server could have taken anything (the
	// NOOP before MAIL, or MAIL or RCPT, failed without a reply), so a new session
	// may try again at once without risking a duplicate.
	stale bool
	// afterData: the server accepted the message and a later step failed.
	afterData bool
}

// classify reads go-mail's answer for msg, sent to rcpt, by the retry contract:
//
//   - accepted (250 to the end of DATA) is sent, even if the RSET go-mail sends
//     afterwards to reuse the session fails: msg.IsDelivered is set before that
//     RSET, and sending again would deliver twice;
//   - a 5xx reply is permanent: the server will refuse the message again;
//   - a 4xx reply (greylisting, a full mailbox, a busy server) is transient;
//   - no reply at all (code 0: a dropped connection, a timeout, a cut on cancel) is
//     transient, and the session is abandoned. go-mail reports these with
//     IsTemp() == false, which is why the code decides, not IsTemp.
//
// The one ambiguous case is a connection lost after the message's final "." and
// before the server's reply: the server may have taken it. It is retried, so the
// recipient may get it twice, with the same Message-ID (at least once, never zero).
func classify(err error, msg *mail.Msg, rcpt string) verdict {
	if err == nil {
		return verdict{keep: true}
	}
	if msg.IsDelivered() {
		return verdict{afterData: true}
	}
	var se *mail.SendError
	if !errors.As(err, &se) {
		return verdict{err: redact(err, rcpt)}
	}
	err = redact(err, rcpt)
	switch code := se.ErrorCode(); {
	case code >= 500:
		return verdict{err: channels.Permanent(err), keep: endsCleanly(se.Reason)}
	case code >= 400:
		// 421 is the server closing the session.
		return verdict{err: err, keep: code != 421 && endsCleanly(se.Reason)}
	default:
		return verdict{err: err, stale: beforeData(se.Reason)}
	}
}

// endsCleanly reports the failures after which the session is ready for the next
// transaction: go-mail sends RSET after a refused MAIL or RCPT, and the reply to the
// end of DATA ends the transaction. A refused DATA command leaves MAIL and RCPT
// standing, and anything else leaves the session in an unknown state.
func endsCleanly(r mail.SendErrReason) bool {
	return r == mail.ErrSMTPMailFrom || r == mail.ErrSMTPRcptTo || r == mail.ErrSMTPDataClose
}

// beforeData reports the steps before which the server has taken nothing.
func beforeData(r mail.SendErrReason) bool {
	return r == mail.ErrConnCheck || r == mail.ErrSMTPMailFrom || r == mail.ErrSMTPRcptTo
}

// redacted is an error whose text no longer carries the recipient's address (go-mail
// lists the affected recipients, servers often quote them), because the router logs
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

package email

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// step is a command of the mail transaction, named in errors.
type step string

const (
	stepMail    step = "MAIL FROM"
	stepRcpt    step = "RCPT TO"
	stepData    step = "DATA"
	stepContent step = "message content"
	stepEnd     step = "end of DATA" // the final "." and the server's verdict
)

// beforeData reports the steps before which the server has taken nothing.
func (s step) beforeData() bool { return s == stepMail || s == stepRcpt }

// stepError is a failed step of a transaction. err is a *textproto.Error when the
// server replied, and otherwise what the connection reported.
type stepError struct {
	step  step
	err   error
	reset error // the RSET after a refused MAIL or RCPT failed: the session is lost
}

func (e *stepError) Error() string {
	text := string(e.step) + ": " + e.err.Error()
	if e.reset != nil {
		text += " (then RSET: " + e.reset.Error() + ")"
	}
	return text
}

func (e *stepError) Unwrap() error { return e.err }

// reply is the server's reply code in err, 0 when the server did not reply.
func reply(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// envelope is a message's SMTP envelope, taken from the Msg as go-mail takes it: the
// envelope sender, else From; every To, Cc and Bcc address, each as "<addr>". compose
// sets neither DSN options nor DKIM, and its parts are quoted-printable (8BITMIME is
// not needed, though MAIL declares it where advertised, as go-mail's does).
type envelope struct {
	from string
	to   []string
}

// errLineBreak is an envelope address with CR or LF, which would end its command
// line early and smuggle in another one.
var errLineBreak = errors.New("an address contains CR or LF")

// envelopeOf is msg's envelope. It refuses addresses with CR or LF, as go-mail's Mail
// and Rcpt do, so neither transaction path writes a line the server would split.
func envelopeOf(msg *mail.Msg) (envelope, error) {
	from, err := msg.GetSender(false)
	if err != nil {
		return envelope{}, err
	}
	to, err := msg.GetRecipients()
	if err != nil {
		return envelope{}, err
	}
	env := envelope{from: from, to: to}
	return env, env.check()
}

func (e envelope) check() error {
	if strings.ContainsAny(e.from, "\r\n") {
		return errLineBreak
	}
	for _, rcpt := range e.to {
		if strings.ContainsAny(rcpt, "\r\n") {
			return errLineBreak
		}
	}
	return nil
}

// send runs one mail transaction on the open session: MAIL, a RCPT per recipient,
// DATA, the message and its final ".". The server's reply to that "." ends the
// transaction (RFC 5321 4.1.1.4), so an accepted message is followed by nothing: the
// next MAIL starts the next transaction. Nor is the session probed before MAIL: one
// that died while idle fails MAIL or RCPT, before the server could take anything,
// and the caller redials (see classify).
//
// A server that advertises PIPELINING gets MAIL, the RCPTs and DATA in one write
// (see pipelined); any other gets them one by one, each after the previous reply.
// Either way the first failing reply names the step, and a refused MAIL or RCPT
// leaves a transaction open on a live session that RSET closes, so the session can
// carry the next message. The error is a *stepError.
func (c *conn) send(msg *mail.Msg, env envelope) error {
	s := c.session
	// go-mail sets the backstop deadline when it dials; it runs per transaction so
	// that a session idle for longer stays usable.
	if err := s.UpdateDeadline(c.backstop); err != nil {
		return &stepError{step: stepMail, err: err}
	}
	if ok, _ := s.Extension("PIPELINING"); ok {
		return pipelined(s, msg, env)
	}
	if err := s.Mail(env.from); err != nil {
		return refused(s, stepMail, err)
	}
	for _, rcpt := range env.to {
		if err := s.Rcpt(rcpt); err != nil {
			return refused(s, stepRcpt, err)
		}
	}
	w, err := s.Data()
	if err != nil {
		return &stepError{step: stepData, err: err}
	}
	if _, err := msg.WriteTo(w); err != nil {
		return &stepError{step: stepContent, err: err}
	}
	if err := w.Close(); err != nil {
		return &stepError{step: stepEnd, err: err}
	}
	return nil
}

// pipelined is send on a session that advertised PIPELINING (RFC 2920): MAIL, every
// RCPT and DATA go out in one flush, then their replies are read in order, every one
// of them so that the session stays in step. Only after 354 does the message follow,
// with its final "." in the same write, and the server's verdict is read. That is two
// round trips a message instead of three plus one per recipient.
//
// The lines are those go-mail's Mail and Rcpt write (see mailParams); envelopeOf
// refused addresses that would break them.
func pipelined(s *smtp.Client, msg *mail.Msg, env envelope) error {
	w := s.Text.W
	_, _ = w.WriteString("MAIL FROM:")
	_, _ = w.WriteString(env.from)
	_, _ = w.WriteString(mailParams(s))
	_, _ = w.WriteString("\r\n")
	for _, rcpt := range env.to {
		_, _ = w.WriteString("RCPT TO:")
		_, _ = w.WriteString(rcpt)
		_, _ = w.WriteString("\r\n")
	}
	_, _ = w.WriteString("DATA\r\n")
	if err := w.Flush(); err != nil { // a bufio.Writer keeps its first error
		return &stepError{step: stepMail, err: err}
	}

	// The first failing reply decides the step. A reply that says the session is gone
	// (none at all, or 421) ends the reading: nothing further can arrive.
	var failed *stepError
	if _, _, err := s.Text.ReadResponse(250); err != nil {
		if gone(err) {
			return &stepError{step: stepMail, err: err}
		}
		failed = &stepError{step: stepMail, err: err}
	}
	taken := 0 // recipients accepted
	for range env.to {
		_, _, err := s.Text.ReadResponse(25)
		if err == nil {
			taken++
			continue
		}
		switch {
		case failed == nil && gone(err):
			return &stepError{step: stepRcpt, err: err}
		case failed == nil:
			failed = &stepError{step: stepRcpt, err: err}
		case gone(err):
			return lost(failed, stepRcpt, err)
		}
	}
	_, _, err := s.Text.ReadResponse(354)
	switch {
	case failed == nil && err != nil:
		return &stepError{step: stepData, err: err}
	case failed == nil:
		return writeMessage(s, msg)
	case err != nil && gone(err):
		return lost(failed, stepData, err)
	case err != nil:
		// The expected end of a failed group: DATA refused for want of a sender or
		// recipients. MAIL and RCPT may still stand; RSET clears them.
		return refused(s, failed.step, failed.err)
	case taken > 0:
		// 354 with some recipients taken but not all: an empty message would reach
		// them, so the session is abandoned instead, and with it the transaction.
		failed.reset = errors.New("not sent: DATA was accepted with recipients missing, session abandoned")
		return failed
	default:
		// 354 although the server took no sender or no recipient, which RFC 2920
		// forbids. The lone "." ends an empty message that has nowhere to go; its reply,
		// whatever it is, is read, and RSET clears whatever stands.
		_, _ = w.WriteString(".\r\n")
		if err := w.Flush(); err != nil {
			return lost(failed, stepEnd, err)
		}
		if _, _, err := s.Text.ReadResponse(2); err != nil && gone(err) {
			return lost(failed, stepEnd, err)
		}
		failed.reset = s.Reset()
		return failed
	}
}

// writeMessage writes the message after the server's 354, ends it with "." in the
// same flush, and reads the verdict.
func writeMessage(s *smtp.Client, msg *mail.Msg) error {
	dw := s.Text.DotWriter()
	if _, err := msg.WriteTo(dw); err != nil {
		return &stepError{step: stepContent, err: err}
	}
	if err := dw.Close(); err != nil { // the final "." and the flush
		return &stepError{step: stepEnd, err: err}
	}
	if _, _, err := s.Text.ReadResponse(250); err != nil {
		return &stepError{step: stepEnd, err: err}
	}
	return nil
}

// mailParams are the parameters go-mail's Mail adds to MAIL FROM: BODY=8BITMIME and
// SMTPUTF8 when the server advertises them (newConn does not ask go-mail to skip
// SMTPUTF8), and no RET= (no DSN is requested).
func mailParams(s *smtp.Client) string {
	var p string
	if ok, _ := s.Extension("8BITMIME"); ok {
		p += " BODY=8BITMIME"
	}
	if ok, _ := s.Extension("SMTPUTF8"); ok {
		p += " SMTPUTF8"
	}
	return p
}

// gone reports a reply that leaves the session unusable: none (the connection
// failed) or 421 (the server is closing it).
func gone(err error) bool {
	code := reply(err)
	return code == 0 || code == 421
}

// lost marks the earlier failure e as one that cost the session: a later reply of its
// group, at step at, never came or was 421, so no RSET can follow.
func lost(e *stepError, at step, err error) *stepError {
	e.reset = fmt.Errorf("not sent, the session ended at %s: %w", at, err)
	return e
}

// refused is the error of a failed MAIL or RCPT, after the RSET that clears the
// transaction when the server refused with a 4xx or 5xx. Without a reply, or with
// 421 (the server is closing the session), the session is lost and RSET is moot.
func refused(s *smtp.Client, at step, err error) error {
	e := &stepError{step: at, err: err}
	if code := reply(err); code >= 400 && code != 421 {
		e.reset = s.Reset()
	}
	return e
}

package email

import (
	"errors"
	"net/textproto"

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
// envelope sender, else From; every To, Cc and Bcc address. compose sets neither DSN
// options nor DKIM, and its parts are quoted-printable (no 8BITMIME needed).
type envelope struct {
	from string
	to   []string
}

func envelopeOf(msg *mail.Msg) (envelope, error) {
	from, err := msg.GetSender(false)
	if err != nil {
		return envelope{}, err
	}
	to, err := msg.GetRecipients()
	if err != nil {
		return envelope{}, err
	}
	return envelope{from: from, to: to}, nil
}

// send runs one mail transaction on the open session: MAIL, a RCPT per recipient,
// DATA, the message and its final ".". The server's reply to that "." ends the
// transaction (RFC 5321 4.1.1.4), so an accepted message is followed by nothing: the
// next MAIL starts the next transaction. Nor is the session probed before MAIL: one
// that died while idle fails MAIL or RCPT, before the server could take anything,
// and the caller redials (see classify).
//
// A refused MAIL or RCPT leaves a transaction open on a live session; RSET closes it
// so the session can carry the next message. The error is a *stepError.
func (c *conn) send(msg *mail.Msg, env envelope) error {
	s := c.session
	// go-mail sets the backstop deadline when it dials; it runs per transaction so
	// that a session idle for longer stays usable.
	if err := s.UpdateDeadline(c.backstop); err != nil {
		return &stepError{step: stepMail, err: err}
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

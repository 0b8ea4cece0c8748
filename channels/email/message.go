package email

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
	"golang.org/x/net/idna"

	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/events"
)

// Headers set on every message besides the usual ones.
const (
	// headerAutoSubmitted (RFC 3834) tells vacation responders and ticket systems not
	// to answer: nobody reads the sender's mailbox.
	headerAutoSubmitted mail.Header = "Auto-Submitted"
	// headerEventID names the event, for support and for filtering.
	headerEventID mail.Header = "X-Notify-Event-Id"
	headerType    mail.Header = "X-Notify-Type"
)

// compose builds ev's message for one recipient. Everything in it derives from the
// event and the profile, so a resend is byte-for-byte the same message apart from the
// MIME boundaries, with the same Message-ID.
func (s *Sender) compose(ev *events.Event, user string, p directory.Profile) (*mail.Msg, error) {
	c, err := s.render.render(ev, p.Locale)
	if err != nil {
		return nil, err
	}
	m := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := m.From(s.from.String()); err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	// The setters parse what they get and refuse CR and LF, so nothing here can add
	// a header; net/mail quotes or encodes the display name as it needs.
	to := netmail.Address{Name: oneLine(p.Name), Address: p.Email}
	if err := m.To(to.String()); err != nil {
		// go-mail's error repeats the address; the recipient's user id is enough.
		return nil, fmt.Errorf("the address of user %s is not valid", user)
	}
	m.Subject(c.Subject) // encoded as RFC 2047 words when it needs to be
	m.SetMessageIDWithValue(messageID(ev.ID, ev.Account, user, s.domain))
	date := ev.Accepted
	if date.IsZero() {
		date = time.Now()
	}
	m.SetDateWithValue(date)
	m.SetGenHeader(headerAutoSubmitted, "auto-generated")
	m.SetGenHeader(mail.HeaderXAutoResponseSuppress, "All") // Exchange's out-of-office
	m.SetGenHeader(headerEventID, ev.ID)                    // printable ASCII, no spaces (events.CheckID)
	m.SetGenHeader(headerType, string(ev.Type))
	m.SetBodyString(mail.TypeTextPlain, c.Text)
	m.AddAlternativeString(mail.TypeTextHTML, c.HTML)
	return m, nil
}

// messageID is the stable id of the message of one event for one recipient:
// sha256(event id, account, user) cut to 128 bits, at the sender's domain. A retry
// after an ambiguous failure carries the same id, so mail clients and the recipient
// can tell a resend from a new notification.
func messageID(eventID, account, user, domain string) string {
	h := sha256.New()
	for _, part := range []string{eventID, account, user} {
		h.Write([]byte(part))
		h.Write([]byte{0}) // no two different triples hash the same bytes
	}
	return hex.EncodeToString(h.Sum(nil)[:16]) + "@" + domain
}

// idDomain is the right-hand side of Message-IDs: the sender's domain, in ASCII.
func idDomain(from *netmail.Address) string {
	_, domain, _ := strings.Cut(from.Address, "@")
	if ascii, err := idna.Lookup.ToASCII(domain); err == nil && ascii != "" {
		return strings.ToLower(ascii)
	}
	return "notify.invalid"
}

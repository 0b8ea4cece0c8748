package push

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"

	"firebase.google.com/go/v4/messaging"

	"github.com/kommo-notify/notify/events"
)

// Default titles of a notification without a header.
const (
	titleError = "Error"
	titleCall  = "Incoming call"
)

// maxBody bounds the notification body in bytes. FCM and APNs take 4 KB for the whole
// payload, and a phone shows a few lines: a 4,096-character text is cut at a
// character boundary with an ellipsis.
const maxBody = 1024

// Data keys of a push message. The contract's `from` is sent as call_from: FCM refuses
// `from` as a data key (it is reserved for the sender id the device sees).
const (
	dataType        = "type"
	dataID          = "id"
	dataClick       = "click"
	dataFrom        = "call_from"
	dataTo          = "to"
	dataElementType = "element_type"
	dataElementID   = "element_id"
)

// elementSections are the CRM sections of an add_call's element types.
var elementSections = map[string]string{
	events.ElementContact: "contacts",
	events.ElementLead:    "leads",
	events.ElementCompany: "companies",
}

// content is what a notification says, whatever the platform.
type content struct {
	title, body, click string
	data               map[string]string
	call               bool
}

// content renders ev's payload: the title (its header or the type's default), the
// body (the plain-text rendering of text), the click URL of the center item and the
// data map.
func (s *Sender) content(ev *events.Event) content {
	c := content{data: map[string]string{dataType: string(ev.Type), dataID: ev.ID}}
	switch p := ev.Payload.(type) {
	case *events.AddErrorPayload:
		c.title, c.body, c.click = or(p.Header, titleError), p.Text, s.absolute(p.Link)
	case *events.AddCallPayload:
		c.title, c.body, c.click, c.call = or(p.Header, titleCall), p.Text, s.absolute(p.Link), true
		if p.Element != nil {
			if section, ok := elementSections[p.Element.Type]; ok {
				c.click = s.cfg.BaseURL + "/" + section + "/detail/" + strconv.FormatInt(p.Element.ID, 10)
			}
			c.data[dataElementType] = p.Element.Type
			c.data[dataElementID] = strconv.FormatInt(p.Element.ID, 10)
		}
		setIf(c.data, dataFrom, p.From)
		setIf(c.data, dataTo, p.To)
	}
	c.body = truncate(events.PlainText(c.body), maxBody)
	c.data[dataClick] = c.click
	return c
}

// message is the FCM message of ev to tokens: a notification with data, set up to
// ring on Android (high priority, the type's channel, a sound) and iOS (priority 10,
// an alert with a sound). A resent notification replaces the one shown, through the
// Android tag and the apns-collapse-id; a call also has a collapse key, so a phone
// that was offline gets its latest state rather than every copy.
func (s *Sender) message(ev *events.Event, tokens []string) *messaging.MulticastMessage {
	c := s.content(ev)
	key := collapseKey(ev.ID)
	android := &messaging.AndroidConfig{
		Priority: "high",
		Notification: &messaging.AndroidNotification{
			ChannelID: s.cfg.ErrorChannel,
			Sound:     s.cfg.Sound,
			Tag:       key,
			Priority:  messaging.PriorityHigh,
		},
	}
	aps := &messaging.Aps{Sound: s.cfg.Sound, ThreadID: string(ev.Type)}
	if c.call {
		android.CollapseKey = key
		android.Notification.ChannelID = s.cfg.CallChannel
		android.Notification.Priority = messaging.PriorityMax
		// A call breaks through a Focus that allows time-sensitive notifications.
		aps.CustomData = map[string]any{"interruption-level": "time-sensitive"}
	}
	webpush := &messaging.WebpushConfig{Headers: map[string]string{"Urgency": "high"}}
	if strings.HasPrefix(c.click, "https://") { // FCM takes only https links for web push
		webpush.FCMOptions = &messaging.WebpushFCMOptions{Link: c.click}
	}
	return &messaging.MulticastMessage{
		Tokens:       tokens,
		Notification: &messaging.Notification{Title: c.title, Body: c.body},
		Data:         c.data,
		Android:      android,
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{
				"apns-priority":    "10",
				"apns-push-type":   "alert",
				"apns-collapse-id": key,
			},
			Payload: &messaging.APNSPayload{Aps: aps},
		},
		Webpush: webpush,
	}
}

// absolute resolves a validated link: a path against the base URL; an absolute URL
// stays as it is.
func (s *Sender) absolute(link string) string {
	if events.IsPath(link) {
		return s.cfg.BaseURL + link
	}
	return link
}

// collapseKey derives a notification's replacement key from its event id: the same
// for every copy of one event, 37 bytes whatever the id (apns-collapse-id takes 64).
func collapseKey(eventID string) string {
	sum := sha256.Sum256([]byte(eventID))
	return "notify-" + hex.EncodeToString(sum[:15])
}

// truncate cuts s to at most n bytes at a character boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimRight(s[:cut], " \n") + ellipsis
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func setIf(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

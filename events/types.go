package events

import "slices"

// Type names one of the five notification kinds of the widget API.
type Type string

// The five notification types. The names are the widget API's method names, so a
// subject or URL carries exactly what widget code calls.
const (
	ShowMessage      Type = "show_message"
	ShowMessageError Type = "show_message_error"
	ShowNotification Type = "show_notification"
	AddError         Type = "add_error"
	AddCall          Type = "add_call"
)

var allTypes = []Type{ShowMessage, ShowMessageError, ShowNotification, AddError, AddCall}

// Types returns every notification type, pop-ups first.
func Types() []Type { return slices.Clone(allTypes) }

// ParseType returns the type named s, or false when s names none.
func ParseType(s string) (Type, bool) {
	t := Type(s)
	return t, slices.Contains(allTypes, t)
}

// Durable reports whether events of this type are kept in JetStream and fanned out to
// the notification center, email and push (add_*), as opposed to pop-ups that live only
// in open browser tabs (show_*).
func (t Type) Durable() bool { return t == AddError || t == AddCall }

func (t Type) String() string { return string(t) }

// Payload is a validated notification body: one of *ShowMessagePayload,
// *ShowMessageErrorPayload, *ShowNotificationPayload, *AddErrorPayload or *AddCallPayload.
// Its JSON encoding is the canonical form that is stored and sent everywhere.
type Payload interface {
	// Type is the notification type the payload belongs to.
	Type() Type
	// Unix is the notification's date in Unix seconds (always set after validation).
	Unix() int64
}

// ShowMessagePayload is the body of show_message: an information pop-up.
type ShowMessagePayload struct {
	Header string `json:"header"`
	Text   string `json:"text"`
	Date   int64  `json:"date"`
	Icon   string `json:"icon,omitempty"`
}

// ShowMessageErrorPayload is the body of show_message_error: an error pop-up with an
// optional link followed on click.
type ShowMessageErrorPayload struct {
	Header string `json:"header"`
	Text   string `json:"text"`
	Date   int64  `json:"date"`
	Link   string `json:"link,omitempty"`
}

// NotificationText is the nested header and text of show_notification.
type NotificationText struct {
	Header string `json:"header"`
	Text   string `json:"text"`
}

// Notification kinds of show_notification.
const (
	KindCall  = "call"
	KindError = "error"
)

// ShowNotificationPayload is the body of show_notification: a pop-up of kind call or error.
type ShowNotificationPayload struct {
	Text NotificationText `json:"text"`
	Date int64            `json:"date"`
	Kind string           `json:"type"` // KindCall or KindError; "type" on the wire, as in the widget API
}

// AddErrorPayload is the body of add_error: an error kept in the notification center and
// sent to every active channel.
type AddErrorPayload struct {
	Header string `json:"header,omitempty"`
	Text   string `json:"text"`
	Date   int64  `json:"date"`
	Link   string `json:"link,omitempty"`
}

// Element types an add_call can point at.
const (
	ElementContact = "contact"
	ElementLead    = "lead"
	ElementCompany = "company"
)

// Element is the CRM entity an add_call opens when clicked.
type Element struct {
	ID   int64  `json:"id"`
	Type string `json:"type"` // ElementContact, ElementLead or ElementCompany
}

// AddCallPayload is the body of add_call: an incoming call kept in the notification
// center and sent to every active channel.
type AddCallPayload struct {
	Text     string   `json:"text"`
	Date     int64    `json:"date"`
	Header   string   `json:"header,omitempty"`
	From     string   `json:"from,omitempty"`
	To       string   `json:"to,omitempty"`
	Element  *Element `json:"element,omitempty"`
	Link     string   `json:"link,omitempty"`     // the call recording, an absolute http(s) URL
	Duration *int64   `json:"duration,omitempty"` // seconds; a pointer because 0 is a valid duration
}

func (*ShowMessagePayload) Type() Type      { return ShowMessage }
func (*ShowMessageErrorPayload) Type() Type { return ShowMessageError }
func (*ShowNotificationPayload) Type() Type { return ShowNotification }
func (*AddErrorPayload) Type() Type         { return AddError }
func (*AddCallPayload) Type() Type          { return AddCall }

func (p *ShowMessagePayload) Unix() int64      { return p.Date }
func (p *ShowMessageErrorPayload) Unix() int64 { return p.Date }
func (p *ShowNotificationPayload) Unix() int64 { return p.Date }
func (p *AddErrorPayload) Unix() int64         { return p.Date }
func (p *AddCallPayload) Unix() int64          { return p.Date }

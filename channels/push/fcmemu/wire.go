package fcmemu

import (
	"encoding/json"
	"time"
)

// Message is the part of an FCM v1 message (projects.messages) the emulator reads,
// as it arrived. Raw keeps the whole message for anything not modelled here.
type Message struct {
	Token        string            `json:"token,omitempty"`
	Topic        string            `json:"topic,omitempty"`
	Condition    string            `json:"condition,omitempty"`
	Notification *Notification     `json:"notification,omitempty"`
	Data         map[string]string `json:"data,omitempty"`
	Android      *Android          `json:"android,omitempty"`
	APNS         *APNS             `json:"apns,omitempty"`
	Webpush      *Webpush          `json:"webpush,omitempty"`
	Raw          json.RawMessage   `json:"raw"`
}

// Notification is the cross-platform notification.
type Notification struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
	Image string `json:"image,omitempty"`
}

// Android is message.android.
type Android struct {
	CollapseKey  string               `json:"collapse_key,omitempty"`
	Priority     string               `json:"priority,omitempty"`
	TTL          string               `json:"ttl,omitempty"`
	Data         map[string]string    `json:"data,omitempty"`
	Notification *AndroidNotification `json:"notification,omitempty"`
}

// AndroidNotification is message.android.notification.
type AndroidNotification struct {
	Title                string `json:"title,omitempty"`
	Body                 string `json:"body,omitempty"`
	ChannelID            string `json:"channel_id,omitempty"`
	Sound                string `json:"sound,omitempty"`
	Tag                  string `json:"tag,omitempty"`
	ClickAction          string `json:"click_action,omitempty"`
	NotificationPriority string `json:"notification_priority,omitempty"`
	Visibility           string `json:"visibility,omitempty"`
}

// APNS is message.apns: the headers sent to APNs and the payload (with its "aps").
type APNS struct {
	Headers map[string]string `json:"headers,omitempty"`
	Payload map[string]any    `json:"payload,omitempty"`
}

// Aps is the payload's "aps" dictionary, or nil.
func (a *APNS) Aps() map[string]any {
	if a == nil {
		return nil
	}
	aps, _ := a.Payload["aps"].(map[string]any)
	return aps
}

// Webpush is message.webpush.
type Webpush struct {
	Headers    map[string]string `json:"headers,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
	FCMOptions *struct {
		Link string `json:"link,omitempty"`
	} `json:"fcm_options,omitempty"`
}

// Received is one message the emulator accepted.
type Received struct {
	Name       string    `json:"name"` // projects/<project>/messages/<id>, as answered
	Project    string    `json:"project"`
	Message    Message   `json:"message"`
	ReceivedAt time.Time `json:"received_at"`
}

// sendRequest is the body of messages:send.
type sendRequest struct {
	ValidateOnly bool            `json:"validate_only"`
	Message      json.RawMessage `json:"message"`
}

// messageFields are the members of a v1 message; FCM refuses any other, so a typo in
// a sender's payload fails here as it would there.
var messageFields = map[string]bool{
	"name": true, "data": true, "notification": true, "android": true, "webpush": true,
	"apns": true, "fcm_options": true, "token": true, "topic": true, "condition": true,
}

// fcmError is FCM's error body: the Google API error with an FcmError detail.
type fcmError struct {
	Error errorStatus `json:"error"`
}

type errorStatus struct {
	Code    int           `json:"code"`
	Message string        `json:"message"`
	Status  string        `json:"status"`
	Details []errorDetail `json:"details,omitempty"`
}

type errorDetail struct {
	Type            string           `json:"@type"`
	ErrorCode       string           `json:"errorCode,omitempty"`
	FieldViolations []fieldViolation `json:"fieldViolations,omitempty"`
}

type fieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// Detail types of FCM's error bodies.
const (
	fcmErrorType   = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
	badRequestType = "type.googleapis.com/google.rpc.BadRequest"
)

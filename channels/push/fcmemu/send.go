package fcmemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits FCM applies to a message.
const (
	maxPayload     = 4096 // bytes of data plus notification title and body
	maxAPNSPayload = 4096 // bytes of the APNs payload
	maxTokenLen    = 4096
	maxCollapseID  = 64 // bytes of apns-collapse-id
	maxRequestBody = 1 << 20
)

var (
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9_:-]+$`)
	topicRe = regexp.MustCompile(`^[a-zA-Z0-9-_.~%]{1,900}$`)
	ttlRe   = regexp.MustCompile(`^\d+(\.\d{1,9})?s$`)
)

// reservedDataKeys are refused in data: FCM sets them itself on the device.
var reservedDataKeys = []string{"from", "message_type"}

var (
	androidPriorities      = []string{"NORMAL", "HIGH"}
	notificationPriorities = []string{"PRIORITY_UNSPECIFIED", "PRIORITY_MIN", "PRIORITY_LOW", "PRIORITY_DEFAULT", "PRIORITY_HIGH", "PRIORITY_MAX"}
	visibilities           = []string{"VISIBILITY_UNSPECIFIED", "PRIVATE", "PUBLIC", "SECRET"}
	apnsPriorities         = []string{"1", "5", "10"}
	apnsPushTypes          = []string{"alert", "background", "voip", "complication", "fileprovider", "mdm", "liveactivity", "location", "pushtotalk"}
)

// serveSend is POST /v1/projects/{project}/messages:send.
func (e *Emulator) serveSend(w http.ResponseWriter, r *http.Request) {
	if !e.wait(r) {
		return
	}
	project := r.PathValue("project")
	failed := true
	defer func() { e.count(failed) }()
	if e.opts.Project != "" && project != e.opts.Project {
		writeAPIError(w, http.StatusForbidden, "PERMISSION_DENIED",
			fmt.Sprintf("Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/%s' (or it may not exist).", project))
		return
	}
	if !e.authorized(r) {
		writeCode(w, Unauthenticated, 0)
		return
	}
	var req sendRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeInvalid(w, "", "Invalid JSON payload received. "+err.Error())
		return
	}
	msg, field, problem := parseMessage(req.Message)
	if problem != "" {
		if field == "message.token" {
			writeCode(w, InvalidArgument, 0)
		} else {
			writeInvalid(w, field, problem)
		}
		return
	}
	if rule, ok := e.scripted(msg.Token); ok {
		writeCode(w, rule.Error, rule.RetryAfter)
		return
	}
	failed = false
	if req.ValidateOnly {
		writeJSON(w, http.StatusOK, map[string]string{"name": "projects/" + project + "/messages/fake_message_id"})
		return
	}
	now := e.opts.Now()
	name := fmt.Sprintf("projects/%s/messages/0:%d%%%x", project, now.UnixMilli(), e.ids.Add(1))
	e.record(Received{Name: name, Project: project, Message: msg, ReceivedAt: now})
	writeJSON(w, http.StatusOK, map[string]string{"name": name})
}

// wait holds the request for the configured latency; false if the client left.
func (e *Emulator) wait(r *http.Request) bool {
	d := time.Duration(e.latency.Load())
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// parseMessage decodes and checks a message as FCM does. On a refusal it returns the
// field at fault and FCM's description of the problem.
func parseMessage(raw json.RawMessage) (_ Message, field, problem string) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return Message{}, "message", "Invalid JSON payload received. message must be an object."
	}
	for name := range members {
		if !messageFields[name] {
			return Message{}, "message", fmt.Sprintf("Invalid JSON payload received. Unknown name %q at 'message': Cannot find field.", name)
		}
	}
	var m Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return Message{}, "message", "Invalid JSON payload received. " + err.Error()
	}
	m.Raw = bytes.Clone(raw)
	if field, problem := m.check(); problem != "" {
		return Message{}, field, problem
	}
	return m, "", ""
}

// check applies FCM's rules for a message's target, data and platform options.
func (m *Message) check() (field, problem string) {
	targets := 0
	for _, t := range []string{m.Token, m.Topic, m.Condition} {
		if t != "" {
			targets++
		}
	}
	switch {
	case targets != 1:
		return "message", "Exactly one of message.token, message.topic or message.condition must be specified."
	case m.Token != "" && (len(m.Token) > maxTokenLen || !tokenRe.MatchString(m.Token)):
		return "message.token", msgInvalidToken
	case m.Topic != "" && !topicRe.MatchString(strings.TrimPrefix(m.Topic, "/topics/")):
		return "message.topic", "Invalid topic name."
	}
	if field, problem := checkData("message.data", m.Data); problem != "" {
		return field, problem
	}
	size := dataSize(m.Data)
	if n := m.Notification; n != nil {
		size += len(n.Title) + len(n.Body)
	}
	if size > maxPayload {
		return "message", "Message is too big"
	}
	if field, problem := m.Android.check(); problem != "" {
		return field, problem
	}
	return m.APNS.check()
}

func checkData(field string, data map[string]string) (string, string) {
	for k := range data {
		if k == "" || slices.Contains(reservedDataKeys, k) || strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.") {
			return field, "Invalid data payload key: " + k
		}
	}
	return "", ""
}

func dataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

func (a *Android) check() (field, problem string) {
	if a == nil {
		return "", ""
	}
	if a.Priority != "" && !slices.Contains(androidPriorities, strings.ToUpper(a.Priority)) {
		return "message.android.priority", fmt.Sprintf("Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), %q", a.Priority)
	}
	if a.TTL != "" && !ttlRe.MatchString(a.TTL) {
		return "message.android.ttl", fmt.Sprintf("Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration), %q", a.TTL)
	}
	if field, problem := checkData("message.android.data", a.Data); problem != "" {
		return field, problem
	}
	if dataSize(a.Data) > maxPayload {
		return "message.android", "Android message is too big"
	}
	if n := a.Notification; n != nil {
		if n.NotificationPriority != "" && !slices.Contains(notificationPriorities, n.NotificationPriority) {
			return "message.android.notification.notification_priority", fmt.Sprintf("Invalid value at 'message.android.notification.notification_priority', %q", n.NotificationPriority)
		}
		if n.Visibility != "" && !slices.Contains(visibilities, n.Visibility) {
			return "message.android.notification.visibility", fmt.Sprintf("Invalid value at 'message.android.notification.visibility', %q", n.Visibility)
		}
	}
	return "", ""
}

func (a *APNS) check() (field, problem string) {
	if a == nil {
		return "", ""
	}
	for k, v := range a.Headers {
		switch strings.ToLower(k) {
		case "apns-priority":
			if !slices.Contains(apnsPriorities, v) {
				return "message.apns.headers", "Invalid APNs priority: " + v
			}
		case "apns-push-type":
			if !slices.Contains(apnsPushTypes, v) {
				return "message.apns.headers", "Invalid APNs push type: " + v
			}
		case "apns-collapse-id":
			if len(v) > maxCollapseID {
				return "message.apns.headers", "apns-collapse-id may not be longer than 64 bytes"
			}
		case "apns-expiration":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return "message.apns.headers", "Invalid APNs expiration: " + v
			}
		}
	}
	if a.Payload == nil {
		return "", ""
	}
	if _, ok := a.Payload["aps"].(map[string]any); !ok {
		return "message.apns.payload", "APNs payload must have an aps dictionary"
	}
	if b, _ := json.Marshal(a.Payload); len(b) > maxAPNSPayload {
		return "message.apns.payload", "APNs message is too big"
	}
	return "", ""
}

package fcmemu

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ErrorCode is an FCM v1 error a Rule makes the emulator answer: the errorCode of
// the FcmError detail, except Unauthenticated, which is a bare Google API 401 (a
// revoked or wrong access token) without one.
type ErrorCode string

// The errors FCM answers to messages:send.
const (
	Unregistered        ErrorCode = "UNREGISTERED"           // 404: the app was uninstalled or the token expired
	InvalidArgument     ErrorCode = "INVALID_ARGUMENT"       // 400: here, a token that is not a valid FCM token
	SenderIDMismatch    ErrorCode = "SENDER_ID_MISMATCH"     // 403: the token belongs to another project
	QuotaExceeded       ErrorCode = "QUOTA_EXCEEDED"         // 429, with Retry-After
	Unavailable         ErrorCode = "UNAVAILABLE"            // 503
	Internal            ErrorCode = "INTERNAL"               // 500
	ThirdPartyAuthError ErrorCode = "THIRD_PARTY_AUTH_ERROR" // 401: the project's APNs or web push credentials
	Unauthenticated     ErrorCode = "UNAUTHENTICATED"        // 401: the sender's access token
)

// defaultQuotaRetryAfter is the Retry-After of a QUOTA_EXCEEDED whose rule gives none:
// FCM's quota is per minute.
const defaultQuotaRetryAfter = 60

// errorShapes are the HTTP status, the Google API status and the message FCM answers
// with for each error code.
var errorShapes = map[ErrorCode]struct {
	status  int
	grpc    string
	message string
}{
	Unregistered:        {http.StatusNotFound, "NOT_FOUND", "Requested entity was not found."},
	InvalidArgument:     {http.StatusBadRequest, "INVALID_ARGUMENT", msgInvalidToken},
	SenderIDMismatch:    {http.StatusForbidden, "PERMISSION_DENIED", "SenderId mismatch"},
	QuotaExceeded:       {http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute'."},
	Unavailable:         {http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable."},
	Internal:            {http.StatusInternalServerError, "INTERNAL", "Internal error encountered."},
	ThirdPartyAuthError: {http.StatusUnauthorized, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"},
	Unauthenticated:     {http.StatusUnauthorized, "UNAUTHENTICATED", msgUnauthenticated},
}

const (
	msgInvalidToken    = "The registration token is not a valid FCM registration token"
	msgUnauthenticated = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
)

// Known reports whether c is an error the emulator can answer with.
func (c ErrorCode) Known() bool {
	_, ok := errorShapes[c]
	return ok
}

// writeCode answers with the error c as FCM would, with a Retry-After of retryAfter
// seconds when it is above 0.
func writeCode(w http.ResponseWriter, c ErrorCode, retryAfter int) {
	shape := errorShapes[c]
	body := errorStatus{Code: shape.status, Message: shape.message, Status: shape.grpc}
	if c != Unauthenticated {
		body.Details = []errorDetail{{Type: fcmErrorType, ErrorCode: string(c)}}
	}
	if c == InvalidArgument {
		body.Details = append(body.Details, errorDetail{Type: badRequestType, FieldViolations: []fieldViolation{
			{Field: "message.token", Description: msgInvalidToken},
		}})
	}
	if c == QuotaExceeded && retryAfter <= 0 {
		retryAfter = defaultQuotaRetryAfter
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeStatus(w, body)
}

// writeInvalid answers 400 INVALID_ARGUMENT for a message FCM would refuse, naming
// the field at fault as FCM's BadRequest detail does.
func writeInvalid(w http.ResponseWriter, field, message string) {
	writeStatus(w, errorStatus{
		Code: http.StatusBadRequest, Message: message, Status: "INVALID_ARGUMENT",
		Details: []errorDetail{
			{Type: fcmErrorType, ErrorCode: string(InvalidArgument)},
			{Type: badRequestType, FieldViolations: []fieldViolation{{Field: field, Description: message}}},
		},
	})
}

// writeAPIError answers a Google API error without an FCM detail (authentication,
// permission, an unknown route).
func writeAPIError(w http.ResponseWriter, status int, grpc, message string) {
	writeStatus(w, errorStatus{Code: status, Message: message, Status: grpc})
}

func writeStatus(w http.ResponseWriter, s errorStatus) {
	writeJSON(w, s.Code, fcmError{Error: s})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

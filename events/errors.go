package events

import (
	"errors"
	"fmt"
)

// Error codes shared by every way in (HTTP, NATS request-reply, the producer client).
const (
	CodeInvalidJSON          = "invalid_json"
	CodeInvalidField         = "invalid_field"
	CodeUnknownType          = "unknown_type"
	CodeTooLarge             = "too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeRateLimited          = "rate_limited"
	CodeUnavailable          = "unavailable"
)

// Error is a rejected event or request: a code from the list above, the field it
// concerns (dotted path such as "element.type", empty when the whole body is at fault)
// and a message that names the rule. It marshals to the contract's error object body.
type Error struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// ErrorBody is the JSON envelope of an error on every interface: {"error":{...}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// FieldError returns an invalid_field error for the named field.
func FieldError(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidField, Field: field, Message: fmt.Sprintf(format, args...)}
}

// AsError is err as the contract's error object: the *Error it is or wraps, or else an
// invalid_field error of the body carrying err's message.
func AsError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Code: CodeInvalidField, Message: err.Error()}
}

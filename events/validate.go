package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// MaxBodySize is the largest payload accepted, in bytes.
const MaxBodySize = 64 << 10

// Length limits, in characters (Unicode code points).
const (
	MaxHeaderLen = 256  // header, text.header, from, to
	MaxTextLen   = 4096 // text, text.text; see textLen for how HTML is counted
)

// Validate checks body as the payload of a t notification and returns it validated
// and sanitized, with one warning per member it dropped, sorted: unknown fields and
// repeated ones. now is when the event was accepted: the date of a payload without
// one, and the reference of "no more than a day ahead".
//
// The error is an *Error: unknown_type, too_large, invalid_json (not a JSON object,
// malformed, invalid UTF-8) or invalid_field, naming the first field at fault in the
// order the contract lists them and the rule it breaks.
//
// The payload's JSON encoding validates to an equal payload, so a payload accepted
// once is accepted again wherever it travels next, as long as now does not go back.
// The warnings are never nil on success, so they encode as [].
func Validate(t Type, body []byte, now time.Time) (Payload, []string, error) {
	rules, ok := payloadRules[t]
	if !ok {
		return nil, nil, unknownTypeError()
	}
	if len(body) > MaxBodySize {
		return nil, nil, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("body must be at most %d bytes", MaxBodySize)}
	}
	if !utf8.Valid(body) {
		return nil, nil, &Error{Code: CodeInvalidJSON, Message: "body must be valid UTF-8"}
	}
	v := &validation{now: now}
	members, err := v.parse("", body)
	if err != nil {
		return nil, nil, &Error{Code: CodeInvalidJSON, Message: err.Error()}
	}
	p := rules(v.object("", members))
	if v.err != nil {
		return nil, nil, v.err
	}
	return p, v.finish(), nil
}

func unknownTypeError() *Error {
	return &Error{Code: CodeUnknownType, Field: "type", Message: "must be one of show_message, show_message_error, show_notification, add_error, add_call"}
}

// payloadRules reads each type's fields in the order the contract lists them, which
// decides which error a payload with several faults gets.
var payloadRules = map[Type]func(*object) Payload{
	ShowMessage: func(o *object) Payload {
		return &ShowMessagePayload{
			Header: o.plain("header", required, MaxHeaderLen),
			Text:   o.text("text"),
			Date:   o.date("date"),
			Icon:   o.link("icon", CheckURL),
		}
	},
	ShowMessageError: func(o *object) Payload {
		return &ShowMessageErrorPayload{
			Header: o.plain("header", required, MaxHeaderLen),
			Text:   o.text("text"),
			Date:   o.date("date"),
			Link:   o.link("link", CheckLink),
		}
	},
	ShowNotification: func(o *object) Payload {
		p := &ShowNotificationPayload{}
		if text := o.object("text", required); text != nil {
			p.Text.Header = text.plain("header", required, MaxHeaderLen)
			p.Text.Text = text.text("text")
		}
		p.Date = o.date("date")
		p.Kind = o.oneOf("type", "must be call or error", KindCall, KindError)
		return p
	},
	AddError: func(o *object) Payload {
		return &AddErrorPayload{
			Header: o.plain("header", optional, MaxHeaderLen),
			Text:   o.text("text"),
			Date:   o.date("date"),
			Link:   o.link("link", CheckLink),
		}
	},
	AddCall: func(o *object) Payload {
		p := &AddCallPayload{
			Text:   o.text("text"),
			Date:   o.date("date"),
			Header: o.plain("header", optional, MaxHeaderLen),
			From:   o.plain("from", optional, MaxHeaderLen),
			To:     o.plain("to", optional, MaxHeaderLen),
		}
		if el := o.object("element", optional); el != nil {
			p.Element = &Element{
				ID:   el.positive("id"),
				Type: el.oneOf("type", "must be contact, lead or company", ElementContact, ElementLead, ElementCompany),
			}
		}
		p.Link = o.link("link", CheckURL)
		if d, ok := o.integer("duration", optional, 0, "must not be negative"); ok {
			p.Duration = &d
		}
		return p
	},
}

// validation is the state of one Validate call, shared by the objects it reads. The
// first error sticks: every later read is a no-op, so the rules read straight through
// without checking after each field.
type validation struct {
	now      time.Time
	err      *Error
	objects  []*object
	warnings []string
}

// parse splits a JSON object into its members, keeping the last of repeated names as
// JSON.parse does, so a payload means here what it means to the widget code that
// built it. A repeated name is worth a warning: whoever wrote it likely meant the other.
func (v *validation) parse(path string, data []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(data) { // one value, nothing after it
		var syntax *json.SyntaxError
		if err := json.Unmarshal(data, new(json.RawMessage)); errors.As(err, &syntax) {
			return nil, fmt.Errorf("malformed JSON at byte %d: %w", syntax.Offset, err)
		}
		return nil, errMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return nil, errors.New("must be a JSON object")
	}
	members := make(map[string]json.RawMessage)
	for dec.More() {
		// The syntax is known to be valid: these errors cannot happen.
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, errMalformed
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, errMalformed
		}
		if _, dup := members[name]; dup {
			v.warnings = append(v.warnings, fmt.Sprintf("duplicate field %q: the last value is used", path+name))
		}
		members[name] = value
	}
	return members, nil
}

var errMalformed = errors.New("malformed JSON")

// finish names the members no rule read and returns every warning, sorted and
// without repeats.
func (v *validation) finish() []string {
	for _, o := range v.objects {
		for name := range o.members {
			v.warnings = append(v.warnings, fmt.Sprintf("unknown field %q dropped", o.path+name))
		}
	}
	slices.Sort(v.warnings)
	return append([]string{}, slices.Compact(v.warnings)...)
}

package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
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
	v := validations.Get().(*validation)
	defer v.release()
	v.now = now
	top, err := v.parse(body)
	if err != nil {
		return nil, nil, &Error{Code: CodeInvalidJSON, Message: err.Error()}
	}
	p := rules(top)
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
		// One allocation for the payload and what its pointers point to.
		a := new(struct {
			p        AddCallPayload
			element  Element
			duration int64
		})
		p := &a.p
		*p = AddCallPayload{
			Text:   o.text("text"),
			Date:   o.date("date"),
			Header: o.plain("header", optional, MaxHeaderLen),
			From:   o.plain("from", optional, MaxHeaderLen),
			To:     o.plain("to", optional, MaxHeaderLen),
		}
		if el := o.object("element", optional); el != nil {
			a.element = Element{
				ID:   el.positive("id"),
				Type: el.oneOf("type", "must be contact, lead or company", ElementContact, ElementLead, ElementCompany),
			}
			p.Element = &a.element
		}
		p.Link = o.link("link", CheckURL)
		if d, ok := o.integer("duration", optional, 0, "must not be negative"); ok {
			a.duration = d
			p.Duration = &a.duration
		}
		return p
	},
}

// validation is the state of one Validate call, shared by the objects it reads. The
// first error sticks: every later read is a no-op, so the rules read straight through
// without checking after each field.
// validations recycles the state of Validate, which every routed event needs once:
// with its inline objects it is most of the bytes validating a pop-up allocates.
var validations = sync.Pool{New: func() any { return new(validation) }}

// release clears v, which drops every reference into the validated body, and hands it
// back to validations. Nothing Validate returns points into v: the payload holds
// strings, finish copies the warnings, and an error is allocated on its own.
func (v *validation) release() {
	*v = validation{}
	validations.Put(v)
}

type validation struct {
	now      time.Time
	err      *Error
	objects  []*object
	warnings []string
	// inline holds the objects of a payload (the body and at most one nested object)
	// so that reading them allocates nothing more.
	inline [2]object
	used   int
	ptrs   [2]*object
}

// parse reads the body as a JSON object in one pass, which checks its syntax and
// splits it into members. The payload's strings are slices of one copy of the body
// (which they keep alive, at most MaxBodySize): reading a field allocates only when
// its value holds escapes.
func (v *validation) parse(body []byte) (*object, error) {
	v.objects = v.ptrs[:0]
	sc := scanner{s: string(body)}
	sc.space()
	if sc.i < len(sc.s) && sc.s[sc.i] == '{' {
		if o := v.object(""); sc.object(o) {
			if sc.space(); sc.i == len(sc.s) {
				return o, nil
			}
		}
	}
	// The scanner accepts exactly the JSON objects; say what else the body is.
	if !json.Valid(body) {
		var syntax *json.SyntaxError
		if err := json.Unmarshal(body, new(json.RawMessage)); errors.As(err, &syntax) {
			return nil, fmt.Errorf("malformed JSON at byte %d: %w", syntax.Offset, err)
		}
		return nil, errMalformed
	}
	return nil, errors.New("must be a JSON object")
}

var errMalformed = errors.New("malformed JSON")

// finish names the members no rule read and returns every warning, sorted and
// without repeats.
func (v *validation) finish() []string {
	for _, o := range v.objects {
		for _, m := range o.members {
			if !m.taken {
				v.warnings = append(v.warnings, fmt.Sprintf("unknown field %q dropped", o.path+m.name))
			}
		}
	}
	slices.Sort(v.warnings)
	return append([]string{}, slices.Compact(v.warnings)...)
}

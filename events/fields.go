package events

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	required = true
	optional = false
)

// Dates: Unix seconds, or milliseconds above msThreshold (year 5138 in seconds, 1973
// in milliseconds, so the two never meet inside the accepted range).
const (
	msThreshold = 1e11
	minDate     = 946684800 // 2000-01-01T00:00:00Z
	maxAhead    = 24 * time.Hour
)

// object is one JSON object being validated. Each rule takes its member, so the
// members left at the end are the unknown ones. Its members have distinct names: a
// repeated name keeps the place of its first occurrence and the value of its last.
type object struct {
	v       *validation
	path    string // prefix of the members' field names: "" or "element."
	members []member
	index   map[string]int // position of each name, once there are too many to search
	small   [8]member      // members' backing array while they are few
}

// indexFrom is the number of members from which names are looked up in a map rather
// than searched: a body of thousands of members must not take quadratic time.
const indexFrom = 16

// object returns a new, empty object at path, to be filled by the scanner.
func (v *validation) object(path string) *object {
	var o *object
	if v.used < len(v.inline) {
		o = &v.inline[v.used]
		v.used++
	} else {
		o = new(object)
	}
	o.v, o.path = v, path
	o.members = o.small[:0]
	v.objects = append(v.objects, o)
	return o
}

func (o *object) find(name string) int {
	if o.index != nil {
		if i, ok := o.index[name]; ok {
			return i
		}
		return -1
	}
	for i := range o.members {
		if o.members[i].name == name {
			return i
		}
	}
	return -1
}

// add records a member, keeping the last of repeated names as JSON.parse does, so a
// payload means here what it means to the widget code that built it. A repeated name
// is worth a warning: whoever wrote it likely meant the other.
func (o *object) add(name, value string) {
	if i := o.find(name); i >= 0 {
		o.v.warnings = append(o.v.warnings, fmt.Sprintf("duplicate field %q: the last value is used", o.path+name))
		o.members[i].value = value
		return
	}
	o.members = append(o.members, member{name: name, value: value})
	switch n := len(o.members); {
	case n == indexFrom:
		o.index = make(map[string]int, 2*indexFrom)
		for i, m := range o.members {
			o.index[m.name] = i
		}
	case n > indexFrom:
		o.index[name] = n - 1
	}
}

func (o *object) fail(name, format string, args ...any) {
	if o.v.err == nil {
		o.v.err = FieldError(o.path+name, format, args...)
	}
}

// take marks a member read and returns its raw value; false when it is absent or null, which
// JSON producers use interchangeably for "not set". It also reports a missing
// required member, and returns false once an error is recorded.
func (o *object) take(name string, req bool) (string, bool) {
	var raw string
	i := o.find(name)
	if i >= 0 {
		o.members[i].taken = true
		raw = o.members[i].value
	}
	if o.v.err != nil {
		return "", false
	}
	if i < 0 || raw == "null" {
		if req {
			o.fail(name, "is required")
		}
		return "", false
	}
	return raw, true
}

// str returns a string member, trimmed. The caller decides whether empty is allowed:
// take's required check only covers absent and null.
func (o *object) str(name string, req bool) string {
	raw, ok := o.take(name, req)
	if !ok {
		return ""
	}
	if raw[0] != '"' {
		o.fail(name, "must be a string")
		return ""
	}
	return trim(unquote(raw[1 : len(raw)-1]))
}

// plain returns a plain-text member: trimmed, with each run of control characters and
// line separators turned into one space. Renderers escape these fields, but a line
// break inside a header, an email subject or a push title is never meant, and it has
// no business reaching an SMTP header.
func (o *object) plain(name string, req bool, limit int) string {
	s := trim(collapseControls(o.str(name, req)))
	switch {
	case s == "" && req:
		o.fail(name, "is required")
	case utf8.RuneCountInString(s) > limit:
		o.fail(name, "must be at most %d characters", limit)
	}
	return s
}

// text returns the required HTML text member, sanitized. The limit holds for the text
// as sent and, because sanitizing normalizes markup (quoting attributes, adding rel to
// links), for the stored text too: a payload is never stored in a form that would be
// refused when it is validated again on its next hop.
func (o *object) text(name string) string {
	s := o.str(name, required)
	if s == "" {
		o.fail(name, "is required")
		return ""
	}
	if textLen(s) > MaxTextLen {
		o.fail(name, "must be at most %d characters", MaxTextLen)
		return ""
	}
	h := SanitizeHTML(s)
	switch {
	case h == "":
		o.fail(name, "must not be empty once disallowed HTML is removed")
	case textLen(h) > MaxTextLen:
		o.fail(name, "must be at most %d characters once sanitized", MaxTextLen)
	}
	return h
}

// link returns an optional link member that passes check.
func (o *object) link(name string, check func(string) error) string {
	s := o.str(name, optional)
	if s == "" {
		return ""
	}
	if err := check(s); err != nil {
		o.fail(name, "%s", err)
	}
	return s
}

// oneOf returns a required member that must be one of the allowed strings.
func (o *object) oneOf(name, rule string, allowed ...string) string {
	s := o.str(name, required)
	switch {
	case s == "":
		o.fail(name, "is required")
	case !slices.Contains(allowed, s):
		o.fail(name, "%s", rule)
	}
	return s
}

// object returns a member that must be an object, or nil when it is absent.
func (o *object) object(name string, req bool) *object {
	raw, ok := o.take(name, req)
	if !ok {
		return nil
	}
	if raw[0] != '{' {
		o.fail(name, "must be an object")
		return nil
	}
	obj := o.v.object(o.path + name + ".")
	sc := scanner{s: raw}
	if !sc.object(obj) { // cannot happen: the whole body was valid JSON
		o.fail(name, "must be an object")
		return nil
	}
	return obj
}

// integer returns an integer member of at least min; rule is the message for less.
// Only integer literals count: JSON.stringify writes every integer up to 10^21
// without a fraction or an exponent, so anything else was not meant as one.
func (o *object) integer(name string, req bool, min int64, rule string) (int64, bool) {
	raw, ok := o.take(name, req)
	if !ok {
		return 0, false
	}
	if !isIntegerLiteral(raw) {
		o.fail(name, "must be an integer")
		return 0, false
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil { // out of the int64 range
		if raw[0] != '-' {
			o.fail(name, "must be at most %d", int64(math.MaxInt64))
			return 0, false
		}
		n = math.MinInt64
	}
	if n < min {
		o.fail(name, "%s", rule)
	}
	return n, true
}

// positive returns a required integer member that must be above zero: an id.
func (o *object) positive(name string) int64 {
	n, _ := o.integer(name, required, 1, "must be positive")
	return n
}

// date returns the Unix seconds of an optional date member, now when it is absent or
// zero: zero is no date anyone means, but it is what a Go payload whose Date was left
// unset encodes to.
func (o *object) date(name string) int64 {
	now := o.v.now.Unix()
	raw, ok := o.take(name, optional)
	if !ok {
		return now
	}
	if c := raw[0]; c != '-' && (c < '0' || c > '9') {
		o.fail(name, "must be a number")
		return 0
	}
	if f, _ := strconv.ParseFloat(raw, 64); f == 0 {
		return now
	}
	sec := unixSeconds(raw)
	switch {
	case sec < minDate:
		o.fail(name, "must not be before 2000-01-01T00:00:00Z")
	case sec > now+int64(maxAhead/time.Second):
		o.fail(name, "must not be more than 24 hours ahead")
	}
	return sec
}

// unixSeconds reads a JSON number literal as a Unix time, in seconds or, above
// msThreshold, in milliseconds, with any fraction truncated: JavaScript's
// Date.now()/1000 has one. Exact for integers; a float64 is exact to well under a
// second for any time in the accepted range. Beyond the int64 range the result
// saturates, so it is out of the accepted range on the same side.
func unixSeconds(lit string) int64 {
	if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
		if n > msThreshold {
			n /= 1000
		}
		return n
	}
	f, _ := strconv.ParseFloat(lit, 64) // ±Inf when out of range
	if f > msThreshold {
		f /= 1000
	}
	switch f = math.Trunc(f); {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

func isIntegerLiteral(raw string) bool {
	raw = strings.TrimPrefix(raw, "-")
	return raw != "" && strings.Trim(raw, "0123456789") == ""
}

// isSpace is JavaScript's idea of white space, which String.prototype.trim removes:
// Unicode's, plus the byte order mark.
func isSpace(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' }

func trim(s string) string { return strings.TrimFunc(s, isSpace) }

// collapseControls turns each run of control characters and Unicode line or paragraph
// separators into one space.
func collapseControls(s string) string {
	if strings.IndexFunc(s, isLineControl) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	inRun := false
	for _, r := range s {
		if isLineControl(r) {
			if !inRun {
				b.WriteByte(' ')
			}
			inRun = true
			continue
		}
		inRun = false
		b.WriteRune(r)
	}
	return b.String()
}

func isLineControl(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }

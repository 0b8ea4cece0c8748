package events

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit: the scanner accepts exactly what
// json.Valid accepts, so a body is valid or not whichever of the two looks at it.
const maxDepth = 10000

// member is one member of a JSON object: its decoded name and its raw value, without
// the white space around it, as a slice of the body.
type member struct {
	name  string
	value string
	taken bool // read by a rule: not an unknown field
}

// scanner checks JSON syntax and splits objects into members in the same pass, over
// a body already known to be valid UTF-8. It allocates nothing but the names that
// carry escapes.
type scanner struct {
	s     string
	i     int
	depth int
}

func (sc *scanner) space() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// value skips one value starting at sc.i; false when it is malformed.
func (sc *scanner) value() bool {
	if sc.i >= len(sc.s) {
		return false
	}
	switch c := sc.s[sc.i]; {
	case c == '{':
		return sc.object(nil)
	case c == '[':
		return sc.array()
	case c == '"':
		_, ok := sc.str()
		return ok
	case c == 't':
		return sc.literal("true")
	case c == 'f':
		return sc.literal("false")
	case c == 'n':
		return sc.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return sc.number()
	}
	return false
}

func (sc *scanner) literal(word string) bool {
	if !strings.HasPrefix(sc.s[sc.i:], word) {
		return false
	}
	sc.i += len(word)
	return true
}

// str skips a string starting at its opening quote and reports whether it holds
// escapes.
func (sc *scanner) str() (escaped, ok bool) {
	s, i := sc.s, sc.i+1
	for i < len(s) {
		switch c := s[i]; {
		case c == '"':
			sc.i = i + 1
			return escaped, true
		case c == '\\':
			escaped = true
			if i+1 >= len(s) {
				return false, false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if getu4(s[i:]) < 0 {
					return false, false
				}
				i += 6
			default:
				return false, false
			}
		case c < ' ':
			return false, false
		default:
			i++
		}
	}
	return false, false
}

func (sc *scanner) digits() bool {
	start := sc.i
	for sc.i < len(sc.s) && '0' <= sc.s[sc.i] && sc.s[sc.i] <= '9' {
		sc.i++
	}
	return sc.i > start
}

func (sc *scanner) number() bool {
	s := sc.s
	if s[sc.i] == '-' {
		sc.i++
	}
	switch {
	case sc.i >= len(s):
		return false
	case s[sc.i] == '0':
		sc.i++
	case !sc.digits():
		return false
	}
	if sc.i < len(s) && s[sc.i] == '.' {
		sc.i++
		if !sc.digits() {
			return false
		}
	}
	if sc.i < len(s) && (s[sc.i] == 'e' || s[sc.i] == 'E') {
		sc.i++
		if sc.i < len(s) && (s[sc.i] == '+' || s[sc.i] == '-') {
			sc.i++
		}
		if !sc.digits() {
			return false
		}
	}
	return true
}

func (sc *scanner) array() bool {
	if sc.depth++; sc.depth > maxDepth {
		return false
	}
	sc.i++ // [
	sc.space()
	if sc.i < len(sc.s) && sc.s[sc.i] == ']' {
		sc.i++
		sc.depth--
		return true
	}
	for {
		sc.space()
		if !sc.value() {
			return false
		}
		if more, ok := sc.separator(']'); !more {
			return ok
		}
	}
}

// object skips an object starting at its opening brace, adding its members to o
// unless o is nil.
func (sc *scanner) object(o *object) bool {
	if sc.depth++; sc.depth > maxDepth {
		return false
	}
	sc.i++ // {
	sc.space()
	if sc.i < len(sc.s) && sc.s[sc.i] == '}' {
		sc.i++
		sc.depth--
		return true
	}
	for {
		sc.space()
		if sc.i >= len(sc.s) || sc.s[sc.i] != '"' {
			return false
		}
		start := sc.i
		escaped, ok := sc.str()
		if !ok {
			return false
		}
		name := sc.s[start+1 : sc.i-1]
		sc.space()
		if sc.i >= len(sc.s) || sc.s[sc.i] != ':' {
			return false
		}
		sc.i++
		sc.space()
		start = sc.i
		if !sc.value() {
			return false
		}
		if o != nil {
			if escaped {
				name = unquote(name)
			}
			o.add(name, sc.s[start:sc.i])
		}
		if more, ok := sc.separator('}'); !more {
			return ok
		}
	}
}

// getu4 decodes the \uXXXX escape at the start of s, or returns -1.
func getu4(s string) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range []byte(s[2:6]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquote decodes the content of a JSON string the scanner accepted as
// encoding/json does: a lone or mismatched surrogate becomes U+FFFD.
func unquote(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		s = s[i:]
		switch c := s[1]; c {
		case 'u':
			r := getu4(s)
			s = s[6:]
			if utf16.IsSurrogate(r) {
				if dec := utf16.DecodeRune(r, getu4(s)); dec != unicode.ReplacementChar {
					r, s = dec, s[6:]
				} else {
					r = unicode.ReplacementChar
				}
			}
			b.WriteRune(r)
		default:
			b.WriteByte(unescape[c])
			s = s[2:]
		}
		i = strings.IndexByte(s, '\\')
	}
	b.WriteString(s)
	return b.String()
}

// unescape maps the character after a backslash to the one it stands for.
var unescape = [utf8.RuneSelf]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// separator reads what follows an element of an array or an object: a comma, when
// more follow, or the closing bracket or brace, which ends the container.
func (sc *scanner) separator(closing byte) (more, ok bool) {
	sc.space()
	if sc.i >= len(sc.s) {
		return false, false
	}
	switch sc.s[sc.i] {
	case ',':
		sc.i++
		return true, true
	case closing:
		sc.i++
		sc.depth--
		return false, true
	}
	return false, false
}

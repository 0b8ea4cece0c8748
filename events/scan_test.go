package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzScanner checks the scanner against encoding/json, which Validate used to read
// bodies with: the same bodies are JSON objects, with the same members.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		`{}`, ` {"a" : [1, -0.5e+3, true, false, null, {"b":"\u00e9\ud83d\ude00\ud800x\"\\\/\b\f\n\r\t"}] } `,
		`{"\u0074ext":"t","text":"u"}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":"\x"}`, `{"a":"\u12"}`,
		`{"a":[1,]}`, `{"a":1,}`, `[]`, `"x"`, `1`, `{"a":tru}`, `{"a":1e}`, `null`, ` null `, `nul`, `{"a":"` + "\x01" + `"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkScanner(t, s) })
}

// The scanner's nesting limit is encoding/json's.
func TestScannerDepth(t *testing.T) {
	for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		checkScanner(t, `{"a":`+strings.Repeat("[", depth)+strings.Repeat("]", depth)+`}`)
		checkScanner(t, strings.Repeat(`{"a":`, depth)+`1`+strings.Repeat("}", depth))
	}
}

func checkScanner(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		return
	}
	v := &validation{}
	o, err := v.parse([]byte(s))
	var want map[string]json.RawMessage
	wantErr := json.Unmarshal([]byte(s), &want)
	if wantErr == nil && want == nil {
		// encoding/json reads a body of null into a map as no map at all; an event must be an object.
		wantErr = errors.New("null is not an object")
	}
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%.100q: scanner says %v, encoding/json %v", s, err, wantErr)
	}
	if err != nil {
		return
	}
	if len(o.members) != len(want) {
		t.Fatalf("%q: %d members, encoding/json %d", s, len(o.members), len(want))
	}
	for _, m := range o.members {
		if w, ok := want[m.name]; !ok || string(w) != m.value {
			t.Fatalf("%q: member %q = %q, encoding/json %q", s, m.name, m.value, w)
		}
		if m.value[0] == '"' {
			var str string
			if err := json.Unmarshal([]byte(m.value), &str); err != nil || unquote(m.value[1:len(m.value)-1]) != str {
				t.Fatalf("%q: unquote gives %q, encoding/json %q", m.value, unquote(m.value[1:len(m.value)-1]), str)
			}
		}
	}
}

package bench

import (
	"bytes"
	"encoding/json"
	"errors"
)

var (
	errFrameNotJSON   = errors.New("a frame that is not a JSON object")
	errFrameWithoutID = errors.New("a frame without an id")
)

// frameID is the event id of a websocket frame: the id of the item of a center frame,
// else a pop-up's id; kind is the frame's kind. It reads the frame as a browser's
// JSON.parse followed by frame.kind and frame.item?.id ?? frame.id would: the whole
// frame must be valid JSON and an object, keys match exactly (escapes decoded), the
// last of duplicate keys counts, and a field of another type is as good as absent.
//
// It runs once per frame per client, which in a broadcast is 10,000 times within
// the bar's 100 ms on the dispatcher's two cores, so it does not build the frame's
// values: json.Valid checks the whole frame, then one pass over the top-level fields
// takes the three it needs and skips the rest.
func frameID(data []byte) (kind, id string, err error) {
	if !json.Valid(data) {
		return "", "", errFrameNotJSON
	}
	data = data[skipSpace(data, 0):]
	if data[0] != '{' {
		return "", "", errFrameNotJSON
	}
	var itemID string
	item := false
	for key, val := range fields(data) {
		switch string(key) {
		case "kind":
			kind, _ = stringValue(val)
		case "id":
			id, _ = stringValue(val)
		case "item":
			itemID, item = "", false
			if len(val) > 0 && val[0] == '{' {
				item = true
				for k, v := range fields(val) {
					if string(k) == "id" {
						itemID, _ = stringValue(v)
					}
				}
			}
		}
	}
	if item {
		id = itemID
	}
	if id == "" {
		return kind, "", errFrameWithoutID
	}
	return kind, id, nil
}

// fields yields the key (its escapes decoded) and raw value of every field of obj, a
// valid JSON object (json.Valid holds for it), in order.
func fields(obj []byte) func(yield func(key, val []byte) bool) {
	return func(yield func(key, val []byte) bool) {
		i := skipSpace(obj, 1)
		for i < len(obj) && obj[i] == '"' {
			end := skipString(obj, i)
			key := obj[i+1 : end-1]
			if bytes.IndexByte(key, '\\') >= 0 {
				s, _ := stringValue(obj[i:end])
				key = []byte(s)
			}
			i = skipSpace(obj, end)
			i = skipSpace(obj, i+1) // the colon
			vend := skipValue(obj, i)
			if !yield(key, obj[i:vend]) {
				return
			}
			i = skipSpace(obj, vend)
			if i < len(obj) && obj[i] == ',' {
				i = skipSpace(obj, i+1)
			}
		}
	}
}

// stringValue is the text of the JSON string raw, and false when raw is another
// kind of value.
func stringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // a number, true, false or null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

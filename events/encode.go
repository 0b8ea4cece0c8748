package events

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// Encode is the canonical JSON encoding of a validated payload: byte for byte what
// encoding/json makes of it (FuzzEncode holds it to that), written without
// reflection, since the router encodes every event it routes. A string that is not
// plain printable ASCII goes through encoding/json for its escapes.
func Encode(p Payload) ([]byte, error) {
	var buf [512]byte // most events fit: one allocation, of the encoding's own size
	b := buf[:0]
	switch p := p.(type) {
	case *ShowMessagePayload:
		b = appendField(b, '{', "header", p.Header)
		b = appendField(b, ',', "text", p.Text)
		b = appendInt(b, "date", p.Date)
		b = appendOmitEmpty(b, "icon", p.Icon)
	case *ShowMessageErrorPayload:
		b = appendField(b, '{', "header", p.Header)
		b = appendField(b, ',', "text", p.Text)
		b = appendInt(b, "date", p.Date)
		b = appendOmitEmpty(b, "link", p.Link)
	case *ShowNotificationPayload:
		b = append(b, `{"text":`...)
		b = appendField(b, '{', "header", p.Text.Header)
		b = appendField(b, ',', "text", p.Text.Text)
		b = append(b, '}')
		b = appendInt(b, "date", p.Date)
		b = appendField(b, ',', "type", p.Kind)
	case *AddErrorPayload:
		b = append(b, '{')
		if p.Header != "" {
			b = appendField(b, 0, "header", p.Header)
			b = append(b, ',')
		}
		b = appendField(b, 0, "text", p.Text)
		b = appendInt(b, "date", p.Date)
		b = appendOmitEmpty(b, "link", p.Link)
	case *AddCallPayload:
		b = appendField(b, '{', "text", p.Text)
		b = appendInt(b, "date", p.Date)
		b = appendOmitEmpty(b, "header", p.Header)
		b = appendOmitEmpty(b, "from", p.From)
		b = appendOmitEmpty(b, "to", p.To)
		if p.Element != nil {
			b = append(b, `,"element":{"id":`...)
			b = strconv.AppendInt(b, p.Element.ID, 10)
			b = appendField(b, ',', "type", p.Element.Type)
			b = append(b, '}')
		}
		b = appendOmitEmpty(b, "link", p.Link)
		if p.Duration != nil {
			b = appendInt(b, "duration", *p.Duration)
		}
	default:
		return json.Marshal(p)
	}
	return bytes.Clone(append(b, '}')), nil
}

// appendField appends sep (none when 0), then "name":"value".
func appendField(b []byte, sep byte, name, value string) []byte {
	if sep != 0 {
		b = append(b, sep)
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return AppendJSONString(b, value)
}

func appendOmitEmpty(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	return appendField(b, ',', name, value)
}

func appendInt(b []byte, name string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return strconv.AppendInt(b, v, 10)
}

// AppendJSONString appends s as a JSON string, escaped as encoding/json escapes it:
// plain printable ASCII as it is, anything else through encoding/json.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

package directory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/kommo-notify/notify/events"
)

// ParseProfile reads the JSON body of a profile, as an admin sends it:
//
//	{"email","name","locale","channels":{"email":bool,"push":bool},"devices":[{"token","platform","added_at"?}]}
//
// Every member is optional; absent or null, a string is empty, a channel switch is
// on, and Devices is nil (Store.Put then keeps the registered devices). Unknown
// members are refused, unlike in notification payloads: an admin's typo ("emial")
// would otherwise drop the address without a word, and the admin API has no widget
// code in the wild to stay compatible with. The error is an *events.Error:
// too_large, invalid_json (not a JSON object, malformed, invalid UTF-8) or
// invalid_field naming the member ("channels.push", "devices[1].platform"). Values are
// only decoded here; Store.Put checks them.
func ParseProfile(body []byte) (Profile, error) {
	m, err := bodyObject(body)
	if err != nil {
		return Profile{}, err
	}
	var p Profile
	if err := only(m, "", "email", "name", "locale", "channels", "devices"); err != nil {
		return Profile{}, err
	}
	fields := []struct {
		name string
		dst  *string
	}{{"email", &p.Email}, {"name", &p.Name}, {"locale", &p.Locale}}
	for _, f := range fields {
		if *f.dst, err = str(m, "", f.name); err != nil {
			return Profile{}, err
		}
	}
	if p.Channels, err = channelSwitches(m); err != nil {
		return Profile{}, err
	}
	if p.Devices, err = devices(m); err != nil {
		return Profile{}, err
	}
	return p, nil
}

// ParseDevice reads the JSON body of a device registration: {"token","platform"}.
// The time it was added is the server's; other members are refused. Values are only
// decoded here; Store.AddDevice checks them.
func ParseDevice(body []byte) (Device, error) {
	m, err := bodyObject(body)
	if err != nil {
		return Device{}, err
	}
	if _, ok := m["added_at"]; ok {
		return Device{}, events.FieldError("added_at", "is set by the server")
	}
	return device(m, "")
}

func bodyObject(body []byte) (map[string]json.RawMessage, error) {
	if len(body) > events.MaxBodySize {
		return nil, &events.Error{Code: events.CodeTooLarge, Message: fmt.Sprintf("body must be at most %d bytes", events.MaxBodySize)}
	}
	if !utf8.Valid(body) {
		return nil, &events.Error{Code: events.CodeInvalidJSON, Message: "body must be valid UTF-8"}
	}
	var m map[string]json.RawMessage
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, &events.Error{Code: events.CodeInvalidJSON, Message: "body must be a JSON object"}
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, &events.Error{Code: events.CodeInvalidJSON, Message: "body is not valid JSON: " + err.Error()}
	}
	return m, nil
}

// only refuses the first member (in name order, so the answer is stable) that is not
// one of names.
func only(m map[string]json.RawMessage, path string, names ...string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(names, k) {
			return events.FieldError(path+k, "is not a known field")
		}
	}
	return nil
}

// present is a member that is there and not null: JSON producers use null and absence
// interchangeably for "not set".
func present(m map[string]json.RawMessage, name string) (json.RawMessage, bool) {
	raw, ok := m[name]
	return raw, ok && string(raw) != "null"
}

// object is a nested member that must be a JSON object. The body parsed, so it is
// well-formed; only its kind can be wrong.
func object(raw json.RawMessage, field string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, events.FieldError(field, "must be an object")
	}
	return m, nil
}

func str(m map[string]json.RawMessage, path, name string) (string, error) {
	raw, ok := present(m, name)
	if !ok {
		return "", nil
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", events.FieldError(path+name, "must be a string")
	}
	return s, nil
}

func boolean(m map[string]json.RawMessage, path, name string, def bool) (bool, error) {
	raw, ok := present(m, name)
	if !ok {
		return def, nil
	}
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, events.FieldError(path+name, "must be true or false")
}

func channelSwitches(m map[string]json.RawMessage) (Channels, error) {
	c := DefaultChannels
	raw, ok := present(m, "channels")
	if !ok {
		return c, nil
	}
	sw, err := object(raw, "channels")
	if err != nil {
		return c, err
	}
	if err := only(sw, "channels.", "email", "push"); err != nil {
		return c, err
	}
	if c.Email, err = boolean(sw, "channels.", "email", DefaultChannels.Email); err != nil {
		return c, err
	}
	if c.Push, err = boolean(sw, "channels.", "push", DefaultChannels.Push); err != nil {
		return c, err
	}
	return c, nil
}

// devices is nil when the member is absent or null, and a non-nil slice (maybe
// empty) when it is an array: Store.Put tells "keep" from "replace" by that.
func devices(m map[string]json.RawMessage) ([]Device, error) {
	raw, ok := present(m, "devices")
	if !ok {
		return nil, nil
	}
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, events.FieldError("devices", "must be an array")
	}
	out := make([]Device, 0, len(items))
	for i, item := range items {
		path := fmt.Sprintf("devices[%d]", i)
		dm, err := object(item, path)
		if err != nil {
			return nil, err
		}
		d, err := device(dm, path+".")
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func device(m map[string]json.RawMessage, path string) (Device, error) {
	var d Device
	var err error
	if err = only(m, path, "token", "platform", "added_at"); err != nil {
		return d, err
	}
	if d.Token, err = str(m, path, "token"); err != nil {
		return d, err
	}
	if d.Platform, err = str(m, path, "platform"); err != nil {
		return d, err
	}
	at, err := str(m, path, "added_at")
	if err != nil || at == "" {
		return d, err
	}
	if d.AddedAt, err = time.Parse(time.RFC3339, at); err != nil {
		return d, events.FieldError(path+"added_at", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return d, nil
}

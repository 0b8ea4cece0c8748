package directory_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/events"
)

func TestParseProfile(t *testing.T) {
	tests := []struct {
		name string
		body string
		want directory.Profile
	}{
		{"empty object: switches on, devices kept", `{}`,
			directory.Profile{Channels: directory.Channels{Email: true, Push: true}}},
		{"nulls are absent", `{"email":null,"channels":null,"devices":null}`,
			directory.Profile{Channels: directory.Channels{Email: true, Push: true}}},
		{"one switch off, the other defaults on", `{"channels":{"email":false}}`,
			directory.Profile{Channels: directory.Channels{Email: false, Push: true}}},
		{"everything", `{"email":"ann@example.com","name":"Ann","locale":"pt-BR","channels":{"email":true,"push":false},` +
			`"devices":[{"token":"t1","platform":"ios","added_at":"2026-01-02T15:04:05Z"}]}`,
			directory.Profile{Email: "ann@example.com", Name: "Ann", Locale: "pt-BR", Channels: directory.Channels{Email: true},
				Devices: []directory.Device{{Token: "t1", Platform: "ios", AddedAt: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := directory.ParseProfile([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if got.Email != tt.want.Email || got.Name != tt.want.Name || got.Locale != tt.want.Locale || got.Channels != tt.want.Channels {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if (got.Devices == nil) != (tt.want.Devices == nil) || len(got.Devices) != len(tt.want.Devices) {
				t.Fatalf("devices %#v, want %#v", got.Devices, tt.want.Devices)
			}
			for i := range got.Devices {
				if g, w := got.Devices[i], tt.want.Devices[i]; g.Token != w.Token || g.Platform != w.Platform || !g.AddedAt.Equal(w.AddedAt) {
					t.Errorf("device %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}

	t.Run("empty devices array replaces", func(t *testing.T) {
		p, err := directory.ParseProfile([]byte(`{"devices":[]}`))
		if err != nil || p.Devices == nil {
			t.Fatalf("devices %#v, err %v: want an empty, non-nil slice", p.Devices, err)
		}
	})
}

func TestParseProfileRejects(t *testing.T) {
	tests := []struct {
		name, body, code, field string
	}{
		{"array", `[]`, events.CodeInvalidJSON, ""},
		{"string", `"x"`, events.CodeInvalidJSON, ""},
		{"malformed", `{"email":`, events.CodeInvalidJSON, ""},
		{"empty", ``, events.CodeInvalidJSON, ""},
		{"invalid UTF-8", "{\"name\":\"\xff\"}", events.CodeInvalidJSON, ""},
		{"too large", `{"name":"` + strings.Repeat("a", events.MaxBodySize) + `"}`, events.CodeTooLarge, ""},
		{"unknown field", `{"emial":"a@b.c"}`, events.CodeInvalidField, "emial"},
		{"unknown switch", `{"channels":{"sms":true}}`, events.CodeInvalidField, "channels.sms"},
		{"unknown device field", `{"devices":[{"token":"t","platform":"ios","color":1}]}`, events.CodeInvalidField, "devices[0].color"},
		{"email not a string", `{"email":1}`, events.CodeInvalidField, "email"},
		{"channels not an object", `{"channels":true}`, events.CodeInvalidField, "channels"},
		{"switch not a bool", `{"channels":{"push":"yes"}}`, events.CodeInvalidField, "channels.push"},
		{"devices not an array", `{"devices":{}}`, events.CodeInvalidField, "devices"},
		{"device not an object", `{"devices":["t"]}`, events.CodeInvalidField, "devices[0]"},
		{"bad added_at", `{"devices":[{"token":"t","platform":"ios","added_at":"yesterday"}]}`, events.CodeInvalidField, "devices[0].added_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := directory.ParseProfile([]byte(tt.body))
			fieldError(t, err, tt.code, tt.field)
		})
	}
}

func TestParseDevice(t *testing.T) {
	d, err := directory.ParseDevice([]byte(`{"token":"fcm:abc-_1","platform":"android"}`))
	if err != nil || d.Token != "fcm:abc-_1" || d.Platform != "android" {
		t.Fatalf("ParseDevice = %+v, %v", d, err)
	}
	tests := []struct {
		name, body, code, field string
	}{
		{"not an object", `["t"]`, events.CodeInvalidJSON, ""},
		{"unknown field", `{"token":"t","platform":"ios","model":"x"}`, events.CodeInvalidField, "model"},
		{"added_at is the server's", `{"token":"t","platform":"ios","added_at":"2026-01-02T15:04:05Z"}`, events.CodeInvalidField, "added_at"},
		{"token not a string", `{"token":7,"platform":"ios"}`, events.CodeInvalidField, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := directory.ParseDevice([]byte(tt.body))
			fieldError(t, err, tt.code, tt.field)
		})
	}
}

func TestCheckToken(t *testing.T) {
	tests := []struct {
		token string
		ok    bool
	}{
		{"dGVzdA:APA91bH-x_y", true},
		{strings.Repeat("a", directory.MaxTokenLen), true},
		{"", false},
		{strings.Repeat("a", directory.MaxTokenLen+1), false},
		{"with space", false},
		{"tab\there", false},
		{"ünicode", false},
	}
	for _, tt := range tests {
		name := tt.token
		if len(name) > 20 {
			name = name[:20] + "..."
		}
		t.Run(name, func(t *testing.T) {
			err := directory.CheckToken(tt.token)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckToken = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && err.Field != "token" {
				t.Errorf("field %q, want token", err.Field)
			}
		})
	}
}

package events

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Encode writes what encoding/json writes, for every payload type and any field
// values, validated or not.
func FuzzEncode(f *testing.F) {
	f.Add("Error", "Failed <b>x</b> & \"y\"", "/contacts/1", int64(1714566795), int64(18221265), int64(0), "contact")
	f.Add("", "é \u2028 😀 \x01 \xff", "", int64(-1), int64(0), int64(250), "")
	f.Fuzz(func(t *testing.T, a, b, c string, n, m, k int64, d string) {
		dur := k
		for _, p := range []Payload{
			&ShowMessagePayload{Header: a, Text: b, Date: n, Icon: c},
			&ShowMessageErrorPayload{Header: a, Text: b, Date: n, Link: c},
			&ShowNotificationPayload{Text: NotificationText{Header: a, Text: b}, Date: n, Kind: d},
			&AddErrorPayload{Header: a, Text: b, Date: n, Link: c},
			&AddCallPayload{Text: b, Date: n, Header: a, From: c, To: d, Link: a},
			&AddCallPayload{Text: b, Date: n, From: a, Element: &Element{ID: m, Type: d}, Duration: &dur},
		} {
			want, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Encode(p)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%T: Encode gives %s (%v), encoding/json %s", p, got, err, want)
			}
		}
	})
}

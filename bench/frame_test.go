package bench

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestFrameID(t *testing.T) {
	cases := []struct{ frame, kind, id string }{
		{`{"kind":"popup","type":"show_message","id":"a-1-2","payload":{"text":"x"}}`, "popup", "a-1-2"},
		{`{"kind":"center","op":"added","item":{"id":"c-3-4","seq":9},"unread":2}`, "center", "c-3-4"},
		{` {"payload":{"id":"inner","list":[{"id":"x"},"}",1.5e3,null]},"id":"top-1-2","kind":"popup"} `, "popup", "top-1-2"},
		{`{"kind":"center","item":{"meta":{"id":"deep"},"id":"it-1-2"},"id":"top"}`, "center", "it-1-2"},
		{`{"kind":"popup","id":"first","id":"last"}`, "popup", "last"},
		{`{"kind":"popup","item":null,"id":"p-1-2"}`, "popup", "p-1-2"},
		{`{"kind":"popup","item":[1],"id":"p-1-2"}`, "popup", "p-1-2"},
		{`{"\u006bind":"popup","i\u0064":"esc\"aped\u00e9"}`, "popup", `esc"apedé`},
		{`{"kind":7,"id":"n-1-2"}`, "", "n-1-2"},
	}
	for _, c := range cases {
		kind, id, err := frameID([]byte(c.frame))
		if err != nil || kind != c.kind || id != c.id {
			t.Errorf("frameID(%s) = %q, %q, %v; want %q, %q", c.frame, kind, id, err, c.kind, c.id)
		}
	}
	for _, bad := range []string{
		`{"kind":"hello"}`, `not json`, ``, `[{"id":"a"}]`, `"id"`, `{"id":"a"`, `{"id":"a"}x`,
		`{"ID":"a"}`, `{"id":5}`, `{"item":{"seq":1},"id":"a"}`, `{"id":"a","item":{}}`, "\u00a0{\"id\":\"a\"}",
	} {
		if kind, id, err := frameID([]byte(bad)); err == nil {
			t.Errorf("frameID(%s) = %q, %q, accepted", bad, kind, id)
		}
	}
}

// FuzzFrameID checks frameID against what a browser would read: the frame decoded
// whole, keys matched exactly, the last of duplicates kept.
func FuzzFrameID(f *testing.F) {
	for _, s := range []string{
		`{"kind":"popup","type":"show_message","id":"a-1-2","payload":{"text":"x"}}`,
		`{"kind":"center","op":"added","item":{"id":"c-3-4","seq":9},"unread":2}`,
		`{"a":[{"b":"}"},[]],"id":"x\\y","item":null}`,
		`{"id":"a","id":1}`, `[]`, `{}`, ` {"id" : "s" } `, `{"id":"\ud83d\ude00"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, id, err := frameID(data)
		var v any
		if json.Unmarshal(data, &v) != nil {
			if err == nil {
				t.Fatalf("frameID(%q) accepted what is not JSON", data)
			}
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			if err == nil {
				t.Fatalf("frameID(%q) accepted what is not an object", data)
			}
			return
		}
		wantKind, _ := m["kind"].(string)
		wantID, _ := m["id"].(string)
		if item, ok := m["item"].(map[string]any); ok {
			wantID, _ = item["id"].(string)
		}
		if (err == nil) != (wantID != "") {
			t.Fatalf("frameID(%q) = %q, %v; the browser reads id %q", data, id, err, wantID)
		}
		if !utf8.Valid(data) {
			return // encoding/json replaces invalid UTF-8; the ids compared are the bytes sent
		}
		if kind != wantKind || (err == nil && id != wantID) {
			t.Fatalf("frameID(%q) = %q, %q; the browser reads %q, %q", data, kind, id, wantKind, wantID)
		}
	})
}

func BenchmarkFrameID(b *testing.B) {
	frame := []byte(`{"kind":"popup","type":"show_message","id":"target12-1-1764000000000000000","payload":{"header":"Bench","text":"A message for the whole account: the same bytes to every connection."}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := frameID(frame); err != nil {
			b.Fatal(err)
		}
	}
}

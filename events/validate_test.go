package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is a day after the seed's sample date 1714566795 (2024-05-01T12:33:15Z).
var testNow = time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)

const nowUnix = 1714608000 // testNow

// seedExamples are the six examples of the seed, the widget API's documentation,
// with the canonical form each validates to.
var seedExamples = []struct {
	name string
	typ  Type
	body string
	want string
}{
	{
		name: "show_message",
		typ:  ShowMessage,
		body: `{"header":"Warning","text":"Connection established","date":1714566795,"icon":"https://www.example.com/images/telephone.png"}`,
		want: `{"header":"Warning","text":"Connection established","date":1714566795,"icon":"https://www.example.com/images/telephone.png"}`,
	},
	{
		name: "show_message_error",
		typ:  ShowMessageError,
		body: `{"header":"Warning","text":"Connection to the server is lost"}`,
		want: `{"header":"Warning","text":"Connection to the server is lost","date":1714608000}`,
	},
	{
		name: "show_notification call",
		typ:  ShowNotification,
		body: `{"text":{"header":"Outgoing call","text":"Dialing the number +19872345678"},"type":"call"}`,
		want: `{"text":{"header":"Outgoing call","text":"Dialing the number +19872345678"},"date":1714608000,"type":"call"}`,
	},
	{
		name: "show_notification error",
		typ:  ShowNotification,
		body: `{"text":{"header":"Error","text":"Error working with the widget"},"type":"error"}`,
		want: `{"text":{"header":"Error","text":"Error working with the widget"},"date":1714608000,"type":"error"}`,
	},
	{
		name: "add_error",
		typ:  AddError,
		body: `{"header":"Error","text":"Failed to set the task! Contact not found!","date":1714566795,"link":"/contacts/list/?term=4951234567"}`,
		want: `{"header":"Error","text":"Failed to set the task! Contact not found!","date":1714566795,"link":"/contacts/list/?term=4951234567"}`,
	},
	{
		name: "add_call",
		typ:  AddCall,
		body: `{"text":"Call from +1 (415) 523-7743","date":1714566795,"from":"Jeremy Watts","to":"Jason Nash","element":{"id":18221265,"type":"contact"},"duration":250,"link":"https://example.com/dialog.mp3"}`,
		want: `{"text":"Call from +1 (415) 523-7743","date":1714566795,"from":"Jeremy Watts","to":"Jason Nash","element":{"id":18221265,"type":"contact"},"link":"https://example.com/dialog.mp3","duration":250}`,
	},
}

func TestValidateSeedExamples(t *testing.T) {
	for _, tc := range seedExamples {
		t.Run(tc.name, func(t *testing.T) {
			got := mustValidate(t, tc.typ, tc.body)
			if got != tc.want {
				t.Errorf("canonical form\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// fullBodies hold every field of each type, valid; the tests change one at a time.
var fullBodies = map[Type]string{
	ShowMessage:      `{"header":"h","text":"t","date":1714566795,"icon":"https://example.com/i.png"}`,
	ShowMessageError: `{"header":"h","text":"t","date":1714566795,"link":"/x"}`,
	ShowNotification: `{"text":{"header":"h","text":"t"},"date":1714566795,"type":"call"}`,
	AddError:         `{"header":"h","text":"t","date":1714566795,"link":"/x"}`,
	AddCall:          `{"text":"t","date":1714566795,"header":"h","from":"f","to":"o","element":{"id":1,"type":"lead"},"link":"https://example.com/r.mp3","duration":1}`,
}

// absent as a value removes the field.
var absent = new(struct{})

// with returns typ's full body with the field at path (dotted) set to the JSON value,
// or removed when value is absent.
func with(t *testing.T, typ Type, path string, value any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(fullBodies[typ]), &m); err != nil {
		t.Fatal(err)
	}
	parent, name := m, path
	if dot := strings.IndexByte(path, '.'); dot >= 0 {
		parent = maps.Clone(m[path[:dot]].(map[string]any))
		m[path[:dot]], name = parent, path[dot+1:]
	}
	switch v := value.(type) {
	case *struct{}:
		delete(parent, name)
	case string:
		parent[name] = json.RawMessage(v)
	default:
		t.Fatalf("value %v: want absent or a JSON string", v)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// quote returns s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

type rejection struct {
	name  string
	typ   Type
	body  string
	field string
	msg   string
}

func checkRejections(t *testing.T, cases []rejection) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, warnings, err := Validate(tc.typ, []byte(tc.body), testNow)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Validate(%s, %s) = %#v, %v; want an *Error", tc.typ, tc.body, p, err)
			}
			want := &Error{Code: CodeInvalidField, Field: tc.field, Message: tc.msg}
			if *e != *want || p != nil || warnings != nil {
				t.Errorf("Validate(%s, %.200s)\n got %#v, %q, %#v\nwant %#v", tc.typ, tc.body, p, warnings, e, want)
			}
		})
	}
}

// mustValidate validates body as typ with no warnings and returns the canonical form.
func mustValidate(t *testing.T, typ Type, body string) string {
	t.Helper()
	p, warnings, err := Validate(typ, []byte(body), testNow)
	if err != nil {
		t.Fatalf("Validate(%s, %.200s): %v", typ, body, err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %q", warnings)
	}
	if p.Type() != typ {
		t.Errorf("payload of type %s", p.Type())
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// field returns the JSON value of the field at the dotted path of a canonical form,
// "absent" when it is not there.
func field(t *testing.T, canonical, path string) string {
	t.Helper()
	for {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(canonical), &m); err != nil {
			t.Fatal(err)
		}
		name, rest, nested := strings.Cut(path, ".")
		v, ok := m[name]
		if !ok {
			return "absent"
		}
		if !nested {
			return string(v)
		}
		canonical, path = string(v), rest
	}
}

var requiredFields = map[Type][]string{
	ShowMessage:      {"header", "text"},
	ShowMessageError: {"header", "text"},
	ShowNotification: {"text.header", "text.text", "type"},
	AddError:         {"text"},
	AddCall:          {"text", "element.type"},
}

func TestValidateRequiredStrings(t *testing.T) {
	var cases []rejection
	for _, typ := range allTypes {
		for _, f := range requiredFields[typ] {
			for _, v := range []struct {
				name  string
				value any
				msg   string
			}{
				{"missing", absent, "is required"},
				{"null", `null`, "is required"},
				{"empty", `""`, "is required"},
				{"white space", quote(" \t\r\n\u00a0\u2003\ufeff"), "is required"},
				{"number", `42`, "must be a string"},
				{"bool", `true`, "must be a string"},
				{"object", `{"a":"b"}`, "must be a string"},
				{"array", `["a"]`, "must be a string"},
			} {
				cases = append(cases, rejection{
					name: fmt.Sprintf("%s/%s/%s", typ, f, v.name), typ: typ,
					body: with(t, typ, f, v.value), field: f, msg: v.msg,
				})
			}
		}
	}
	checkRejections(t, cases)
}

func TestValidateOptionalStrings(t *testing.T) {
	optional := map[Type][]string{
		ShowMessage:      {"icon"},
		ShowMessageError: {"link"},
		AddError:         {"header", "link"},
		AddCall:          {"header", "from", "to", "link"},
	}
	for typ, fields := range optional {
		for _, f := range fields {
			for _, v := range []any{absent, `null`, `""`, quote(" \t\n ")} {
				t.Run(fmt.Sprintf("%s/%s/%v", typ, f, v), func(t *testing.T) {
					if got := field(t, mustValidate(t, typ, with(t, typ, f, v)), f); got != "absent" {
						t.Errorf("%s = %s, want it absent", f, got)
					}
				})
			}
			checkRejections(t, []rejection{
				{fmt.Sprintf("%s/%s/number", typ, f), typ, with(t, typ, f, `1`), f, "must be a string"},
				{fmt.Sprintf("%s/%s/object", typ, f), typ, with(t, typ, f, `{}`), f, "must be a string"},
			})
		}
	}
}

func TestValidateTrimsStrings(t *testing.T) {
	body := `{"header":"\u00a0 Warning\t","text":"\ufeff Connection established \n","date":1714566795,"icon":" https://example.com/i.png "}`
	want := `{"header":"Warning","text":"Connection established","date":1714566795,"icon":"https://example.com/i.png"}`
	if got := mustValidate(t, ShowMessage, body); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestValidatePlainFieldControls(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Incoming\r\ncall", "Incoming call"},
		{"a\tb\x00\x1fc", "a b c"},
		{"\x07ring\x7f", "ring"},
		{"line\u2028separator\u0085next", "line separator next"},
		{"Jos\u00e9 \u202eright-to-left", "Jos\u00e9 \u202eright-to-left"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := mustValidate(t, AddCall, with(t, AddCall, "from", quote(tc.in)))
			if f := field(t, got, "from"); f != quote(tc.want) {
				t.Errorf("from = %s, want %s", f, quote(tc.want))
			}
		})
	}
	checkRejections(t, []rejection{
		{"only controls", ShowMessage, with(t, ShowMessage, "header", quote("\x00\r\n\x1b")), "header", "is required"},
	})
}

func TestValidateLengthLimits(t *testing.T) {
	limits := map[Type]map[string]int{
		ShowMessage:      {"header": 256, "text": 4096},
		ShowMessageError: {"header": 256, "text": 4096},
		ShowNotification: {"text.header": 256, "text.text": 4096},
		AddError:         {"header": 256, "text": 4096},
		AddCall:          {"header": 256, "from": 256, "to": 256, "text": 4096},
	}
	for typ, fields := range limits {
		for f, limit := range fields {
			// Characters, not bytes: é is two bytes, 日 three.
			for _, char := range []string{"a", "é", "日"} {
				at := strings.Repeat(char, limit)
				t.Run(fmt.Sprintf("%s/%s/%d×%s", typ, f, limit, char), func(t *testing.T) {
					if got := field(t, mustValidate(t, typ, with(t, typ, f, quote(at))), f); got != quote(at) {
						t.Errorf("%s changed to %.50s…", f, got)
					}
				})
				checkRejections(t, []rejection{{
					name: fmt.Sprintf("%s/%s/%d×%s", typ, f, limit+1, char), typ: typ,
					body: with(t, typ, f, quote(at+char)), field: f, msg: fmt.Sprintf("must be at most %d characters", limit),
				}})
			}
			// Surrounding white space is trimmed before counting.
			t.Run(fmt.Sprintf("%s/%s/padded", typ, f), func(t *testing.T) {
				mustValidate(t, typ, with(t, typ, f, quote("  "+strings.Repeat("x", limit)+"\n")))
			})
		}
	}
}

func TestValidateTextLength(t *testing.T) {
	// A character reference counts as the character it stands for, so escaping
	// plain text never pushes it over the limit.
	amps := strings.Repeat("&", MaxTextLen)
	if got := field(t, mustValidate(t, AddError, with(t, AddError, "text", quote(amps))), "text"); got != quote(strings.Repeat("&amp;", MaxTextLen)) {
		t.Errorf("text = %.50s…", got)
	}
	mustValidate(t, AddError, with(t, AddError, "text", quote(strings.Repeat("&amp;", MaxTextLen))))
	mustValidate(t, AddError, with(t, AddError, "text", quote(strings.Repeat(`'"<`, MaxTextLen/3))))
	checkRejections(t, []rejection{
		{"4097 references", AddError, with(t, AddError, "text", quote(strings.Repeat("&lt;", MaxTextLen+1))), "text", "must be at most 4096 characters"},
		// Under the limit as sent, over it once the markup is normalized: the limit
		// holds for what is stored, so that it validates again.
		{"grows when sanitized", AddError, with(t, AddError, "text", quote(strings.Repeat("<a href=/>", 400))), "text", "must be at most 4096 characters once sanitized"},
		{"nothing left", AddError, with(t, AddError, "text", quote("<script>alert(1)</script>")), "text", "must not be empty once disallowed HTML is removed"},
		{"nothing left nested", ShowNotification, with(t, ShowNotification, "text.text", quote("<img src=x>")), "text.text", "must not be empty once disallowed HTML is removed"},
	})
}

func TestValidateSanitizesEveryText(t *testing.T) {
	const in = `<b onclick="x">bold</b><script>alert(1)</script> & more`
	const want = `"\u003cb\u003ebold\u003c/b\u003e \u0026amp; more"`
	for _, tc := range []struct {
		typ  Type
		path string
	}{
		{ShowMessage, "text"}, {ShowMessageError, "text"}, {ShowNotification, "text.text"}, {AddError, "text"}, {AddCall, "text"},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			if got := field(t, mustValidate(t, tc.typ, with(t, tc.typ, tc.path, quote(in))), tc.path); got != want {
				t.Errorf("%s = %s, want %s", tc.path, got, want)
			}
		})
	}
	// Plain fields are not HTML: they are kept as they are, for renderers to escape.
	got := mustValidate(t, ShowMessage, with(t, ShowMessage, "header", quote("<b>a & b</b>")))
	if f := field(t, got, "header"); f != quote("<b>a & b</b>") {
		t.Errorf("header = %s", f)
	}
}

func TestValidateDate(t *testing.T) {
	const day = 24 * 60 * 60
	for _, tc := range []struct {
		name, date string
		want       int64
	}{
		{"seconds", `1714566795`, 1714566795},
		{"milliseconds", `1714566795123`, 1714566795},
		{"fraction truncated", `1714566795.999`, 1714566795},
		{"milliseconds with fraction", `1714566795123.9`, 1714566795},
		{"exponent", `1.714566795e9`, 1714566795},
		{"milliseconds exponent", `1.714566795123E12`, 1714566795},
		{"missing", "", nowUnix},
		{"null", `null`, nowUnix},
		{"zero, as a Go payload without a date encodes", `0`, nowUnix},
		{"negative zero", `-0`, nowUnix},
		{"zero with a fraction", `0.0`, nowUnix},
		{"2000-01-01", `946684800`, 946684800},
		{"2000-01-01 in milliseconds", `946684800000`, 946684800},
		{"a day ahead", fmt.Sprint(nowUnix + day), nowUnix + day},
		{"a day ahead in milliseconds", fmt.Sprint((nowUnix+day)*1000 + 999), nowUnix + day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value := any(tc.date)
			if tc.date == "" {
				value = absent
			}
			got := field(t, mustValidate(t, AddCall, with(t, AddCall, "date", value)), "date")
			if got != fmt.Sprint(tc.want) {
				t.Errorf("date = %s, want %d", got, tc.want)
			}
		})
	}
	const (
		before = "must not be before 2000-01-01T00:00:00Z"
		ahead  = "must not be more than 24 hours ahead"
		number = "must be a number"
	)
	var cases []rejection
	for _, tc := range []struct{ name, date, msg string }{
		{"before 2000", `946684799`, before},
		{"before 2000 in milliseconds", `946684799999`, before},
		{"one", `1`, before},
		{"half a second", `0.5`, before},
		{"negative", `-1714566795`, before},
		{"a second too far ahead", fmt.Sprint(nowUnix + day + 1), ahead},
		{"too far ahead in milliseconds", fmt.Sprint((nowUnix + day + 1) * 1000), ahead},
		{"exactly 10^11 is seconds", `100000000000`, ahead},
		{"beyond int64", `99999999999999999999999`, ahead},
		{"beyond float64", `1e400`, ahead},
		{"hugely negative", `-1e400`, before},
		{"beyond int64 negative", `-9223372036854775809`, before},
		{"string", `"1714566795"`, number},
		{"bool", `true`, number},
		{"object", `{}`, number},
	} {
		for _, typ := range allTypes {
			cases = append(cases, rejection{tc.name + "/" + string(typ), typ, with(t, typ, "date", tc.date), "date", tc.msg})
		}
	}
	checkRejections(t, cases)
}

func TestValidateDateRelativeToNow(t *testing.T) {
	later := testNow.Add(time.Hour)
	p, _, err := Validate(ShowMessage, []byte(`{"header":"h","text":"t"}`), later)
	if err != nil || p.Unix() != later.Unix() {
		t.Errorf("missing date: got %v, %v; want %d", p, err, later.Unix())
	}
	body := fmt.Appendf(nil, `{"header":"h","text":"t","date":%d}`, later.Unix()+24*60*60)
	if _, _, err := Validate(ShowMessage, body, later); err != nil {
		t.Errorf("a day after now: %v", err)
	}
	if _, _, err := Validate(ShowMessage, body, testNow); err == nil {
		t.Errorf("more than a day after now: accepted")
	}
}

func TestValidateShowNotification(t *testing.T) {
	checkRejections(t, []rejection{
		{"text missing", ShowNotification, with(t, ShowNotification, "text", absent), "text", "is required"},
		{"text null", ShowNotification, with(t, ShowNotification, "text", `null`), "text", "is required"},
		{"text a string", ShowNotification, with(t, ShowNotification, "text", quote("Dialing")), "text", "must be an object"},
		{"text an array", ShowNotification, with(t, ShowNotification, "text", `["h","t"]`), "text", "must be an object"},
		{"text a number", ShowNotification, with(t, ShowNotification, "text", `1`), "text", "must be an object"},
		{"text empty", ShowNotification, with(t, ShowNotification, "text", `{}`), "text.header", "is required"},
		{"type info", ShowNotification, with(t, ShowNotification, "type", quote("info")), "type", "must be call or error"},
		{"type upper case", ShowNotification, with(t, ShowNotification, "type", quote("CALL")), "type", "must be call or error"},
	})
	got := mustValidate(t, ShowNotification, with(t, ShowNotification, "type", quote(" error ")))
	if f := field(t, got, "type"); f != `"error"` {
		t.Errorf("type = %s", f)
	}
}

func TestValidateElement(t *testing.T) {
	for _, tc := range []struct{ name, element, want string }{
		{"contact", `{"id":18221265,"type":"contact"}`, `{"id":18221265,"type":"contact"}`},
		{"lead", `{"id":1,"type":"lead"}`, `{"id":1,"type":"lead"}`},
		{"company trimmed", `{"id":9223372036854775807,"type":" company "}`, `{"id":9223372036854775807,"type":"company"}`},
		{"missing", "", "absent"},
		{"null", `null`, "absent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value := any(tc.element)
			if tc.element == "" {
				value = absent
			}
			if got := field(t, mustValidate(t, AddCall, with(t, AddCall, "element", value)), "element"); got != tc.want {
				t.Errorf("element = %s, want %s", got, tc.want)
			}
		})
	}
	var cases []rejection
	for _, tc := range []struct{ name, element, field, msg string }{
		{"a string", `"contact"`, "element", "must be an object"},
		{"an array", `[1,"contact"]`, "element", "must be an object"},
		{"empty", `{}`, "element.id", "is required"},
		{"id missing", `{"type":"lead"}`, "element.id", "is required"},
		{"id null", `{"id":null,"type":"lead"}`, "element.id", "is required"},
		{"id 0", `{"id":0,"type":"lead"}`, "element.id", "must be positive"},
		{"id -1", `{"id":-1,"type":"lead"}`, "element.id", "must be positive"},
		{"id 1.5", `{"id":1.5,"type":"lead"}`, "element.id", "must be an integer"},
		{"id 1.0", `{"id":1.0,"type":"lead"}`, "element.id", "must be an integer"},
		{"id 1e3", `{"id":1e3,"type":"lead"}`, "element.id", "must be an integer"},
		{"id a string", `{"id":"12","type":"lead"}`, "element.id", "must be an integer"},
		{"id bool", `{"id":true,"type":"lead"}`, "element.id", "must be an integer"},
		{"id beyond int64", `{"id":9223372036854775808,"type":"lead"}`, "element.id", "must be at most 9223372036854775807"},
		{"id huge", `{"id":123456789012345678901234567890,"type":"lead"}`, "element.id", "must be at most 9223372036854775807"},
		{"id hugely negative", `{"id":-123456789012345678901234567890,"type":"lead"}`, "element.id", "must be positive"},
		{"type missing", `{"id":1}`, "element.type", "is required"},
		{"type deal", `{"id":1,"type":"deal"}`, "element.type", "must be contact, lead or company"},
		{"type Contact", `{"id":1,"type":"Contact"}`, "element.type", "must be contact, lead or company"},
		{"type a number", `{"id":1,"type":1}`, "element.type", "must be a string"},
	} {
		cases = append(cases, rejection{tc.name, AddCall, with(t, AddCall, "element", tc.element), tc.field, tc.msg})
	}
	checkRejections(t, cases)
}

func TestValidateDuration(t *testing.T) {
	for _, tc := range []struct{ duration, want string }{
		{`0`, `0`}, {`250`, `250`}, {`null`, "absent"}, {"", "absent"},
	} {
		t.Run(tc.duration, func(t *testing.T) {
			value := any(tc.duration)
			if tc.duration == "" {
				value = absent
			}
			if got := field(t, mustValidate(t, AddCall, with(t, AddCall, "duration", value)), "duration"); got != tc.want {
				t.Errorf("duration = %s, want %s", got, tc.want)
			}
		})
	}
	var cases []rejection
	for _, tc := range []struct{ duration, msg string }{
		{`-1`, "must not be negative"},
		{`1.5`, "must be an integer"},
		{`2.50e2`, "must be an integer"},
		{`"250"`, "must be an integer"},
		{`{}`, "must be an integer"},
		{`9223372036854775808`, "must be at most 9223372036854775807"},
		{`-9223372036854775809`, "must not be negative"},
	} {
		cases = append(cases, rejection{tc.duration, AddCall, with(t, AddCall, "duration", tc.duration), "duration", tc.msg})
	}
	checkRejections(t, cases)
}

func TestValidateUnknownFields(t *testing.T) {
	for _, tc := range []struct {
		name     string
		typ      Type
		body     string
		want     string
		warnings []string
	}{
		{
			name:     "top level",
			typ:      ShowMessage,
			body:     `{"header":"h","text":"t","date":1714566795,"zeta":1,"alpha":{"x":1},"Header":"H","callback":"alert(1)"}`,
			want:     `{"header":"h","text":"t","date":1714566795}`,
			warnings: []string{`unknown field "Header" dropped`, `unknown field "alpha" dropped`, `unknown field "callback" dropped`, `unknown field "zeta" dropped`},
		},
		{
			name:     "nested",
			typ:      AddCall,
			body:     `{"text":"t","date":1714566795,"element":{"id":1,"type":"lead","color":"red"},"priority":1}`,
			want:     `{"text":"t","date":1714566795,"element":{"id":1,"type":"lead"}}`,
			warnings: []string{`unknown field "element.color" dropped`, `unknown field "priority" dropped`},
		},
		{
			name:     "inside show_notification text",
			typ:      ShowNotification,
			body:     `{"text":{"header":"h","text":"t","foo":true,"icon":"x"},"type":"call","date":1714566795}`,
			want:     `{"text":{"header":"h","text":"t"},"date":1714566795,"type":"call"}`,
			warnings: []string{`unknown field "text.foo" dropped`, `unknown field "text.icon" dropped`},
		},
		{
			name:     "a field of another type",
			typ:      ShowMessage,
			body:     `{"header":"h","text":"t","date":1714566795,"link":"/x","duration":3}`,
			want:     `{"header":"h","text":"t","date":1714566795}`,
			warnings: []string{`unknown field "duration" dropped`, `unknown field "link" dropped`},
		},
		{
			name:     "odd names quoted",
			typ:      AddError,
			body:     `{"text":"t","date":1714566795,"a\"b\nc":1,"":2}`,
			want:     `{"text":"t","date":1714566795}`,
			warnings: []string{`unknown field "" dropped`, `unknown field "a\"b\nc" dropped`},
		},
		{
			name:     "duplicates: the last one wins, as in JSON.parse",
			typ:      AddError,
			body:     `{"text":"first","text":"second","date":1714566795,"x":1,"x":2,"element":{"id":1},"element":{"id":2}}`,
			want:     `{"text":"second","date":1714566795}`,
			warnings: []string{`duplicate field "element": the last value is used`, `duplicate field "text": the last value is used`, `duplicate field "x": the last value is used`, `unknown field "element" dropped`, `unknown field "x" dropped`},
		},
		{
			name:     "nested duplicates",
			typ:      AddCall,
			body:     `{"text":"t","date":1714566795,"element":{"id":1,"type":"lead","id":2}}`,
			want:     `{"text":"t","date":1714566795,"element":{"id":2,"type":"lead"}}`,
			warnings: []string{`duplicate field "element.id": the last value is used`},
		},
		{
			name:     "escaped names are the names they spell",
			typ:      AddError,
			body:     `{"\u0074ext":"t","date":1714566795}`,
			want:     `{"text":"t","date":1714566795}`,
			warnings: []string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, warnings, err := Validate(tc.typ, []byte(tc.body), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := json.Marshal(p); string(got) != tc.want {
				t.Errorf("payload %s, want %s", got, tc.want)
			}
			if !reflect.DeepEqual(warnings, tc.warnings) {
				t.Errorf("warnings\n got %q\nwant %q", warnings, tc.warnings)
			}
		})
	}
}

func TestValidateBody(t *testing.T) {
	padded := func(n int) []byte {
		body := []byte(`{"text":"t"}`)
		return append(body, strings.Repeat(" ", n-len(body))...)
	}
	for _, tc := range []struct {
		name string
		typ  Type
		body []byte
		code string
	}{
		{"empty", AddError, nil, CodeInvalidJSON},
		{"white space", AddError, []byte(" \n"), CodeInvalidJSON},
		{"array", AddError, []byte(`[{"text":"t"}]`), CodeInvalidJSON},
		{"string", AddError, []byte(`"text"`), CodeInvalidJSON},
		{"number", AddError, []byte(`1714566795`), CodeInvalidJSON},
		{"null", AddError, []byte(`null`), CodeInvalidJSON},
		{"true", AddError, []byte(`true`), CodeInvalidJSON},
		{"malformed", AddError, []byte(`{"text":"t",}`), CodeInvalidJSON},
		{"unterminated", AddError, []byte(`{"text":"t"`), CodeInvalidJSON},
		{"single quotes", AddError, []byte(`{'text':'t'}`), CodeInvalidJSON},
		{"JavaScript literal", AddError, []byte(`{text:"t"}`), CodeInvalidJSON},
		{"trailing garbage", AddError, []byte(`{"text":"t"}x`), CodeInvalidJSON},
		{"two objects", AddError, []byte(`{"text":"t"} {"text":"u"}`), CodeInvalidJSON},
		{"byte order mark", AddError, []byte("\ufeff{\"text\":\"t\"}"), CodeInvalidJSON},
		{"invalid UTF-8 in a string", AddError, []byte("{\"text\":\"caf\xe9\"}"), CodeInvalidJSON},
		{"invalid UTF-8 in a name", AddError, []byte("{\"text\":\"t\",\"\xff\":1}"), CodeInvalidJSON},
		{"invalid UTF-8 outside", AddError, []byte("{\"text\":\"t\"}\xff"), CodeInvalidJSON},
		{"UTF-16", AddError, []byte("{\x00\"\x00t\x00\"\x00:\x001\x00}\x00"), CodeInvalidJSON},
		{"one byte over 64 KiB", AddError, padded(MaxBodySize + 1), CodeTooLarge},
		{"over 64 KiB and not JSON", AddError, make([]byte, 1<<20), CodeTooLarge},
		{"unknown type", Type("show_popup"), []byte(`{"text":"t"}`), CodeUnknownType},
		{"unknown type and too large", Type(""), padded(MaxBodySize + 1), CodeUnknownType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, warnings, err := Validate(tc.typ, tc.body, testNow)
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || p != nil || warnings != nil {
				t.Fatalf("got %#v, %q, %v; want a %s error", p, warnings, err, tc.code)
			}
			if e.Code != CodeUnknownType && e.Field != "" {
				t.Errorf("field %q, want none: the whole body is at fault", e.Field)
			}
		})
	}
	t.Run("exactly 64 KiB", func(t *testing.T) {
		if _, _, err := Validate(AddError, padded(MaxBodySize), testNow); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("escaped lone surrogate", func(t *testing.T) {
		got := mustValidate(t, AddError, `{"text":"a\ud800b","date":1714566795}`)
		if want := `{"text":"a` + "\ufffd" + `b","date":1714566795}`; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

// The canonical form of the largest valid payload, every character chosen to be
// escaped by encoding/json, still fits in a body: otherwise an accepted payload
// could be refused on its next hop.
func TestValidateCanonicalFormFits(t *testing.T) {
	link := "https://example.com/?" + strings.Repeat("&", MaxLinkLen-len("https://example.com/?"))
	body, err := json.Marshal(map[string]any{
		"text":     strings.Repeat(`"`, MaxTextLen),
		"header":   strings.Repeat("<", MaxHeaderLen),
		"from":     strings.Repeat(">", MaxHeaderLen),
		"to":       strings.Repeat("&", MaxHeaderLen),
		"link":     link,
		"element":  map[string]any{"id": int64(1) << 62, "type": "company"},
		"duration": int64(1) << 62,
		"date":     int64(nowUnix) * 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := Validate(AddCall, body, testNow)
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(canonical) > MaxBodySize {
		t.Fatalf("canonical form is %d bytes, over %d", len(canonical), MaxBodySize)
	}
	again, _, err := Validate(AddCall, canonical, testNow)
	if err != nil || !reflect.DeepEqual(again, p) {
		t.Fatalf("canonical form validates to %v, %v", again, err)
	}
	t.Logf("largest canonical form: %d bytes", len(canonical))
}

// The first field at fault, in the contract's order, is the one reported.
func TestValidateReportsFirstFault(t *testing.T) {
	checkRejections(t, []rejection{
		{"header before text", ShowMessage, `{"text":1,"header":1}`, "header", "must be a string"},
		{"text before date", AddCall, `{"date":"x","text":""}`, "text", "is required"},
		{"element before link", AddCall, `{"text":"t","link":"ftp://x","element":{"id":0}}`, "element.id", "must be positive"},
		{"nested text before type", ShowNotification, `{"type":"x","text":{"text":"t"}}`, "text.header", "is required"},
	})
}

func TestValidateErrorJSON(t *testing.T) {
	_, _, err := Validate(AddCall, []byte(`{"text":"t","element":{"id":1,"type":"deal"}}`), testNow)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	got, _ := json.Marshal(ErrorBody{Error: e})
	const want = `{"error":{"code":"invalid_field","field":"element.type","message":"must be contact, lead or company"}}`
	if string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// Validate recycles its state (validations): goroutines that validate different
// bodies one after another, some with warnings or a fault, must each get exactly
// what a first validation of their body gives.
func TestValidateConcurrently(t *testing.T) {
	type outcome struct{ payload, warnings, err string }
	validate := func(typ Type, body string) outcome {
		p, warnings, err := Validate(typ, []byte(body), testNow)
		b, _ := json.Marshal(p)
		w, _ := json.Marshal(warnings)
		return outcome{string(b), string(w), fmt.Sprint(err)}
	}
	cases := []struct {
		typ  Type
		body string
	}{
		{AddCall, `{"text":"<a href=\"https://example.com\" onclick=\"x\">call</a>","element":{"id":1,"type":"lead"}}`},
		{ShowMessage, `{"header":"H","text":"t","extra":1,"more":{"a":[1,2]}}`},
		{AddError, `{"text":"x","link":"javascript:alert(1)"}`},
		{ShowNotification, `{"header":"N","text":"<b>bold</b> and <script>x</script>","date":1714566800}`},
	}
	want := make([]outcome, len(cases))
	for i, c := range cases {
		want[i] = validate(c.typ, c.body)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 200 {
				i := (g + n) % len(cases)
				if got := validate(cases[i].typ, cases[i].body); got != want[i] {
					t.Errorf("%s %s: got %+v, want %+v", cases[i].typ, cases[i].body, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkValidate(b *testing.B) {
	body := []byte(seedExamples[len(seedExamples)-1].body)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Validate(AddCall, body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

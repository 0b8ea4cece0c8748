package events_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kommo-notify/notify/events"
)

func ExampleValidate() {
	body := []byte(`{
		"text": "Call from <b>+1 (415) 523-7743</b><script>alert(1)</script>",
		"date": 1714566795123,
		"from": "Jeremy Watts",
		"element": {"id": 18221265, "type": "contact", "color": "red"}
	}`)
	p, warnings, err := events.Validate(events.AddCall, body, time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	canonical, _ := json.Marshal(p)
	fmt.Println(string(canonical))
	fmt.Println(warnings)

	_, _, err = events.Validate(events.AddCall, []byte(`{"text":"t","element":{"id":1,"type":"deal"}}`), time.Now())
	fmt.Println(err)
	// Output:
	// {"text":"Call from \u003cb\u003e+1 (415) 523-7743\u003c/b\u003e","date":1714566795,"from":"Jeremy Watts","element":{"id":18221265,"type":"contact"}}
	// [unknown field "element.color" dropped]
	// invalid_field: element.type must be contact, lead or company
}

func ExamplePlainText() {
	text := events.SanitizeHTML(`<p>Failed to set the task!</p><p>See <a href="/contacts/list/?term=4951234567">the contact</a>.</p>`)
	fmt.Println(events.PlainText(text))
	// Output:
	// Failed to set the task!
	//
	// See the contact (/contacts/list/?term=4951234567).
}

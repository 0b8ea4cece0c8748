package email

import (
	"errors"
	"io"
	"net/textproto"
	"strings"
	"testing"

	"github.com/kommo-notify/notify/channels"
)

func TestClassify(t *testing.T) {
	const rcpt = "ann@example.com"
	code := func(c int) error { return &textproto.Error{Code: c, Msg: "5.1.1 <" + rcpt + ">: scripted"} }
	lost := io.EOF
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
		keep      bool
		stale     bool
	}{
		{"accepted", nil, false, true, false},
		{"MAIL refused, reset", &stepError{step: stepMail, err: code(553)}, true, true, false},
		{"RCPT refused, reset", &stepError{step: stepRcpt, err: code(550)}, true, true, false},
		{"RCPT refused, RSET lost", &stepError{step: stepRcpt, err: code(550), reset: lost}, true, false, false},
		{"RCPT greylisted, reset", &stepError{step: stepRcpt, err: code(451)}, false, true, false},
		{"RCPT greylisted, RSET lost", &stepError{step: stepRcpt, err: code(451), reset: lost}, false, false, false},
		{"MAIL: server closing", &stepError{step: stepMail, err: code(421)}, false, false, true},
		{"RCPT: server closing", &stepError{step: stepRcpt, err: code(421)}, false, false, true},
		{"MAIL: no reply", &stepError{step: stepMail, err: lost}, false, false, true},
		{"RCPT: no reply", &stepError{step: stepRcpt, err: lost}, false, false, true},
		{"DATA refused", &stepError{step: stepData, err: code(554)}, true, false, false},
		{"DATA: no reply", &stepError{step: stepData, err: lost}, false, false, false},
		{"content lost", &stepError{step: stepContent, err: lost}, false, false, false},
		{"end of DATA refused", &stepError{step: stepEnd, err: code(554)}, true, true, false},
		{"end of DATA deferred", &stepError{step: stepEnd, err: code(452)}, false, true, false},
		{"end of DATA: server closing", &stepError{step: stepEnd, err: code(421)}, false, false, false},
		{"end of DATA: no reply", &stepError{step: stepEnd, err: lost}, false, false, false},
		{"reply out of sequence", &stepError{step: stepData, err: code(250)}, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := classify(tc.err, rcpt)
			if (v.err == nil) != (tc.err == nil) || channels.IsPermanent(v.err) != tc.permanent ||
				v.keep != tc.keep || v.stale != tc.stale {
				t.Fatalf("classify = {err: %v, permanent: %v, keep: %v, stale: %v}, want permanent %v, keep %v, stale %v",
					v.err, channels.IsPermanent(v.err), v.keep, v.stale, tc.permanent, tc.keep, tc.stale)
			}
		})
	}
}

// The error names the step and the server's reply, without the recipient's address,
// and still unwraps to the reply.
func TestClassifyErrorText(t *testing.T) {
	err := &stepError{step: stepRcpt, err: &textproto.Error{Code: 550, Msg: "5.1.1 <ann@example.com>: no such user"}, reset: io.EOF}
	v := classify(err, "ann@example.com")
	text := v.err.Error()
	for _, want := range []string{"RCPT TO: 550", "<a***@example.com>: no such user", "RSET: EOF"} {
		if !strings.Contains(text, want) {
			t.Errorf("%q lacks %q", text, want)
		}
	}
	if strings.Contains(text, "ann@example.com") {
		t.Errorf("%q carries the address", text)
	}
	var reply *textproto.Error
	if !errors.As(v.err, &reply) || reply.Code != 550 {
		t.Errorf("errors.As finds no 550 in %v", v.err)
	}
}

package center

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// A conditional publish proves its message the only one above the seq it expected,
// nothing about what lies below: a fold that starts from a state whose last is
// another seq must read the stream, or it skips what a crashed writer left.
func TestFoldUsesTheProofOnlyFromItsSeq(t *testing.T) {
	ctx := t.Context()
	s := newCrashStore(t)
	u := user{account: "acme", user: "42"}
	deliver(t, s, crashEvent(t, "a"))
	left := publishOnly(t, s, u, crashEvent(t, "b")) // a writer crashed after this
	body, err := s.encodeItem(crashEvent(t, "c"), s.cfg.Now().Unix())
	if err != nil {
		t.Fatal(err)
	}
	ack, err := s.js.Publish(ctx, u.subject(), body, jetstream.WithExpectLastSequencePerSubject(left))
	if err != nil {
		t.Fatal(err)
	}
	known := &proven{after: left, msg: storedMsg{seq: ack.Sequence, subject: u.subject(), data: body}}
	if err := s.catchUp(ctx, u, ack.Sequence, known); err != nil {
		t.Fatal(err)
	}
	items, _, unread, err := s.List(ctx, u.account, u.user, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 || unread != 3 {
		t.Errorf("%d items, unread %d; want 3 (b left by the crash, folded in)", len(items), unread)
	}
	if err := s.CheckState(ctx, u.account, u.user); err != nil {
		t.Error(err)
	}
}

// The stream refuses a publish whose expected seq is not the subject's newest with
// "wrong last sequence", and 0 expects no message on the subject at all: add's
// fallback and its first add of a user rest on both.
func TestTheStreamChecksTheExpectedLastSeq(t *testing.T) {
	ctx := t.Context()
	s := newCrashStore(t)
	u := user{account: "acme", user: "42"}
	other := user{account: "acme", user: "43"}
	publish := func(u user, after uint64) (uint64, error) {
		ack, err := s.js.Publish(ctx, u.subject(), []byte(`{}`), jetstream.WithExpectLastSequencePerSubject(after))
		if err != nil {
			return 0, err
		}
		return ack.Sequence, nil
	}
	first, err := publish(u, 0)
	if err != nil {
		t.Fatalf("expecting nothing on an empty subject: %v", err)
	}
	if _, err := publish(other, 0); err != nil { // another user's messages do not count
		t.Fatalf("expecting nothing on another empty subject: %v", err)
	}
	if _, err := publish(u, 0); !wrongLastSequence(err) {
		t.Errorf("expecting nothing on a subject with a message: %v, want wrong last sequence", err)
	}
	second, err := publish(u, first)
	if err != nil {
		t.Fatalf("expecting the newest: %v", err)
	}
	if _, err := publish(u, first); !wrongLastSequence(err) {
		t.Errorf("expecting an older message: %v, want wrong last sequence", err)
	}
	if err := s.deleteMsg(ctx, second); err != nil {
		t.Fatal(err)
	}
	if _, err := publish(u, second); !wrongLastSequence(err) {
		t.Errorf("expecting a deleted newest message: %v, want wrong last sequence", err)
	}
	if _, err := publish(u, first); err != nil {
		t.Errorf("expecting the newest left after a delete: %v", err)
	}
}

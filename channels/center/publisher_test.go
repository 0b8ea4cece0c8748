package center

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events/natstest"
)

// pubWait bounds every wait for something that should happen at once.
const pubWait = 3 * time.Second

func TestParseAck(t *testing.T) {
	msg := func(data string) *nats.Msg { return &nats.Msg{Data: []byte(data)} }
	status := func(code string) *nats.Msg {
		return &nats.Msg{Header: nats.Header{"Status": []string{code}}}
	}
	apiErr := func(code jetstream.ErrorCode, wrongLast bool) func(*testing.T, error) {
		return func(t *testing.T, err error) {
			var ae *jetstream.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T) is no *jetstream.APIError", err, err)
			}
			if ae.ErrorCode != code {
				t.Errorf("err_code %d, want %d", ae.ErrorCode, code)
			}
			if wrongLastSequence(err) != wrongLast {
				t.Errorf("wrongLastSequence(%v) = %v, want %v", err, !wrongLast, wrongLast)
			}
		}
	}
	anyErr := func(t *testing.T, err error) {
		if errors.Is(err, nats.ErrNoResponders) || wrongLastSequence(err) {
			t.Errorf("error %v, want a plain error", err)
		}
	}
	cases := []struct {
		name string
		msg  *nats.Msg
		seq  uint64                  // the seq expected when err is nil
		err  func(*testing.T, error) // checks the error expected, if one is
	}{
		{name: "pub ack", msg: msg(`{"stream":"S","seq":42}`), seq: 42},
		{name: "duplicate after seq", msg: msg(`{"stream":"S","seq":7,"duplicate":true}`), seq: 7},
		{name: "domain before seq", msg: msg(`{"stream":"S","domain":"d","seq":9}`), seq: 9},
		{name: "seq first", msg: msg(`{"seq":5,"stream":"S"}`), seq: 5},
		{name: "spaces", msg: msg(`{"stream": "S", "seq": 11}`), seq: 11},
		{name: "largest seq", msg: msg(`{"stream":"S","seq":18446744073709551615}`), seq: 18446744073709551615},
		{
			name: "wrong last sequence",
			msg:  msg(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"S","seq":0}`),
			err:  apiErr(jetstream.JSErrCodeStreamWrongLastSequence, true),
		},
		{
			name: "other stream error",
			msg:  msg(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`),
			err:  apiErr(10077, false),
		},
		{
			name: "no responders",
			msg:  status("503"),
			err: func(t *testing.T, err error) {
				if !errors.Is(err, nats.ErrNoResponders) {
					t.Errorf("error %v, want nats.ErrNoResponders", err)
				}
			},
		},
		{name: "other status", msg: status("408"), err: anyErr},
		{name: "empty without status", msg: msg(""), err: anyErr},
		{name: "seq zero", msg: msg(`{"stream":"S","seq":0}`), err: anyErr},
		{name: "no seq", msg: msg(`{"stream":"S"}`), err: anyErr},
		{name: "seq past uint64", msg: msg(`{"stream":"S","seq":18446744073709551616}`), err: anyErr},
		{name: "cut short", msg: msg(`{"stream":"S","seq":`), err: anyErr},
		{name: "not json", msg: msg(`+OK`), err: anyErr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seq, err := parseAck(c.msg)
			if c.err == nil {
				if err != nil || seq != c.seq {
					t.Fatalf("parseAck(%s) = %d, %v; want %d", c.msg.Data, seq, err, c.seq)
				}
				return
			}
			if err == nil {
				t.Fatalf("parseAck(%s) = %d, no error", c.msg.Data, seq)
			}
			if seq != 0 {
				t.Errorf("seq %d with the error, want 0", seq)
			}
			c.err(t, err)
		})
	}
}

// On a real stream, a publish stores its message and returns the stream's seq; an
// expected last subject seq that is not the subject's newest is refused by the stream
// and stores nothing; a subject no stream captures answers no-responders.
func TestPublisherOnARealStream(t *testing.T) {
	srv := natstest.Start(t)
	js := srv.JetStream(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "P", Subjects: []string{"p.>"}})
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(srv.Conn(t), slog.New(slog.DiscardHandler))
	stored := func(seq uint64, subject, data string) {
		t.Helper()
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		if m.Subject != subject || string(m.Data) != data {
			t.Errorf("seq %d holds %s %q, want %s %q", seq, m.Subject, m.Data, subject, data)
		}
	}
	msgs := func() uint64 {
		t.Helper()
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	first, err := p.publish(ctx, "p.a", []byte("one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	stored(first, "p.a", "one")

	other, err := p.publish(ctx, "p.b", []byte("other"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if other <= first {
		t.Fatalf("seq %d after %d", other, first)
	}

	zero := uint64(0)
	if _, err := p.publish(ctx, "p.a", []byte("refused"), &zero); !wrongLastSequence(err) {
		t.Errorf("expecting nothing on a subject with a message: %v, want wrong last sequence", err)
	}
	if _, err := p.publish(ctx, "p.a", []byte("refused"), &other); !wrongLastSequence(err) {
		t.Errorf("expecting another subject's seq: %v, want wrong last sequence", err)
	}
	if n := msgs(); n != 2 {
		t.Errorf("%d messages after two refused publishes, want 2", n)
	}

	second, err := p.publish(ctx, "p.a", []byte("two"), &first)
	if err != nil {
		t.Fatalf("expecting the subject's newest: %v", err)
	}
	if second != other+1 {
		t.Errorf("seq %d, want %d", second, other+1)
	}
	stored(second, "p.a", "two")
	third, err := p.publish(ctx, "p.c", []byte("three"), &zero)
	if err != nil {
		t.Fatalf("expecting nothing on an empty subject: %v", err)
	}
	stored(third, "p.c", "three")

	noStream, cancelNoStream := context.WithTimeout(ctx, 5*time.Second)
	defer cancelNoStream()
	if _, err := p.publish(noStream, "nowhere.a", []byte("lost"), nil); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("publish where no stream listens: %v, want nats.ErrNoResponders", err)
	}
	if n := msgs(); n != 4 {
		t.Errorf("%d messages, want 4", n)
	}
}

// fakeStream stands in for a stream on fake.>, on a connection of its own: it
// answers each message with a PubAck whose seq is the message's data, except those
// hold picks, whose answers wait for release. A message without a reply subject (a
// marker) is recorded and not answered.
type fakeStream struct {
	nc      *nats.Conn
	hold    func(data string) bool
	arrived chan arrival // every message, in the order it came

	mu       sync.Mutex
	held     map[string]string // reply subject by data, of answers held back
	released int               // answers released so far
}

// arrival is a message the fake stream received, with how many held answers had
// been released when it came.
type arrival struct {
	data     string
	released int
}

func startFakeStream(t *testing.T, srv *natstest.Server, hold func(data string) bool) *fakeStream {
	t.Helper()
	f := &fakeStream{nc: srv.Conn(t), hold: hold, arrived: make(chan arrival, 1024), held: make(map[string]string)}
	sub, err := f.nc.Subscribe("fake.>", func(m *nats.Msg) {
		data := string(m.Data)
		f.mu.Lock()
		f.arrived <- arrival{data: data, released: f.released}
		held := m.Reply != "" && f.hold(data)
		if held {
			f.held[data] = m.Reply
		}
		f.mu.Unlock()
		if m.Reply != "" && !held {
			f.ack(t, m.Reply, data)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return f
}

func (f *fakeStream) ack(t *testing.T, reply, data string) {
	if err := f.nc.Publish(reply, []byte(`{"stream":"F","seq":`+data+`}`)); err != nil {
		t.Errorf("answer %s: %v", data, err)
	}
}

// release sends the held answer to the message whose data is data.
func (f *fakeStream) release(t *testing.T, data string) {
	t.Helper()
	f.mu.Lock()
	reply, ok := f.held[data]
	delete(f.held, data)
	f.released++
	f.mu.Unlock()
	if !ok {
		t.Fatalf("no answer held for %s", data)
	}
	f.ack(t, reply, data)
}

// next is the next message the fake stream received.
func (f *fakeStream) next(t *testing.T) arrival {
	t.Helper()
	select {
	case a := <-f.arrived:
		return a
	case <-time.After(pubWait):
		t.Fatal("no message reached the fake stream")
		return arrival{}
	}
}

// marker sends a message without a reply on nc and returns what reached the fake
// stream before it. Messages of one connection reach a subscriber in order, so these
// are all nc had sent when marker was called.
func (f *fakeStream) marker(t *testing.T, nc *nats.Conn) []arrival {
	t.Helper()
	if err := nc.Publish("fake.marker", []byte("marker")); err != nil {
		t.Fatal(err)
	}
	var before []arrival
	for {
		a := f.next(t)
		if a.data == "marker" {
			return before
		}
		before = append(before, a)
	}
}

// pubResult is what one publish returned, and the seq its caller expects.
type pubResult struct {
	want uint64
	seq  uint64
	err  error
}

// startPublish publishes seq's decimal form to the fake stream, which answers with
// it as the seq, and returns where the result will come.
func startPublish(ctx context.Context, p *publisher, seq uint64) <-chan pubResult {
	out := make(chan pubResult, 1)
	go func() {
		data := strconv.FormatUint(seq, 10)
		got, err := p.publish(ctx, "fake."+data, []byte(data), nil)
		out <- pubResult{want: seq, seq: got, err: err}
	}()
	return out
}

func result(t *testing.T, ch <-chan pubResult) pubResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(pubWait):
		t.Fatal("a publish was not answered")
		return pubResult{}
	}
}

// ownAnswer fails unless the publish got the seq it expects.
func ownAnswer(t *testing.T, r pubResult) {
	t.Helper()
	if r.err != nil || r.seq != r.want {
		t.Errorf("publish of %d returned %d, %v", r.want, r.seq, r.err)
	}
}

// waitLocked polls cond, called with p.mu held, until it is true.
func waitLocked(t *testing.T, p *publisher, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(pubWait); ; {
		p.mu.Lock()
		ok := cond()
		p.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// batchOut starts a publisher whose gate does nothing and one publish, of "1", whose
// answer the fake stream holds back: the batch out. It returns once "1" arrived.
func batchOut(t *testing.T) (*fakeStream, *publisher, context.Context, <-chan pubResult) {
	t.Helper()
	srv := natstest.Start(t)
	f := startFakeStream(t, srv, func(data string) bool { return data == "1" })
	p := newPublisher(srv.Conn(t), slog.New(slog.DiscardHandler))
	withoutGate(p)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	first := startPublish(ctx, p, 1)
	if a := f.next(t); a.data != "1" {
		t.Fatalf("first message %q, want 1", a.data)
	}
	return f, p, ctx, first
}

// withoutGate makes the batch gate of p do nothing, so only the last answer of the
// batch out sends the next. It must be called before p's first publish.
func withoutGate(p *publisher) {
	p.gate.Stop()
	p.gate = time.AfterFunc(time.Hour, func() {})
	p.gate.Stop()
}

// Publishes that come while a batch is out wait in the queue, nothing of them sent,
// and go out together as the next batch when the batch out is answered; each caller
// gets its own answer.
func TestPublisherQueuesBehindTheBatchOut(t *testing.T) {
	f, p, ctx, first := batchOut(t)
	const n = 20
	results := make([]<-chan pubResult, n)
	for i := range results {
		results[i] = startPublish(ctx, p, uint64(100+i))
	}
	waitLocked(t, p, "20 publishes queued", func() bool { return len(p.queue) == n })
	p.mu.Lock()
	if p.left != 1 || p.batch != 1 {
		t.Errorf("batch %d out with %d unanswered, want batch 1 with 1", p.batch, p.left)
	}
	p.mu.Unlock()
	if before := f.marker(t, p.nc); len(before) != 0 {
		t.Errorf("%d queued messages reached the stream while the batch out was unanswered", len(before))
	}

	f.release(t, "1")
	ownAnswer(t, result(t, first))
	seen := make(map[string]bool)
	for range n {
		a := f.next(t)
		if a.released != 1 {
			t.Errorf("message %s reached the stream before the batch out was answered", a.data)
		}
		if seen[a.data] {
			t.Errorf("message %s reached the stream twice", a.data)
		}
		seen[a.data] = true
	}
	for _, ch := range results {
		ownAnswer(t, result(t, ch))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.batch != 2 || p.left != 0 || len(p.queue) != 0 || len(p.waiting) != 0 {
		t.Errorf("after all answers: batch %d, %d unanswered, %d queued, %d waiting; want batch 2 (the 20 in one), 0, 0, 0",
			p.batch, p.left, len(p.queue), len(p.waiting))
	}
}

// A batch out that is not answered within batchGate does not hold up the next: the
// publishes queued behind it go out and are answered while it is still unanswered,
// and its answer, when it comes, still reaches its caller.
func TestPublisherGateSendsPastALateBatch(t *testing.T) {
	srv := natstest.Start(t)
	f := startFakeStream(t, srv, func(data string) bool { return data == "1" })
	p := newPublisher(srv.Conn(t), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	first := startPublish(ctx, p, 1)
	if a := f.next(t); a.data != "1" {
		t.Fatalf("first message %q, want 1", a.data)
	}
	const n = 20
	results := make([]<-chan pubResult, n)
	for i := range results {
		results[i] = startPublish(ctx, p, uint64(100+i))
	}
	for range n {
		if a := f.next(t); a.released != 0 {
			t.Errorf("message %s reached the stream only after the late batch was answered", a.data)
		}
	}
	for _, ch := range results {
		ownAnswer(t, result(t, ch))
	}
	select {
	case r := <-first:
		t.Fatalf("the unanswered publish returned %d, %v", r.seq, r.err)
	default:
	}
	f.release(t, "1")
	ownAnswer(t, result(t, first))
}

// A caller that gives up while its publish is queued gets ctx's error at once, and
// its message is never sent; the others queued with it go out and are answered.
func TestPublisherCallerGivingUpInTheQueue(t *testing.T) {
	f, p, ctx, first := batchOut(t)
	// The one given up on is queued first, so it would be sent before the others.
	giveUp, stop := context.WithCancel(ctx)
	defer stop()
	gone := startPublish(giveUp, p, 2)
	waitLocked(t, p, "the publish queued", func() bool { return len(p.queue) == 1 })
	b := startPublish(ctx, p, 3)
	c := startPublish(ctx, p, 4)
	waitLocked(t, p, "three publishes queued", func() bool { return len(p.queue) == 3 })

	stop()
	if r := result(t, gone); !errors.Is(r.err, context.Canceled) || r.seq != 0 {
		t.Errorf("publish given up on returned %d, %v; want context.Canceled", r.seq, r.err)
	}
	f.release(t, "1")
	ownAnswer(t, result(t, first))
	ownAnswer(t, result(t, b))
	ownAnswer(t, result(t, c))
	got := map[string]bool{}
	for _, a := range f.marker(t, p.nc) {
		got[a.data] = true
	}
	if got["2"] || !got["3"] || !got["4"] || len(got) != 2 {
		t.Errorf("the stream received %v after the first, want 3 and 4 only", got)
	}

	// Nothing is left waiting, and the next publish goes out at once.
	p.mu.Lock()
	if p.left != 0 || len(p.queue) != 0 || len(p.waiting) != 0 {
		t.Errorf("%d unanswered, %d queued, %d waiting; want none", p.left, len(p.queue), len(p.waiting))
	}
	p.mu.Unlock()
	ownAnswer(t, result(t, startPublish(ctx, p, 5)))
}

// An answer that never comes holds up nothing past the gate: later publishes go out
// and are answered while the first caller waits, and the first caller gets
// context.DeadlineExceeded at its own deadline. Its answer, coming after that, is
// dropped and disturbs nothing.
func TestPublisherLostAnswer(t *testing.T) {
	srv := natstest.Start(t)
	f := startFakeStream(t, srv, func(data string) bool { return data == "1" })
	p := newPublisher(srv.Conn(t), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	firstCtx, cancelFirst := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelFirst()
	first := startPublish(firstCtx, p, 1)
	if a := f.next(t); a.data != "1" {
		t.Fatalf("first message %q, want 1", a.data)
	}
	const n = 5
	results := make([]<-chan pubResult, n)
	for i := range results {
		results[i] = startPublish(ctx, p, uint64(100+i))
	}
	for _, ch := range results {
		select {
		case r := <-ch:
			ownAnswer(t, r)
		case r := <-first:
			t.Fatalf("the unanswered publish returned (%d, %v) before the later ones were answered", r.seq, r.err)
		}
	}
	r := result(t, first)
	if !errors.Is(r.err, context.DeadlineExceeded) || r.seq != 0 {
		t.Errorf("unanswered publish returned %d, %v; want context.DeadlineExceeded", r.seq, r.err)
	}
	if firstCtx.Err() == nil {
		t.Error("the unanswered publish returned before its deadline")
	}

	// The late answer and the next message's answer come from one connection on one
	// subscription, in order: once the next publish is answered, the late answer has
	// been handled.
	f.release(t, "1")
	ownAnswer(t, result(t, startPublish(ctx, p, 6)))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left != 0 || len(p.queue) != 0 || len(p.waiting) != 0 {
		t.Errorf("%d unanswered, %d queued, %d waiting; want none", p.left, len(p.queue), len(p.waiting))
	}
}

// A no-responders answer, as from a stream without a leader for a moment, is tried
// again: a publish whose first try finds no stream is answered by the stream that
// appears before the next try.
func TestPublisherRetriesNoResponders(t *testing.T) {
	srv := natstest.Start(t)
	p := newPublisher(srv.Conn(t), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	out := make(chan pubResult, 1)
	go func() {
		seq, err := p.publish(ctx, "late.a", []byte("77"), nil)
		out <- pubResult{want: 77, seq: seq, err: err}
	}()
	// The first try's no-responders answer is the only message p's connection
	// receives before the stream appears.
	for deadline := time.Now().Add(pubWait); p.nc.Stats().InMsgs == 0; time.Sleep(time.Millisecond) {
		select {
		case r := <-out:
			t.Fatalf("publish returned %d, %v before the stream appeared", r.seq, r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no no-responders answer")
		}
	}
	stream := srv.Conn(t)
	sub, err := stream.Subscribe("late.a", func(m *nats.Msg) {
		_ = m.Respond([]byte(`{"stream":"L","seq":` + string(m.Data) + `}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := stream.Flush(); err != nil {
		t.Fatal(err)
	}
	ownAnswer(t, result(t, out))
}

// Posts while a batch is out wait in the queue with the publishes, nothing of them
// sent, and go out with the next batch in the order they came; a post while no
// batch is out goes at once.
func TestPublisherPostsRideWithTheNextBatch(t *testing.T) {
	f, p, ctx, first := batchOut(t)
	p.post("fake.frame", []byte("frame-1"))
	second := startPublish(ctx, p, 2)
	waitLocked(t, p, "the publish queued behind the post", func() bool { return len(p.queue) == 2 })
	p.post("fake.frame", []byte("frame-2"))
	if before := f.marker(t, p.nc); len(before) != 0 {
		t.Errorf("%d queued messages reached the stream while the batch out was unanswered", len(before))
	}

	f.release(t, "1")
	ownAnswer(t, result(t, first))
	for _, want := range []string{"frame-1", "2", "frame-2"} {
		a := f.next(t)
		if a.data != want || a.released != 1 {
			t.Errorf("message %q (after %d answers released), want %q after the batch out was answered", a.data, a.released, want)
		}
	}
	ownAnswer(t, result(t, second))
	p.mu.Lock()
	if p.left != 0 || len(p.queue) != 0 || len(p.waiting) != 0 {
		t.Errorf("after all answers: %d unanswered, %d queued, %d waiting; want none", p.left, len(p.queue), len(p.waiting))
	}
	p.mu.Unlock()

	p.post("fake.frame", []byte("frame-3"))
	if a := f.next(t); a.data != "frame-3" {
		t.Errorf("message %q, want frame-3 sent at once with no batch out", a.data)
	}
}

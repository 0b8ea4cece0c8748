package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
)

// consume feeds one channel from its durable consumer until ctx ends, with at most
// the channel's concurrency in flight. The client buffers no more messages than it
// can work on, so ack timers never run out in the buffer (LIBRARIES.md). If the
// consumer goes away (deleted, or the connection closed for good) it is provisioned
// again and consuming resumes.
//
// When ctx ends the channel stops taking work: messages pulled but not started are
// handed back at once, and sends in flight get ShutdownTimeout from that moment; then
// they are cancelled, and a cancelled send is handed back to JetStream too.
func (d *Dispatcher) consume(ctx context.Context, ch channels.Channel) error {
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	stopDeadline := context.AfterFunc(ctx, func() { time.AfterFunc(d.cfg.ShutdownTimeout, cancelSends) })
	defer stopDeadline()
	var inflight sync.WaitGroup
	defer inflight.Wait()

	slots := make(chan struct{}, d.concurrency(ch))
	pool := newWorkers(cap(slots), func(m jetstream.Msg) {
		d.handleDurable(sendCtx, ch, m, func() { <-slots; inflight.Done() })
	})
	defer pool.stop()
	return d.keepConsuming(ctx, d.log.With("channel", ch.Name()), func() error {
		return d.consumeOnce(ctx, ch, slots, &inflight, pool.run)
	})
}

// workers hands messages to at most max goroutines, started as they are needed and
// kept until stop. A goroutine per message would start on a small stack and grow it
// again for every message: a channel's send goes deep (the center's through three
// JetStream requests), and growing the stacks was 14% of the dispatcher's CPU in the
// durable benchmark with the center.
type workers struct {
	work   chan jetstream.Msg
	handle func(jetstream.Msg)
	n, max int // started, and the most there may be
	wg     sync.WaitGroup
}

func newWorkers(max int, handle func(jetstream.Msg)) *workers {
	return &workers{work: make(chan jetstream.Msg), handle: handle, max: max}
}

// run hands m to an idle worker, to a new one while there are fewer than max, else
// to the first that comes free. One goroutine calls it (the consuming loop).
func (w *workers) run(m jetstream.Msg) {
	select {
	case w.work <- m:
		return
	default:
	}
	if w.n < w.max {
		w.n++
		w.wg.Go(func() {
			w.handle(m)
			for m := range w.work {
				w.handle(m)
			}
		})
		return
	}
	w.work <- m
}

// stop lets the workers finish what they hold and waits for them; run must not be
// called again.
func (w *workers) stop() {
	close(w.work)
	w.wg.Wait()
}

// concurrency is how many sends of ch may run at once: the channel's own figure
// (channels.Concurrent), else Config.Concurrency.
func (d *Dispatcher) concurrency(ch channels.Channel) int {
	if c, ok := ch.(channels.Concurrent); ok && c.Concurrency() > 0 {
		return c.Concurrency()
	}
	return d.cfg.Concurrency
}

// keepConsuming runs once until ctx ends. When once returns early (the consumer was
// deleted, the connection closed for good) the streams and consumers are provisioned
// again and once runs again, after a growing pause.
func (d *Dispatcher) keepConsuming(ctx context.Context, log *slog.Logger, once func() error) error {
	for retry := time.Duration(0); ; {
		if ctx.Err() != nil {
			return nil
		}
		err := once()
		if ctx.Err() != nil {
			return nil
		}
		retry = min(max(2*retry, 100*time.Millisecond), 5*time.Second)
		log.Warn("consumer interrupted, resuming", "error", err, "in", retry.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
		if err := d.Provision(ctx); err != nil && ctx.Err() == nil {
			log.Error("provision after interruption", "error", err)
		}
	}
}

// consumeOnce pulls from the channel's consumer until ctx ends or the iterator fails.
func (d *Dispatcher) consumeOnce(ctx context.Context, ch channels.Channel, slots chan struct{}, inflight *sync.WaitGroup, handle func(jetstream.Msg)) error {
	cons, err := d.js.Consumer(ctx, StreamName, ch.Name())
	if err != nil {
		return err
	}
	// A missing heartbeat is no reason to drop the iterator (and leave what it holds to
	// the ack wait): it is often only Next not being called while every slot is busy,
	// and the iterator pulls again by itself.
	it, err := cons.Messages(jetstream.PullMaxMessages(cap(slots)), jetstream.WithMessagesErrOnMissingHeartbeat(false))
	if err != nil {
		return err
	}
	// When ctx ends the iterator drains: it pulls no more, and what the client already
	// holds is handed back rather than left to time out.
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	defer it.Stop()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			handBack(it, d.cfg.ShutdownTimeout)
			return nil
		}
		m, err := it.Next()
		if err != nil {
			<-slots
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() != nil {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			<-slots
			_ = m.NakWithDelay(handBackDelay)
			handBack(it, d.cfg.ShutdownTimeout)
			return nil
		}
		inflight.Add(1)
		handle(m)
	}
}

// handBackDelay is how soon a message handed back at shutdown may be delivered again.
// Not at once: the draining pull's inbox may still be subscribed for a moment, and
// JetStream would hand the message straight back to it, where nobody takes it any
// more and it waits out the ack wait.
const handBackDelay = time.Second

// handBack returns every message a draining iterator still holds to JetStream, for
// another dispatcher (or this one, restarted) to take. A drain that does not end (the
// connection is gone) is cut after within: those messages come back after the ack
// wait instead.
func handBack(it jetstream.MessagesContext, within time.Duration) {
	it.Drain()
	cut := time.AfterFunc(within, it.Stop)
	defer cut.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			return
		}
		_ = m.NakWithDelay(handBackDelay)
	}
}

// handleDurable delivers one stored event through one channel and acknowledges it,
// asks for redelivery with backoff, or dead-letters it. A redelivered event (or a
// replay) skips the recipients whose status record says they are done, so a retry of
// one recipient of an _all event, or a redelivery after a crash, does not send twice.
//
// The message is acknowledged once the status records of its deliveries are stored,
// which may be after handleDurable returns; release runs after that, exactly once.
func (d *Dispatcher) handleDurable(ctx context.Context, ch channels.Channel, m jetstream.Msg, release func()) {
	s := &settlement{d: d, m: m, channel: ch.Name(), release: release}
	s.pending.Store(1) // handleDurable's own share, given up when it returns
	defer s.done()

	meta, err := m.Metadata()
	if err != nil {
		d.log.Error("message without metadata", "channel", ch.Name(), "subject", m.Subject(), "error", err)
		s.term()
		return
	}
	attempt := int(meta.NumDelivered)
	replay := d.replayChannel(m.Headers())
	if replay != "" && replay != ch.Name() {
		return // a replay for another channel: acknowledged
	}
	reports := replay == ch.Name() || (replay == "" && ch.Name() == d.owner)
	ev, err := d.decoded.get(meta.Sequence.Stream, meta.Timestamp, func() (*events.Event, error) {
		ev, _, err := decode(m.Subject(), m.Headers(), m.Data(), meta.Timestamp, func() string {
			return events.StreamID(meta.Timestamp, meta.Sequence.Stream)
		})
		return ev, err
	})
	if err != nil {
		s.handled = true
		d.rejectDurable(ctx, m, reports, attempt, err)
		return
	}
	s.id = ev.ID
	if reports && attempt == 1 && replay == "" {
		d.metrics.Received(ev.Type)
	}

	if isLive(ch) && time.Since(ev.Accepted) > d.cfg.PopupMaxAge {
		s.finish(ev, ev.User, attempt, result{outcome: OutcomeSkipped, reason: channels.ReasonExpired})
		return
	}
	users, err := d.recipients(ctx, ch, ev)
	if err == nil && (attempt > 1 || replay != "") && len(users) > 0 {
		users, err = d.unfinished(ctx, ch.Name(), ev, users, replay != "")
	}
	if err != nil {
		d.log.Warn("resolve recipients, will retry", "event_id", ev.ID, "channel", ch.Name(), "error", err)
		s.retry = d.backoff(attempt, err)
		return
	}
	progress := time.Now()
	for _, user := range users {
		// An _all event to many users outlasts the ack wait; say we are still on it, or
		// JetStream hands it to another worker while this one is sending.
		if time.Since(progress) > d.cfg.AckWait/3 {
			_ = m.InProgress()
			progress = time.Now()
		}
		r := d.send(ctx, ch, ev, user, attempt)
		switch {
		case r.outcome == OutcomeRetry && isLive(ch):
			r.outcome = OutcomeFailed // a live pop-up is not retried
		case r.outcome == OutcomeRetry && attempt >= d.cfg.MaxAttempts:
			r = d.deadLetterDelivery(ctx, ch.Name(), m.Data(), ev, user, attempt, ReasonMaxAttempts, r)
		case r.outcome == OutcomeFailed && !isLive(ch):
			r = d.deadLetterDelivery(ctx, ch.Name(), m.Data(), ev, user, attempt, ReasonPermanent, r)
		}
		s.finish(ev, user, attempt, r)
		if r.outcome == OutcomeRetry {
			s.retry = max(s.retry, d.backoff(attempt, r.err))
		}
	}
}

// settlement answers JetStream about one durable message once everything that must
// come first is done: handleDurable has decided, and every delivery's status record
// is stored (a sent record is the delivery's idempotency record, so it must exist
// before the event is acknowledged). Whoever finishes last acknowledges the message,
// or asks for it again after retry, and releases its slot.
type settlement struct {
	d       *Dispatcher
	m       jetstream.Msg
	channel string
	id      string // the event's, once decoded
	release func()

	pending atomic.Int32 // handleDurable itself and the records not stored yet
	// Written by handleDurable only, before it gives up its share of pending.
	retry   time.Duration // > 0: ask for redelivery after retry
	handled bool          // answered already (terminated, dead-lettered)
}

// finish counts and logs one delivery's outcome and stores its record; the message
// waits for the record.
func (s *settlement) finish(ev *events.Event, user string, attempt int, r result) {
	s.pending.Add(1)
	s.d.record(s.channel, ev, user, attempt, r)
	s.d.writeStatus(s.channel, ev, user, attempt, r, s.done)
}

// term terminates a message that can never be handled.
func (s *settlement) term() {
	s.handled = true
	_ = s.m.Term()
}

// done gives up one share; the last one answers JetStream and releases the slot.
func (s *settlement) done() {
	if s.pending.Add(-1) != 0 {
		return
	}
	switch {
	case s.handled:
	case s.retry > 0:
		s.d.nak(s.m, s.channel, s.id, s.retry)
	default:
		s.d.ack(s.m, s.channel, s.id)
	}
	s.release()
}

// finish counts, logs and stores the outcome of one delivery, and returns once its
// record is stored (or failed to be).
func (d *Dispatcher) finish(channel string, ev *events.Event, user string, attempt int, r result) {
	d.record(channel, ev, user, attempt, r)
	stored := make(chan struct{})
	d.writeStatus(channel, ev, user, attempt, r, func() { close(stored) })
	<-stored
}

// unfinished drops the users whose delivery through channel is already final.
func (d *Dispatcher) unfinished(ctx context.Context, channel string, ev *events.Event, users []string, replay bool) ([]string, error) {
	done, err := d.finished(ctx, channel, ev, users, replay)
	if err != nil {
		return nil, fmt.Errorf("read delivery status: %w", err)
	}
	if len(done) == 0 {
		return users, nil
	}
	return slices.DeleteFunc(slices.Clone(users), func(u string) bool { return done[u] }), nil
}

// replayChannel is the channel a replayed dead letter is for, or "" for an ordinary
// event. A header naming no durable channel is ignored: the event goes everywhere
// rather than nowhere.
func (d *Dispatcher) replayChannel(h nats.Header) string {
	name := h.Get(HeaderReplay)
	if name == "" || !slices.Contains(durableChannels(), name) {
		return ""
	}
	return name
}

// deadLetterDelivery moves a delivery that will never succeed to the dead-letter
// stream. If the dead letter cannot be written the delivery is retried instead, so
// nothing is dropped without a trace.
func (d *Dispatcher) deadLetterDelivery(ctx context.Context, channel string, body []byte, ev *events.Event, user string, attempt int, reason string, r result) result {
	err := d.deadLetter(ctx, deadLetter{
		channel: channel, account: ev.Account, user: user, typ: string(ev.Type),
		eventID: ev.ID, reason: reason, err: r.err, attempts: attempt, body: body,
	})
	if err != nil {
		d.log.Error("write dead letter", "event_id", ev.ID, "channel", channel, "error", err)
		return result{outcome: OutcomeRetry, err: r.err}
	}
	return result{outcome: OutcomeDead, err: r.err}
}

// rejectDurable dead-letters an invalid stored event (reason invalid, channel router)
// and terminates it: retrying cannot make it valid.
func (d *Dispatcher) rejectDurable(ctx context.Context, m jetstream.Msg, reports bool, attempt int, cause error) {
	if !reports {
		_ = m.Term()
		return
	}
	tail := strings.TrimPrefix(m.Subject(), events.SubjectPrefix+".")
	account, user, typ, exact := deadLetterTokens(tail)
	original := ""
	if !exact {
		original = m.Subject()
	}
	_, id := headerID(m.Headers())
	if id == "" {
		if meta, err := m.Metadata(); err == nil {
			id = events.StreamID(meta.Timestamp, meta.Sequence.Stream)
		}
	}
	err := d.deadLetter(ctx, deadLetter{
		channel: RouterChannel, account: account, user: user, typ: typ,
		eventID: id, reason: ReasonInvalid, err: cause, attempts: attempt, body: m.Data(),
		subject: original,
	})
	if err != nil {
		d.log.Error("write dead letter", "event_id", id, "channel", RouterChannel, "error", err)
		d.nak(m, RouterChannel, id, d.backoff(attempt, err))
		return
	}
	d.metrics.Rejected(typeLabel(m.Subject()), errorCode(cause))
	d.log.Warn("durable event rejected", "event_id", id, "subject", m.Subject(), "error", cause)
	_ = m.Term()
}

func (d *Dispatcher) ack(m jetstream.Msg, channel, id string) {
	if err := m.Ack(); err != nil {
		d.log.Warn("ack", "event_id", id, "channel", channel, "error", err)
	}
}

func (d *Dispatcher) nak(m jetstream.Msg, channel, id string, delay time.Duration) {
	if err := m.NakWithDelay(delay); err != nil {
		d.log.Warn("nak", "event_id", id, "channel", channel, "error", err)
	}
}

package dispatcher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
)

// Reply is the answer to a pop-up published with a reply subject.
type Reply struct {
	ID       string   `json:"id"`
	Warnings []string `json:"warnings"`
}

// routePopups routes the pop-up types from core NATS. The subscriptions share a queue
// group, so with any number of dispatchers every pop-up is routed once. On shutdown
// the subscriptions are drained: what NATS already handed over is still routed.
func (d *Dispatcher) routePopups(ctx context.Context) error {
	// Sends outlive ctx by at most ShutdownTimeout, so a drained pop-up still goes out.
	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	var subs []*nats.Subscription
	for _, t := range events.Types() {
		if t.Durable() {
			continue
		}
		sub, err := d.nc.QueueSubscribe(events.SubjectFilter(t), d.cfg.QueueGroup, func(m *nats.Msg) {
			d.routePopup(sendCtx, m)
		})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", t, err)
		}
		if err := sub.SetPendingLimits(d.cfg.PopupPending, popupPendingBytes); err != nil {
			return fmt.Errorf("subscribe %s: %w", t, err)
		}
		subs = append(subs, sub)
	}
	d.popupSubs.watch(subs)
	// The server must have the subscriptions before anyone is told we route.
	flushCtx, cancelFlush := context.WithTimeout(ctx, 10*time.Second)
	err := d.nc.FlushWithContext(flushCtx)
	cancelFlush()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("subscribe pop-ups: %w", err)
	}
	if ctx.Err() == nil {
		d.startedRouting()
	}
	<-ctx.Done()
	d.popupSubs.forget() // a closed subscription no longer says what it dropped
	deadline := time.After(d.cfg.ShutdownTimeout)
	for _, sub := range subs {
		closed := sub.StatusChanged(nats.SubscriptionClosed)
		if err := sub.Drain(); err != nil {
			continue // the connection is already gone: nothing left to drain
		}
		select {
		case <-closed:
		case <-deadline:
			return nil
		}
	}
	return nil
}

func (d *Dispatcher) routePopup(ctx context.Context, m *nats.Msg) {
	now := time.Now()
	ev, warnings, err := decode(m.Subject, m.Header, m.Data, now, events.NewID)
	if err != nil {
		d.metrics.Rejected(typeLabel(m.Subject), errorCode(err))
		d.log.Warn("pop-up rejected", "subject", m.Subject, "error", err)
		d.reply(m, events.ErrorBody{Error: events.AsError(err)})
		return
	}
	d.metrics.Received(ev.Type)
	if m.Header.Get(jetstream.MsgIDHeader) != "" && !d.dedup.firstSeen(ev.ID, now) {
		d.reply(m, Reply{ID: ev.ID, Warnings: orEmpty(warnings)})
		return
	}
	for _, name := range Routes[ev.Type] {
		ch := d.channels[name]
		users, err := d.recipients(ctx, ch, ev)
		if err != nil {
			d.log.Error("resolve recipients", "event_id", ev.ID, "channel", name, "error", err)
			continue
		}
		for _, user := range users {
			r := d.send(ctx, ch, ev, user, 1)
			if r.outcome == OutcomeRetry {
				r.outcome = OutcomeFailed // a pop-up is not worth a retry: it is gone
			}
			d.record(name, ev, user, 1, r)
		}
	}
	d.reply(m, Reply{ID: ev.ID, Warnings: orEmpty(warnings)})
}

func (d *Dispatcher) reply(m *nats.Msg, v any) {
	if m.Reply == "" {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = m.Respond(b)
	}
	if err != nil {
		d.log.Warn("reply", "subject", m.Subject, "error", err)
	}
}

// popupPendingBytes bounds the bytes of pop-ups waiting per subscription: 64 MiB,
// NATS's default; Config.PopupPending bounds their number.
const popupPendingBytes = 64 << 20

// dropCounter counts what a set of subscriptions dropped as NATS slow consumers, for
// a CounterFunc: the live ones' own counts plus what the ones let go had dropped.
type dropCounter struct {
	mu      sync.Mutex
	subs    []*nats.Subscription
	dropped uint64
}

func (c *dropCounter) watch(subs []*nats.Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = subs
}

// forget keeps the counts of the subscriptions watched, which are about to go.
func (c *dropCounter) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropped += c.live()
	c.subs = nil
}

func (c *dropCounter) count() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return float64(c.dropped + c.live())
}

func (c *dropCounter) live() uint64 {
	var n uint64
	for _, s := range c.subs {
		if d, err := s.Dropped(); err == nil {
			n += uint64(d)
		}
	}
	return n
}

// typeLabel is the type token of a subject if it names a known type, for metrics.
func typeLabel(subject string) string {
	if i := strings.LastIndexByte(subject, '.'); i >= 0 {
		if t, ok := events.ParseType(subject[i+1:]); ok {
			return string(t)
		}
	}
	return TypeUnknown
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

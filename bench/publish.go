package bench

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events"
)

// asyncPublisher publishes to JetStream without waiting for each acknowledgement, as
// a busy producer does, and counts the publishes the server refused.
type asyncPublisher struct {
	js     jetstream.JetStream
	failed atomic.Int64
	first  atomic.Pointer[error]
}

func newAsyncPublisher(nc *nats.Conn) (*asyncPublisher, error) {
	p := &asyncPublisher{}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(1024),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			p.failed.Add(1)
			p.first.CompareAndSwap(nil, &err)
		}))
	if err != nil {
		return nil, err
	}
	p.js = js
	return p, nil
}

// publish queues m; it blocks while 1,024 publishes await their acknowledgement.
func (p *asyncPublisher) publish(m *nats.Msg) error {
	_, err := p.js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute))
	return err
}

// addErrors publishes n add_error events of the bench payload to
// <prefix>.<account>.<user>.add_error, users in turn from first, each with its own
// Nats-Msg-Id from ph (the publish time travels in it), and waits until every one is
// acknowledged.
func (p *asyncPublisher) addErrors(ctx context.Context, ph *phase, prefix string, first, n, users int) error {
	for i := range n {
		msg := nats.NewMsg(prefix + "." + benchAccount + "." + userName((first+i)%users) + "." + string(events.AddError))
		_, id := ph.id(time.Now())
		msg.Header.Set(jetstream.MsgIDHeader, id)
		msg.Data = []byte(durableBody)
		if err := p.publish(msg); err != nil {
			return err
		}
	}
	return p.wait(ctx)
}

// wait returns once every publish is acknowledged, with the first refusal if any.
func (p *asyncPublisher) wait(ctx context.Context) error {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("%d publishes still unacknowledged after 5m", p.js.PublishAsyncPending())
	}
	if e := p.first.Load(); e != nil {
		return fmt.Errorf("%d publishes refused: %w", p.failed.Load(), *e)
	}
	return nil
}

// waitIdle returns once every consumer of stream (or only those named, when a daemon
// runs some channels only) has nothing pending and nothing unacknowledged: the daemon
// has finished with every event published so far.
func waitIdle(ctx context.Context, nc *nats.Conn, stream string, only ...string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	var left int64
	return waitFor(ctx, 20*time.Millisecond, time.Minute, func() bool {
		left = 0
		names := s.ConsumerNames(ctx)
		for name := range names.Name() {
			if len(only) > 0 && !slices.Contains(only, name) {
				continue
			}
			c, err := s.Consumer(ctx, name)
			if err != nil {
				left = -1
				return false
			}
			info, err := c.Info(ctx)
			if err != nil {
				left = -1
				return false
			}
			left += int64(info.NumPending) + int64(info.NumAckPending)
		}
		return names.Err() == nil && left == 0
	}, func() int64 { return left })
}

// durablePhase publishes n add_error events at once (users in turn from first) and
// measures them until every one has arrived wherever the scenario counts arrivals.
// With procs nil it only waits (a warm-up). consumers names the dispatcher's consumers
// to wait for when it runs only those (NOTIFY_CHANNELS); none means all.
func (h *harness) durablePhase(ctx context.Context, cur *current, nc *nats.Conn, name string, baseline bool, procs []proc, pid, n, first, users int, consumers ...string) (Row, error) {
	h.logf("%s", name)
	pub, err := newAsyncPublisher(nc)
	if err != nil {
		return Row{}, err
	}
	p := cur.begin(phasePrefix(name), 0)
	defer cur.end()
	var m *meter
	if procs != nil {
		if m, err = startMeter(procs...); err != nil {
			return Row{}, err
		}
	}
	stopProfile := func() {}
	if procs != nil && !baseline {
		stopProfile = h.profile(name, proc{"dispatcher", pid})
	}
	defer stopProfile()
	if err := pub.addErrors(ctx, p, events.SubjectPrefix, first, n, users); err != nil {
		return Row{}, err
	}
	if err := p.drain(ctx, 1, 30*time.Second); err != nil {
		return Row{}, err
	}
	if got := p.arrived.Load(); got < int64(n) {
		return Row{}, fmt.Errorf("%s: %d of %d events arrived", name, got, n)
	}
	// The other consumers may still be at work on the same events: the process's CPU
	// for them counts, and the next phase must not share the machine with them.
	if err := waitIdle(ctx, nc, dispatcher.StreamName, consumers...); err != nil {
		return Row{}, fmt.Errorf("%s: wait for the dispatcher to finish: %w", name, err)
	}
	if m == nil {
		return Row{}, nil
	}
	return p.row(name, baseline, m)
}

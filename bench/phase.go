package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels/relay"
	"github.com/kommo-notify/notify/events"
)

// phase counts and times the events of one phase of a run as they arrive, wherever
// they arrive (websocket clients, the SMTP sink, the FCM emulator). Arrivals of other
// phases are ignored, so late frames of a phase never count in the next one.
type phase struct {
	prefix    string
	rec       Recorder
	arrived   atomic.Int64
	published atomic.Int64
	first     time.Time // the first publish
	lastNanos atomic.Int64
	slots     chan struct{} // closed-loop window: a publish takes a slot, an arrival frees one
}

// current is the phase arrivals count toward.
type current struct{ p atomic.Pointer[phase] }

var phaseSeq atomic.Int64

// begin starts a phase named name (the id prefix is unique across the process).
func (c *current) begin(name string, window int) *phase {
	p := &phase{prefix: fmt.Sprintf("%s%d", name, phaseSeq.Add(1))}
	if window > 0 {
		p.slots = make(chan struct{}, window)
	}
	c.p.Store(p)
	return p
}

func (c *current) end() { c.p.Store(nil) }

// arrive counts event id arriving now; it reports whether the id belongs to the
// current phase.
func (c *current) arrive(id string) bool {
	p := c.p.Load()
	if p == nil {
		return false
	}
	prefix, _, sent, err := parseEventID(id)
	if err != nil || prefix != p.prefix {
		return false
	}
	now := time.Now()
	p.rec.Add(now.Sub(sent))
	p.arrived.Add(1)
	p.lastNanos.Store(now.UnixNano())
	if p.slots != nil {
		select {
		case <-p.slots:
		default:
		}
	}
	return true
}

// id is the id of the phase's next event, published now; it counts the event as
// published.
func (p *phase) id(now time.Time) (int64, string) {
	seq := p.published.Add(1)
	if seq == 1 {
		p.first = now
	}
	return seq, eventID(p.prefix, seq, now)
}

// last is the moment of the phase's last arrival.
func (p *phase) last() time.Time { return time.Unix(0, p.lastNanos.Load()) }

// closedLoop publishes through publish for d with at most window events in flight
// (published, not arrived): the highest rate the system sustains without a queue
// building up anywhere.
func (p *phase) closedLoop(ctx context.Context, d time.Duration, publish func(seq int64, id string) error) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		select {
		case p.slots <- struct{}{}:
		default:
			if err := p.waitSlot(ctx); err != nil {
				return err
			}
		}
		seq, id := p.id(time.Now())
		if err := publish(seq, id); err != nil {
			return err
		}
	}
	return nil
}

// waitSlot blocks until an event of the window arrives.
func (p *phase) waitSlot(ctx context.Context) error {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("no event arrived for 10s (%d of %d arrived)", p.arrived.Load(), p.published.Load())
	}
}

// paced publishes through publish at rate events per second for d. Every
// millisecond it catches up with the events due by then, so a late timer costs a
// small burst, never events; each event's id holds its own publish moment.
func (p *phase) paced(ctx context.Context, rate int, d time.Duration, publish func(seq int64, id string) error) error {
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := int64(0)
	for {
		now := time.Now()
		elapsed := now.Sub(start)
		if elapsed >= d {
			return nil
		}
		due := int64(float64(rate) * elapsed.Seconds())
		for ; sent < due; sent++ {
			seq, id := p.id(time.Now())
			if err := publish(seq, id); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// drain waits until every published event of the phase arrived (each of them
// expected times, such as once per connection for a broadcast) or none has for
// stall; the shortfall is the phase's loss, not an error.
func (p *phase) drain(ctx context.Context, expected int64, stall time.Duration) error {
	err := waitFor(ctx, 5*time.Millisecond, stall,
		func() bool { return p.arrived.Load() >= p.published.Load()*expected },
		func() int64 { return p.arrived.Load() })
	if err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// row is the phase's row: events that arrived, from the first publish to the last
// arrival, with the processes' figures from m.
func (p *phase) row(name string, baseline bool, m *meter) (Row, error) {
	n := p.arrived.Load()
	procs, err := m.stop(n)
	if err != nil {
		return Row{}, err
	}
	r := Row{Name: name, Baseline: baseline, Events: n, Latency: p.rec.Summary(), Procs: procs}
	if n > 0 {
		r.Seconds = p.last().Sub(p.first).Seconds()
		if r.Seconds > 0 {
			r.Throughput = float64(n) / r.Seconds
		}
	}
	return r, nil
}

// The pop-up every popup, broadcast and overload event carries: the seed's
// show_message with an icon, about 170 bytes.
const popupBody = `{"header":"Warning","text":"Connection to the telephony server established: 18 calls are waiting in the queue","icon":"https://crm.example.com/static/icons/phone.png"}`

// popupPublisher publishes show_message events as a producer does: to
// notify.<account>.<user>.show_message with the id in Nats-Msg-Id.
type popupPublisher struct {
	nc *nats.Conn
}

func (pp *popupPublisher) publish(user, id string) error {
	m := &nats.Msg{
		Subject: events.SubjectPrefix + "." + benchAccount + "." + user + "." + string(events.ShowMessage),
		Header:  nats.Header{jetstream.MsgIDHeader: []string{id}},
		Data:    []byte(popupBody),
	}
	return pp.nc.PublishMsg(m)
}

// rawFrames makes the baselines' frames: the bytes the relay would send for the
// same event, with the event's id spliced in. The template is encoded once by the
// relay's own encoder, so the bytes are the dispatcher's, byte for byte but the id.
type rawFrames struct {
	before, after []byte
}

const idMarker = "BENCHIDMARKER"

func newRawFrames() (*rawFrames, error) {
	ev, _, err := events.NewEvent(events.Address{Account: benchAccount, User: "u0", Type: events.ShowMessage}, idMarker, []byte(popupBody), time.Now())
	if err != nil {
		return nil, err
	}
	frame, err := relay.EncodePopup(ev)
	if err != nil {
		return nil, err
	}
	before, after, ok := bytes.Cut(frame, []byte(idMarker))
	if !ok {
		return nil, errors.New("the pop-up frame does not hold its id")
	}
	return &rawFrames{before: before, after: after}, nil
}

func (f *rawFrames) frame(id string) []byte {
	out := make([]byte, 0, len(f.before)+len(id)+len(f.after))
	out = append(out, f.before...)
	out = append(out, id...)
	return append(out, f.after...)
}

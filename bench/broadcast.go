package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kommo-notify/notify/events"
)

// broadcast: one show_message to _all of an account with N users connected (one
// connection each), several times; latency is per connection, from the publish to the
// moment that connection's client decoded the frame. The baseline is the bare relay
// writing the same bytes, published once, to as many connections.
//
// Defaults: 10,000 users, 20 broadcasts per run (--events), one after another (the
// next is published once every connection has the last one).

func runBroadcast(ctx context.Context, h *harness) (*Result, error) {
	users := or(h.o.Users, 10_000)
	rounds := or(h.o.Events, 20)
	rig, err := h.startRelayRig(ctx, users)
	if err != nil {
		return nil, err
	}
	defer rig.close()
	d, bare, nc, frames, tokens := rig.d, rig.bare, rig.nc, rig.frames, rig.tokens

	// Every copy of a broadcast is compared with the first one received: the frame is
	// encoded once and the same bytes go to every connection.
	cur := &current{}
	var first atomic.Pointer[[]byte]
	var differing atomic.Int64
	var firstMu sync.Mutex
	onFrame := func(_ int, data []byte) {
		_, id, err := frameID(data)
		if err != nil || !cur.arrive(id) {
			return
		}
		if f := first.Load(); f != nil {
			if !bytes.Equal(*f, data) {
				differing.Add(1)
			}
			return
		}
		firstMu.Lock()
		if first.Load() == nil {
			c := bytes.Clone(data)
			first.Store(&c)
		}
		firstMu.Unlock()
	}
	procs := []proc{{"dispatcher", d.pid}, {"bare-relay", bare.pid}, self()}
	pp := &popupPublisher{nc: nc}
	all := events.AllUsers

	runs, err := h.repeat(ctx, func(ctx context.Context, _ int) ([]Row, error) {
		var rows []Row
		for _, side := range []struct {
			name    string
			url     func(i int) string
			publish func(id string) error
		}{
			{"target", func(i int) string { return wsURL(d) + "?token=" + tokens[i] }, func(id string) error { return pp.publish(all, id) }},
			{"baseline", func(i int) string { return "ws://" + rig.bareWS + "/ws?user=" + userName(i) }, func(id string) error {
				return nc.Publish(rawPrefix+"."+all, frames.frame(id))
			}},
		} {
			h.logf("%s: connecting %s clients", side.name, thousands(float64(users)))
			f, _, err := dialFleet(ctx, fleetSpec{n: users, url: side.url, parallel: 64, hello: true, onFrame: onFrame})
			if err != nil {
				return nil, fmt.Errorf("%s: connect: %w", side.name, err)
			}
			h.logf("%s: %d broadcasts", side.name, rounds)
			r, err := h.broadcastRounds(ctx, cur, side.name, side.name == "baseline", procs, d.pid, users, rounds, side.publish, &first, &differing)
			f.close()
			if err != nil {
				return nil, err
			}
			rows = append(rows, r)
			if err := d.alive(); err != nil {
				return nil, err
			}
		}
		return rows, nil
	})
	if err != nil {
		return nil, err
	}
	rows := medianRows(runs)
	compare(rows, "target", "baseline")
	var bars []Bar
	if t := row(rows, "target"); t != nil {
		bars = append(bars, atMost("broadcast: all 10,000 connections have the frame within 100 ms (p99), the payload encoded once", "target", "p99 <= 100 ms",
			fmt.Sprintf("p99 %s ms over %s connections x %d broadcasts; copies differing from the first: %s", short(t.Latency.P99), thousands(float64(users)), rounds, short(t.Figures["copies_differing"])),
			t.Latency.P99, 100))
	}
	notes := []string{
		"target: one show_message published to notify.bench._all.show_message; the relay publishes its frame once on ui.bench._all and the hub hands the same bytes to every connection's queue (encoded once by construction; every copy received is compared byte for byte with the first)",
		"baseline: the same frame bytes published once to bench.raw._all; the bare relay queues them to every connection",
		"per s is frames delivered per second while a broadcast is on (from its publish to its last delivery); latency is per connection",
		"the target's and the baseline's clients connect in turn (the harness may hold 20,000 files), so each side has all its connections to itself",
	}
	if users != 10_000 {
		notes = append(notes, "the bar is defined at 10,000 connections; this run used another size")
	}
	return &Result{
		Title:  fmt.Sprintf("show_message to _all with %s connected users", thousands(float64(users))),
		Params: map[string]string{"users": fmt.Sprint(users), "broadcasts": fmt.Sprint(rounds)},
		Rows:   rows, Bars: bars, Notes: notes, Runs: runs,
	}, nil
}

// broadcastRounds publishes rounds broadcasts one after another, each once the last
// reached every connection, and measures them together.
func (h *harness) broadcastRounds(ctx context.Context, cur *current, name string, baseline bool, procs []proc, pid, users, rounds int, publish func(id string) error, first *atomic.Pointer[[]byte], differing *atomic.Int64) (Row, error) {
	all := &Recorder{}
	var delivered int64
	var busy time.Duration
	differing.Store(0)
	m, err := startMeter(procs...)
	if err != nil {
		return Row{}, err
	}
	stopProfile := func() {}
	if !baseline {
		stopProfile = h.profile(name, proc{"dispatcher", pid})
	}
	defer stopProfile()
	for range rounds {
		first.Store(nil)
		p := cur.begin(phasePrefix(name), 0)
		_, id := p.id(time.Now())
		if err := publish(id); err != nil {
			return Row{}, err
		}
		if err := p.drain(ctx, int64(users), 10*time.Second); err != nil {
			return Row{}, err
		}
		cur.end()
		if p.arrived.Load() > 0 {
			busy += p.last().Sub(p.first)
		}
		delivered += p.arrived.Load()
		all.Merge(&p.rec)
	}
	procFigures, err := m.stop(delivered)
	if err != nil {
		return Row{}, err
	}
	r := Row{Name: name, Baseline: baseline, Events: delivered, Seconds: busy.Seconds(), Latency: all.Summary(), Procs: procFigures,
		Figures: map[string]float64{"lost": float64(int64(users*rounds) - delivered), "copies_differing": float64(differing.Load())}}
	if busy > 0 {
		r.Throughput = float64(delivered) / busy.Seconds()
	}
	return r, nil
}

package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// popup: show_message to N connected websocket users (one connection each), first
// at the highest rate the system sustains, then at a fixed rate; the baseline is the
// bare relay (a NATS subscriber writing the same frame bytes to the same number of
// websocket connections), measured the same way in the same run.
//
// Defaults: 1,000 users, 5,000 events/s for 10 s (--duration), the highest rate for
// half that, with at most 2,000 events in flight (--inflight).

func runPopup(ctx context.Context, h *harness) (*Result, error) {
	users := or(h.o.Users, 1000)
	rate := or(h.o.Rate, 5000)
	fixed := or(h.o.Duration, 10*time.Second)
	maxDur := max(fixed/2, 250*time.Millisecond)
	window := or(h.o.InFlight, 2000)
	rig, err := h.startRelayRig(ctx, users)
	if err != nil {
		return nil, err
	}
	defer rig.close()
	d, bare, nc, frames, tokens := rig.d, rig.bare, rig.nc, rig.frames, rig.tokens

	cur := &current{}
	onFrame := func(_ int, data []byte) {
		if _, id, err := frameID(data); err == nil {
			cur.arrive(id)
		}
	}
	procs := []proc{{"dispatcher", d.pid}, {"bare-relay", bare.pid}, self()}
	pp := &popupPublisher{nc: nc}
	target := func(seq int64, id string) error { return pp.publish(userName(int(seq%int64(users))), id) }
	baseline := func(seq int64, id string) error {
		return nc.Publish(rawPrefix+"."+userName(int(seq%int64(users))), frames.frame(id))
	}
	maxName := func(who string) string { return who + " max rate" }
	rateName := func(who string) string { return fmt.Sprintf("%s %s/s", who, thousands(float64(rate))) }

	runs, err := h.repeat(ctx, func(ctx context.Context, _ int) ([]Row, error) {
		var rows []Row
		for _, side := range []struct {
			who     string
			url     func(i int) string
			publish func(int64, string) error
		}{
			{"target", func(i int) string { return wsURL(d) + "?token=" + tokens[i] }, target},
			{"baseline", func(i int) string { return "ws://" + rig.bareWS + "/ws?user=" + userName(i) }, baseline},
		} {
			f, _, err := dialFleet(ctx, fleetSpec{n: users, url: side.url, parallel: 32, hello: true, onFrame: onFrame})
			if err != nil {
				return nil, fmt.Errorf("%s: connect: %w", side.who, err)
			}
			isBase := side.who == "baseline"
			r1, err := h.popupPhase(ctx, cur, nc, maxName(side.who), isBase, procs, d.pid, window, func(p *phase) error {
				return p.closedLoop(ctx, maxDur, side.publish)
			})
			if err == nil {
				rows = append(rows, r1)
				var r2 Row
				r2, err = h.popupPhase(ctx, cur, nc, rateName(side.who), isBase, procs, d.pid, 0, func(p *phase) error {
					return p.paced(ctx, rate, fixed, side.publish)
				})
				rows = append(rows, r2)
			}
			f.close()
			if err != nil {
				return nil, err
			}
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
	ratio := compare(rows, maxName("target"), maxName("baseline"))
	compare(rows, rateName("target"), rateName("baseline"))
	var bars []Bar
	if t, b := row(rows, maxName("target")), row(rows, maxName("baseline")); t != nil && b != nil {
		bars = append(bars, atLeast("popup: at least 70% of the bare-subscriber baseline's throughput", t.Name, ">= 70% of baseline",
			fmt.Sprintf("%.0f%% (%s/s against %s/s, %s connections)", ratio*100, thousands(t.Throughput), thousands(b.Throughput), thousands(float64(users))),
			ratio, 0.70))
	}
	if t := row(rows, rateName("target")); t != nil {
		bars = append(bars, atMost("popup: p99 publish-to-browser latency at most 5 ms at 5,000 events/s over 1,000 connections", t.Name, "p99 <= 5 ms",
			fmt.Sprintf("p99 %s ms at %s/s over %s connections", short(t.Latency.P99), thousands(float64(rate)), thousands(float64(users))),
			t.Latency.P99, 5))
	}
	notes := []string{
		fmt.Sprintf("max rate: a closed loop with at most %s events published and not yet received, for %s; then %s events/s for %s, paced every millisecond", thousands(float64(window)), maxDur, thousands(float64(rate)), fixed),
		"target: show_message with Nats-Msg-Id published by the harness to notify.bench.<user>.show_message (round robin over the users), routed by the dispatcher (decode, validation, dedup, the relay's encoded frame on ui.bench.<user>) and written by its hub to the user's websocket; latency ends when the client has decoded the frame",
		"baseline: the same frame bytes published to bench.raw.<user> on the dispatcher's NATS server, written by the bare relay (one subscription, a bounded queue and a writer goroutine per connection, the same websocket library) to the same number of connections",
		"processes: the dispatcher includes its embedded NATS server, which carries the baseline's messages too; the harness publishes and runs every websocket client",
	}
	if users != 1000 || rate != 5000 {
		notes = append(notes, "the bars are defined at 1,000 connections and 5,000 events/s; this run used other sizes")
	}
	return &Result{
		Title:  fmt.Sprintf("show_message to %s connected websocket users", thousands(float64(users))),
		Params: map[string]string{"users": fmt.Sprint(users), "rate": fmt.Sprint(rate), "duration": fixed.String(), "max_rate_duration": maxDur.String(), "inflight": fmt.Sprint(window)},
		Rows:   rows, Bars: bars, Notes: notes, Runs: runs,
	}, nil
}

// popupPhase runs one phase (publish drives it) and measures it: the frames that
// reached the clients, their latency, and the processes' CPU and memory.
// A window above 0 makes it a closed loop with at most that many events in flight.
func (h *harness) popupPhase(ctx context.Context, cur *current, nc *nats.Conn, name string, baseline bool, procs []proc, pid, window int, publish func(p *phase) error) (Row, error) {
	h.logf("%s", name)
	p := cur.begin(phasePrefix(name), window)
	defer cur.end()
	m, err := startMeter(procs...)
	if err != nil {
		return Row{}, err
	}
	stopProfile := func() {}
	if !baseline {
		stopProfile = h.profile(name, proc{"dispatcher", pid})
	}
	err = publish(p)
	if err == nil {
		err = nc.Flush()
	}
	if err == nil {
		err = p.drain(ctx, 1, 5*time.Second)
	}
	stopProfile()
	if err != nil {
		return Row{}, fmt.Errorf("%s: %w", name, err)
	}
	r, err := p.row(name, baseline, m)
	if err != nil {
		return Row{}, err
	}
	r.Figures = map[string]float64{"lost": float64(p.published.Load() - p.arrived.Load())}
	return r, nil
}

// phasePrefix is a short prefix for a phase's event ids.
func phasePrefix(name string) string {
	var b strings.Builder
	for _, w := range strings.Fields(name) {
		b.WriteByte(w[0])
	}
	return b.String()
}

// wsURL is the daemon's websocket endpoint.
func wsURL(d *daemon) string { return "ws://" + strings.TrimPrefix(d.http, "http://") + "/ws" }

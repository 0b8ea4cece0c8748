package bench

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// overload: pop-ups at twice the sustainable rate for a minute, to 1,000 connected
// users of whom 1% never read (slow clients). It first measures the sustainable rate
// (the highest rate of the closed loop, as popup does), then publishes at twice that
// for --duration, then stops and watches the backlog drain, then sends a few probes
// at a gentle rate. PERFORMANCE.md: "Under twice the sustainable rate for 60 s:
// memory stays bounded, slow websocket clients are dropped instead of stalling
// others, and the backlog drains once the load stops."
//
// Defaults: 1,000 users (--users), 10 of them slow, 60 s (--duration), twice the
// measured sustainable rate (--rate sets the overload rate itself).

func runOverload(ctx context.Context, h *harness) (*Result, error) {
	users := or(h.o.Users, 1000)
	dur := or(h.o.Duration, 60*time.Second)
	slow := max(users/100, 1)
	if _, _, err := raiseFileLimit(0); err != nil {
		return nil, err
	}
	runs, err := h.repeat(ctx, func(ctx context.Context, _ int) ([]Row, error) {
		return h.overloadRun(ctx, users, slow, dur)
	})
	if err != nil {
		return nil, err
	}
	rows := medianRows(runs)
	var bars []Bar
	if r := row(rows, "overload"); r != nil {
		f := r.Figures
		const text = "Under twice the sustainable rate for 60 s: memory stays bounded, slow websocket clients are dropped instead of stalling others, and the backlog drains once the load stops"
		bars = append(bars,
			atMost(text, "overload", "memory bounded",
				fmt.Sprintf("dispatcher RSS grew %s MiB/min over the second half of the load (%s MiB at half time, %s MiB at the end, peak %s MiB); bar: under 5%% of the RSS per minute", short(f["rss_growth_mib_per_min"]), short(f["rss_half_mib"]), short(f["rss_end_mib"]), short(f["rss_peak_mib"])),
				f["rss_growth_mib_per_min"]/math.Max(f["rss_half_mib"], 1), 0.05),
			Bar{Text: text, Row: "overload", Short: "slow dropped, others flow",
				Measured: fmt.Sprintf("%s of %d slow clients dropped (notify_ws_dropped_total, any reason); the other clients' longest gap without a frame %s ms, %s of the seconds under load had frames for them", short(f["slow_dropped"]), slow, short(f["fast_longest_gap_ms"]), pct(f["fast_seconds_with_frames"])),
				Value:    f["slow_dropped"], Limit: float64(slow),
				Met: f["slow_dropped"] >= float64(slow) && f["fast_longest_gap_ms"] <= 1000},
			Bar{Text: text, Row: "overload", Short: "backlog drains",
				Measured: fmt.Sprintf("the last frame of the backlog arrived %s s after the load stopped; probes afterwards p99 %s ms (bar: drained within 30 s, probes p99 at most 10 ms)", short(f["drain_s"]), short(f["probe_p99_ms"])),
				Value:    f["drain_s"], Limit: 30,
				Met: f["drain_s"] <= 30 && f["probe_p99_ms"] <= 10},
		)
	}
	notes := []string{
		fmt.Sprintf("each run: a fresh dispatcher; %s users connected, %d of them slow (they read their hello, then never read again, so their sockets fill and then their queue of 256 frames); the sustainable rate is the closed loop's (at most 2,000 in flight, 5 s); then twice that rate for %s, round robin over every user, slow ones included", thousands(float64(users)), slow, dur),
		"memory: the dispatcher's VmRSS sampled every second; growth is the least-squares slope over the second half of the load",
		"lost: pop-ups published to the clients that kept reading but never delivered (the router or the hub shed them; pop-ups are ephemeral); nats_slow_consumer counts the dispatcher's NATS slow-consumer errors (its subscriptions' pending limits)",
		"drain: from the end of the load to the last frame that arrived (no frame for 3 s ends the wait); then 100 probes at 100/s",
	}
	return &Result{
		Title:  fmt.Sprintf("twice the sustainable pop-up rate for %s with %d slow clients", dur, slow),
		Params: map[string]string{"users": fmt.Sprint(users), "slow": fmt.Sprint(slow), "duration": dur.String(), "rate": fmt.Sprint(h.o.Rate)},
		Rows:   rows, Bars: bars, Notes: notes, Runs: runs,
	}, nil
}

func pct(v float64) string { return fmt.Sprintf("%.0f%%", v*100) }

func (h *harness) overloadRun(ctx context.Context, users, slow int, dur time.Duration) ([]Row, error) {
	d, err := h.startDaemon(ctx, "", nil)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	nc, err := h.connect(d.nats, "bench-publisher")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	isSlow := func(i int) bool { return i%(users/slow) == 0 && i/(users/slow) < slow }
	cur := &current{}
	var lastFast atomic.Int64 // unix nanos of the last frame a reading client decoded
	f, _, err := dialFleet(ctx, fleetSpec{
		n:        users,
		url:      func(i int) string { return wsURL(d) + "?token=" + url.QueryEscape(h.token(userName(i))) },
		parallel: 32,
		hello:    true,
		stalled:  isSlow,
		onFrame: func(_ int, data []byte) {
			if _, id, err := frameID(data); err == nil && cur.arrive(id) {
				lastFast.Store(time.Now().UnixNano())
			}
		},
	})
	if err != nil {
		return nil, err
	}
	defer f.close()
	pp := &popupPublisher{nc: nc}
	procs := []proc{{"dispatcher", d.pid}, self()}

	h.logf("sustainable rate")
	sustained, err := h.popupPhase(ctx, cur, nc, "sustainable", true, procs, d.pid, 2000, func(p *phase) error {
		return p.closedLoop(ctx, 5*time.Second, func(seq int64, id string) error {
			// Only to the reading clients: the slow ones must not fill up before the load.
			i := int(seq % int64(users))
			for isSlow(i) {
				i = (i + 1) % users
			}
			return pp.publish(userName(i), id)
		})
	})
	if err != nil {
		return nil, err
	}
	rate := h.o.Rate
	if rate == 0 {
		rate = int(2 * sustained.Throughput)
	}
	dropped0, _ := d.metric("notify_ws_dropped_total")

	h.logf("overload: %s/s for %s", thousands(float64(rate)), dur)
	p := cur.begin("ov", 0)
	m, err := startMeter(procs...)
	if err != nil {
		return nil, err
	}
	stopProfile := h.profile("overload", proc{"dispatcher", d.pid})
	type sample struct {
		at       time.Duration
		rss      float64
		arrivals int64
	}
	var samples []sample
	var sampling sync.WaitGroup
	stopSampling := make(chan struct{})
	start := time.Now()
	sampling.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			if s, err := ReadProc(d.pid); err == nil {
				samples = append(samples, sample{time.Since(start), mib(s.RSS), p.arrived.Load()})
			}
		}
	})
	var toFast atomic.Int64
	err = p.paced(ctx, rate, dur, func(seq int64, id string) error {
		i := int(seq % int64(users))
		if !isSlow(i) {
			toFast.Add(1)
		}
		return pp.publish(userName(i), id)
	})
	loadEnd := time.Now()
	close(stopSampling)
	sampling.Wait()
	if err != nil {
		stopProfile()
		return nil, err
	}
	// The backlog: wait until no frame has arrived for 3 s.
	_ = waitFor(ctx, 50*time.Millisecond, 3*time.Second, func() bool { return false }, func() int64 { return p.arrived.Load() })
	stopProfile()
	drain := max(time.Unix(0, lastFast.Load()).Sub(loadEnd), 0)
	overload, err := p.row("overload", false, m)
	if err != nil {
		return nil, err
	}
	cur.end()
	dropped1, _ := d.metric("notify_ws_dropped_total")

	h.logf("probes")
	probe := cur.begin("pr", 0)
	err = probe.paced(ctx, 100, time.Second, func(seq int64, id string) error {
		i := int(seq % int64(users))
		for isSlow(i) {
			i = (i + 1) % users
		}
		return pp.publish(userName(i), id)
	})
	if err == nil {
		err = probe.drain(ctx, 1, 3*time.Second)
	}
	cur.end()
	if err != nil {
		return nil, err
	}
	if err := d.alive(); err != nil {
		return nil, err
	}

	// Memory over the second half of the load, and the fast clients' flow per second.
	var half, end, peak float64
	var xs, ys []float64
	withFrames, seconds := 0, 0
	var longestGap time.Duration
	for i, s := range samples {
		peak = max(peak, s.rss)
		if s.at >= dur/2 && half == 0 {
			half = s.rss
		}
		if s.at >= dur/2 {
			xs, ys = append(xs, s.at.Minutes()), append(ys, s.rss)
		}
		end = s.rss
		if i > 0 && s.at <= dur {
			seconds++
			if s.arrivals > samples[i-1].arrivals {
				withFrames++
			}
		}
	}
	for i := 1; i < len(samples); i++ {
		if samples[i].at > dur {
			break
		}
		if samples[i].arrivals == samples[i-1].arrivals {
			longestGap = max(longestGap, samples[i].at-samples[i-1].at)
		}
	}
	overload.Figures = map[string]float64{
		"rate":                     float64(rate),
		"published":                float64(p.published.Load()),
		"lost":                     float64(toFast.Load() - p.arrived.Load()),
		"slow_dropped":             dropped1 - dropped0,
		"nats_slow_consumer":       float64(d.stderr.count(logSlowConsumer)),
		"rss_half_mib":             half,
		"rss_end_mib":              end,
		"rss_peak_mib":             peak,
		"rss_growth_mib_per_min":   slope(xs, ys),
		"fast_longest_gap_ms":      float64(longestGap.Milliseconds()),
		"fast_seconds_with_frames": float64(withFrames) / float64(max(seconds, 1)),
		"drain_s":                  drain.Seconds(),
		"probe_p99_ms":             probe.rec.Summary().P99,
	}
	// Seconds and per s: the load itself, not the drain.
	overload.Seconds = loadEnd.Sub(p.first).Seconds()
	overload.Throughput = float64(overload.Events) / overload.Seconds
	return []Row{sustained, overload}, nil
}

// slope is the least-squares slope of ys over xs (0 with fewer than two points).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

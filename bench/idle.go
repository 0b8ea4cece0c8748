package bench

import (
	"context"
	"fmt"
	"time"
)

// idle: N idle authenticated websocket connections (one user each) held by a fresh
// dispatcher; the baseline is the same process before the connections. The memory
// figure is the growth of the dispatcher's resident memory (VmRSS) per connection,
// after the process settled. Then, once, the largest number of connections one
// dispatcher must hold, from client processes spread over several loopback addresses.
//
// Defaults: 10,000 connections (--conns); 100,000 held (--hold, 0 skips).

// idleSettle is how long a process is left alone before its memory is read: the
// runtime's background work (GC, scavenging) after the connections have been opened.
const idleSettle = 5 * time.Second

// perClientProcess bounds the connections one client process opens: each holds one
// file per connection, and every process has the same limit.
func perClientProcess(hard uint64) int {
	return max(int(hard)-1000, 1000)
}

func runIdle(ctx context.Context, h *harness) (*Result, error) {
	conns := or(h.o.Conns, 10_000)
	hold := h.o.Hold
	soft, hard, err := raiseFileLimit(uint64(max(conns, hold) + 10_000))
	if err != nil {
		return nil, err
	}
	h.logf("open files: soft %d, hard %d", soft, hard)

	runs, err := h.repeat(ctx, func(ctx context.Context, _ int) ([]Row, error) {
		before, after, err := h.idleRun(ctx, conns, hard)
		if err != nil {
			return nil, err
		}
		return []Row{before, after}, nil
	})
	if err != nil {
		return nil, err
	}
	rows := medianRows(runs)
	connsName := fmt.Sprintf("%s connections", thousands(float64(conns)))
	var bars []Bar
	if t := row(rows, connsName); t != nil {
		kib := t.Figures["kib_per_conn"]
		bars = append(bars, atMost("idle: at most 10 KiB of dispatcher memory per idle websocket connection, measured at 10,000 connections", connsName, "<= 10 KiB/conn",
			fmt.Sprintf("%s KiB per connection (dispatcher RSS %s MiB before, %s MiB with %s connections)", short(kib), short(t.Figures["rss_before_mib"]), short(t.Figures["rss_after_mib"]), thousands(float64(conns))),
			kib, 10))
	}
	notes := []string{
		fmt.Sprintf("each run starts a fresh dispatcher, reads its memory after %s alone, opens the connections from a client process (a token per user, one connection per user, each waits for its hello), waits %s more and reads it again", idleSettle, idleSettle),
		"per s is connections opened per second; latency is a connection's dial to its hello (upgrade, token check, subscriptions, the center's state); CPU is the opening's, per million connections",
		"the dispatcher holds per connection: its conn with an empty queue (at most 256 frames wait), an expiry timer, one reader goroutine parked with a small stack (a writer goroutine only while a write would block), no buffer, and a NATS subscription for the user at both ends (the NATS server is embedded)",
	}

	if hold > 0 {
		heldRow, bar, note, err := h.idleHold(ctx, hold, hard)
		if err != nil {
			return nil, err
		}
		if heldRow != nil {
			rows = append(rows, *heldRow)
			for i := range runs {
				runs[i] = append(runs[i], *heldRow)
			}
		}
		bars = append(bars, bar)
		notes = append(notes, note)
	}
	return &Result{
		Title:  fmt.Sprintf("%s idle authenticated websocket connections", thousands(float64(conns))),
		Params: map[string]string{"conns": fmt.Sprint(conns), "hold": fmt.Sprint(hold), "nofile_hard": fmt.Sprint(hard)},
		Rows:   rows, Bars: bars, Notes: notes, Runs: runs,
	}, nil
}

// idleRun measures n connections on a fresh dispatcher: the row of the process
// before them and the row with them.
func (h *harness) idleRun(ctx context.Context, n int, hard uint64) (before, after Row, err error) {
	d, err := h.startDaemon(ctx, "", nil)
	if err != nil {
		return Row{}, Row{}, err
	}
	defer d.stop()
	if err := settle(ctx, idleSettle); err != nil {
		return Row{}, Row{}, err
	}
	s0, err := ReadProc(d.pid)
	if err != nil {
		return Row{}, Row{}, err
	}
	before = Row{Name: "before the connections", Baseline: true,
		Procs: []ProcFigure{{Name: "dispatcher", RSSMiB: mib(s0.RSS), HWMMiB: mib(s0.HWM)}}}

	m, err := startMeter(proc{"dispatcher", d.pid})
	if err != nil {
		return Row{}, Row{}, err
	}
	stopProfile := h.profile("connect", proc{"dispatcher", d.pid})
	start := time.Now()
	fleets, connect, err := h.clientFleets(ctx, d, n, hard)
	stopProfile()
	if err != nil {
		return Row{}, Row{}, err
	}
	opened := time.Since(start)
	procs, err := m.stop(int64(n))
	if err != nil {
		stopAll(fleets)
		return Row{}, Row{}, err
	}
	if err := settle(ctx, idleSettle); err != nil {
		stopAll(fleets)
		return Row{}, Row{}, err
	}
	s1, err := ReadProc(d.pid)
	if err != nil {
		stopAll(fleets)
		return Row{}, Row{}, err
	}
	if err := d.alive(); err != nil {
		stopAll(fleets)
		return Row{}, Row{}, err
	}
	held, _ := d.metric("notify_ws_connections")
	// The client processes started with the phase: all their CPU is the opening's.
	clients := ProcFigure{Name: "clients"}
	for _, c := range fleets {
		if s, err := ReadProc(c.pid); err == nil {
			clients.RSSMiB += mib(s.RSS)
			clients.CPUSeconds += s.CPU.Seconds()
		}
	}
	clients.CPUPerMillion = clients.CPUSeconds / float64(n) * 1e6
	for i := range procs {
		if procs[i].Name == "other" { // the meter counted the clients as the rest of the machine
			procs[i].CPUSeconds = max(procs[i].CPUSeconds-clients.CPUSeconds, 0)
			procs[i].CPUPerMillion = procs[i].CPUSeconds / float64(n) * 1e6
		}
	}
	stopAll(fleets)
	procs[0].RSSMiB, procs[0].HWMMiB = mib(s1.RSS), mib(s1.HWM)
	procs = append(procs[:1], append([]ProcFigure{clients}, procs[1:]...)...)
	after = Row{
		Name: fmt.Sprintf("%s connections", thousands(float64(n))), Events: int64(n), Seconds: opened.Seconds(),
		Throughput: float64(n) / opened.Seconds(), Latency: connect, Procs: procs,
		Figures: map[string]float64{
			"kib_per_conn":   float64(s1.RSS-s0.RSS) / float64(n) / 1024,
			"rss_before_mib": mib(s0.RSS),
			"rss_after_mib":  mib(s1.RSS),
			"held":           held,
		},
	}
	return before, after, nil
}

// idleHold opens hold connections to one dispatcher, or as many as the open-files
// limit lets one process hold, and reports the bar.
func (h *harness) idleHold(ctx context.Context, hold int, hard uint64) (*Row, Bar, string, error) {
	const text = "idle: 100,000 connections held by one dispatcher (clients spread over several loopback addresses, file limits raised by the harness)"
	name := fmt.Sprintf("hold %s", thousands(float64(hold)))
	limit := int(hard) - 1000 // the dispatcher's own files: listeners, NATS, JetStream
	n, why := hold, ""
	if hold > limit {
		n = limit / 1000 * 1000
		why = fmt.Sprintf("the hard limit of open files is %d per process and this harness may not raise it (setrlimit needs CAP_SYS_RESOURCE, which this machine does not grant even to root); one dispatcher process can hold at most about %s connections here, so %s were held instead", hard, thousands(float64(limit)), thousands(float64(n)))
		name = fmt.Sprintf("hold %s (of %s)", thousands(float64(n)), thousands(float64(hold)))
	}
	h.logf("holding %s connections", thousands(float64(n)))
	before, after, err := h.idleRun(ctx, n, hard)
	if err != nil {
		return nil, Bar{}, "", fmt.Errorf("hold: %w", err)
	}
	after.Name = name
	after.Figures["rss_before_mib"] = before.Procs[0].RSSMiB
	bar := Bar{Text: text, Row: name, Short: fmt.Sprintf(">= %s held", thousands(float64(hold))), Value: after.Figures["held"], Limit: float64(hold),
		Measured: fmt.Sprintf("%s connections held (%s KiB each)", thousands(after.Figures["held"]), short(after.Figures["kib_per_conn"])),
		Met:      why == "" && after.Figures["held"] >= float64(hold), Why: why}
	note := fmt.Sprintf("the hold run ran once, not %d times: %s connections from %d client processes, each from a loopback address of its own", h.o.Repeat, thousands(float64(n)), (n+perClientProcess(hard)-1)/perClientProcess(hard))
	return &after, bar, note, nil
}

// clientFleets opens n idle connections to d from client processes, each holding
// what the open-files limit allows, each over its own loopback source addresses.
func (h *harness) clientFleets(ctx context.Context, d *daemon, n int, hard uint64) ([]*child, Latency, error) {
	per := perClientProcess(hard)
	var fleets []*child
	var worst Latency
	locals := h.localList(n, hard)
	for first, k := 0, 0; first < n; first, k = first+per, k+1 {
		count := min(per, n-first)
		var ready clientsReady
		c, err := h.startChild(ctx, &ready, "clients", "--url", wsURL(d), "--first", fmt.Sprint(first), "--count", fmt.Sprint(count), "--locals", locals[k])
		if err != nil {
			stopAll(fleets)
			return nil, Latency{}, err
		}
		fleets = append(fleets, c)
		// The processes' distributions are not merged; the slowest process's is kept.
		if ready.Connect.P99 > worst.P99 {
			worst = ready.Connect
		}
	}
	return fleets, worst, nil
}

// localList is the source address of each of the client processes that open n
// connections: a loopback address of its own (127.0.0.2, 127.0.0.3, ...), whose
// ephemeral ports (about 28,000) are all its connections'. Every call takes fresh
// addresses: the connections of the last run linger in TIME_WAIT on theirs, and an
// explicit bind does not reuse those ports.
func (h *harness) localList(n int, hard uint64) []string {
	count := (n + perClientProcess(hard) - 1) / perClientProcess(hard)
	ips := loopbacks(h.loopbacks + count)[h.loopbacks:]
	h.loopbacks += count
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

func stopAll(cs []*child) {
	for _, c := range cs {
		var r clientsResult
		_ = c.stop(&r)
	}
}

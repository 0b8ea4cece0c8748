package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events"
)

// durable: add_error events to M users, published to JetStream at once, until every
// channel's consumer has finished with them:
//   - baseline: raw JetStream publish + consume + ack of the same messages, on a
//     stream configured as NOTIFY (file storage, interest retention, Msg-Id dedup)
//     with one consumer per channel as NOTIFY has, each consuming and acknowledging
//     every message, nothing else;
//   - the router with no-op channels: package dispatcher, configured as the daemon
//     configures it, in a process of its own, every channel answering at once as a
//     disabled channel does (skipped: counted, status record written, acknowledged);
//   - the daemon with the real center and the relay, email and push not configured
//     (recorded as skipped, channel_disabled);
//   - the daemon with the real center, email to an SMTP sink and push to the FCM
//     emulator (no latency), every user with an address and a device.
//
// They take turns on one NATS server, which runs in a process of its own here (the
// no-op router and the daemon cannot both consume NOTIFY), so the table shows NATS's
// CPU apart from the dispatcher's.
//
// Defaults: 10,000 events (--events) to 1,000 users (--users).

const rawDurableStream = "BENCH_RAW"

func runDurable(ctx context.Context, h *harness) (*Result, error) {
	users := or(h.o.Users, 1000)
	n := or(h.o.Events, 10_000)
	var nr struct {
		URL string `json:"url"`
	}
	natsChild, err := h.startChild(ctx, &nr, "nats", "--store", h.dir("nats"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = natsChild.stop(nil) }()
	nc, err := h.connect(nr.URL, "bench-durable")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := putProfiles(ctx, nc, users, true, true); err != nil {
		return nil, err
	}
	cur := &current{}
	raw, err := newRawDurable(ctx, nc, cur)
	if err != nil {
		return nil, err
	}
	// Arrivals at the center: its "center added" frame on the user's ui subject is
	// published once the item is stored and counted.
	sub, err := nc.Subscribe(channels.UIPrefix+"."+benchAccount+".>", func(m *nats.Msg) {
		if kind, id, err := frameID(m.Data); err == nil && kind == "center" {
			cur.arrive(id)
		}
	})
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	sink, err := startSMTPSink(nil)
	if err != nil {
		return nil, err
	}
	defer sink.close()
	fcm, err := startFCM(h.dir("fcm"), 0, nil)
	if err != nil {
		return nil, err
	}
	defer fcm.close()

	const (
		baseName   = "raw JetStream publish + consume + ack"
		noopName   = "router, no-op channels"
		centerName = "dispatcher, center (email, push off)"
		allName    = "dispatcher, center + email + push"
	)
	natsProc := proc{"nats", natsChild.pid}
	runs, err := h.repeat(ctx, func(ctx context.Context, _ int) ([]Row, error) {
		var rows []Row
		h.logf("%s", baseName)
		r, err := raw.run(ctx, baseName, n, users, []proc{natsProc, self()})
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)

		h.logf("%s", noopName)
		var ready map[string]bool
		router, err := h.startChild(ctx, &ready, "router", "--nats", nr.URL)
		if err != nil {
			return nil, err
		}
		r, err = h.durableRun(ctx, cur, nc, noopName, []proc{natsProc, {"router", router.pid}, self()}, n, users, false)
		var rr routerResult
		if stopErr := router.stop(&rr); err == nil && stopErr != nil {
			err = stopErr
		}
		if err := resetConsumers(ctx, nc); err != nil {
			return nil, err
		}
		if err != nil {
			return nil, err
		}
		r.Latency = rr.Latency
		r.Figures = map[string]float64{"deliveries": float64(rr.Deliveries), "consumer_interruptions": float64(router.stderr.count(logInterrupted))}
		rows = append(rows, r)

		for _, c := range []struct {
			name string
			env  map[string]string
		}{
			{centerName, nil},
			{allName, map[string]string{
				"SMTP_URL":             fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", sink.port()),
				"NOTIFY_MAIL_FROM":     mailFrom,
				"FCM_CREDENTIALS_FILE": fcm.credentials,
				"FCM_PROJECT_ID":       fcmProject,
				"FCM_ENDPOINT":         fcm.url,
			}},
		} {
			h.logf("%s", c.name)
			d, err := h.startDaemon(ctx, nr.URL, c.env)
			if err != nil {
				return nil, err
			}
			mails, pushes := sink.messages.Load(), fcm.emu.Stats().Accepted
			r, err := h.durableRun(ctx, cur, nc, c.name, []proc{natsProc, {"dispatcher", d.pid}, self()}, n, users, true)
			if err == nil {
				err = d.alive()
			}
			d.stop()
			if err := resetConsumers(ctx, nc); err != nil {
				return nil, err
			}
			if err != nil {
				return nil, err
			}
			r.Figures = map[string]float64{
				"emails":                 float64(sink.messages.Load() - mails),
				"pushes":                 float64(fcm.emu.Stats().Accepted - pushes),
				"consumer_interruptions": float64(d.stderr.count(logInterrupted)),
			}
			rows = append(rows, r)
		}
		return rows, nil
	})
	if err != nil {
		return nil, err
	}
	rows := medianRows(runs)
	noop := compare(rows, noopName, baseName)
	withCenter := compare(rows, centerName, baseName)
	compare(rows, allName, baseName)
	base := row(rows, baseName)
	var bars []Bar
	if r := row(rows, noopName); r != nil && base != nil {
		bars = append(bars, atLeast("durable with no-op channels: at least 50% of raw JetStream consume+ack", noopName, ">= 50% of baseline",
			fmt.Sprintf("%.0f%% (%s/s against %s/s)", noop*100, thousands(r.Throughput), thousands(base.Throughput)), noop, 0.50))
	}
	if r := row(rows, centerName); r != nil && base != nil {
		bars = append(bars, atLeast("durable with the real center store: at least 25% of raw JetStream consume+ack", centerName, ">= 25% of baseline",
			fmt.Sprintf("%.0f%% (%s/s against %s/s)", withCenter*100, thousands(r.Throughput), thousands(base.Throughput)), withCenter, 0.25))
	}
	notes := []string{
		fmt.Sprintf("every row: %s add_error events (the same %d-byte payload, each with its own Nats-Msg-Id) published at once with asynchronous JetStream publishes to %s users in turn; per s runs from the first publish until every consumer of the stream has nothing pending or unacknowledged", thousands(float64(n)), len(durableBody), thousands(float64(users))),
		"baseline: stream BENCH_RAW configured as NOTIFY, with four durable consumers configured as the router's (explicit ack, 256 unacknowledged at most, 64 messages pulled at a time); each consumes with a callback that acknowledges every message; latency ends when a consumer has a message (four per event)",
		"no-op channels: the router of package dispatcher in a process of its own, on the same NATS server, with a channel in place of relay, center, email and push that returns at once what a disabled channel returns (skipped, channel_disabled); the router treats it as a final outcome like sent: counted, its status record written to NOTIFY_STATUS, acknowledged. Latency ends when the channel's Send is called (four per event)",
		"real center: the daemon (NATS_URL to the same server) with SMTP_URL and FCM unset, so email and push are disabled and record every delivery as skipped; the relay publishes each pop-up frame to ui.bench.<user>, where nobody listens but the harness; latency ends when the center publishes the item's added frame (stored, counted)",
		"center + email + push: the same with email to the harness's SMTP sink (4 connections) and push to the FCM emulator answering at once, each user with an email address and one device",
		"processes: NATS runs in a child process of the harness for this scenario, so its CPU is shown apart",
		"consumer_interruptions counts the router's \"consumer interrupted, resuming\" warnings: a pull iterator that ended with \"nats: no heartbeat received\"; the messages it held wait for the 30 s ack wait, which shows as a p99 near 30 s and a collapsed rate in that run",
		"between rows the harness deletes NOTIFY's consumers (the stream is empty then), so each router or daemon provisions them afresh",
	}
	return &Result{
		Title:  fmt.Sprintf("add_error to %s users through the durable path", thousands(float64(users))),
		Params: map[string]string{"events": fmt.Sprint(n), "users": fmt.Sprint(users)},
		Rows:   rows, Bars: bars, Notes: notes, Runs: runs,
	}, nil
}

// resetConsumers deletes NOTIFY's consumers once a router has stopped, so the next
// one provisions them afresh. A stopped process leaves its pull requests waiting on
// the server until they expire (30 s), and the server may hand them messages that
// nobody will acknowledge before the ack wait (30 s): a row would then measure the
// previous process's leftovers (see BENCHMARKS.md). The stream holds nothing by then.
func resetConsumers(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	s, err := js.Stream(ctx, dispatcher.StreamName)
	if err != nil {
		return err
	}
	names := s.ConsumerNames(ctx)
	var all []string
	for name := range names.Name() {
		all = append(all, name)
	}
	if err := names.Err(); err != nil {
		return err
	}
	for _, name := range all {
		if err := s.DeleteConsumer(ctx, name); err != nil {
			return fmt.Errorf("delete consumer %s: %w", name, err)
		}
	}
	return nil
}

// durableRun publishes n add_error events to NOTIFY and waits until every consumer
// is done with them. With center, arrivals are the center's frames.
func (h *harness) durableRun(ctx context.Context, cur *current, nc *nats.Conn, name string, procs []proc, n, users int, center bool) (Row, error) {
	pub, err := newAsyncPublisher(nc)
	if err != nil {
		return Row{}, err
	}
	p := cur.begin(phasePrefix(name), 0)
	defer cur.end()
	m, err := startMeter(procs...)
	if err != nil {
		return Row{}, err
	}
	stopProfile := h.profile(name, procs[:len(procs)-1]...) // all but the harness
	defer stopProfile()
	if err := pub.addErrors(ctx, p, events.SubjectPrefix, 0, n, users); err != nil {
		return Row{}, err
	}
	if err := waitIdle(ctx, nc, dispatcher.StreamName); err != nil {
		return Row{}, err
	}
	done := time.Now()
	if center {
		if err := p.drain(ctx, 1, 10*time.Second); err != nil {
			return Row{}, err
		}
	}
	procFigures, err := m.stop(int64(n))
	if err != nil {
		return Row{}, err
	}
	secs := done.Sub(p.first).Seconds()
	return Row{Name: name, Events: int64(n), Seconds: secs, Throughput: float64(n) / secs, Latency: p.rec.Summary(), Procs: procFigures}, nil
}

// rawDurable is the durable baseline: a stream like NOTIFY and four consumers.
type rawDurable struct {
	js    jetstream.JetStream
	nc    *nats.Conn
	cur   *current
	conss []jetstream.Consumer
}

func newRawDurable(ctx context.Context, nc *nats.Conn, cur *current) (*rawDurable, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       rawDurableStream,
		Subjects:   []string{"benchraw.*.*." + string(events.AddError)},
		Retention:  jetstream.InterestPolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   1,
		Duplicates: 10 * time.Minute,
		MaxAge:     7 * 24 * time.Hour,
		Discard:    jetstream.DiscardOld,
	})
	if err != nil {
		return nil, err
	}
	r := &rawDurable{js: js, nc: nc, cur: cur}
	for _, name := range []string{channels.Relay, channels.Center, channels.Email, channels.Push} {
		c, err := js.CreateOrUpdateConsumer(ctx, rawDurableStream, jetstream.ConsumerConfig{
			Durable:       name,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       30 * time.Second,
			MaxDeliver:    11,
			MaxAckPending: 256,
		})
		if err != nil {
			return nil, err
		}
		r.conss = append(r.conss, c)
	}
	return r, nil
}

// run publishes n messages and waits until each consumer has acknowledged them all.
func (r *rawDurable) run(ctx context.Context, name string, n, users int, procs []proc) (Row, error) {
	p := r.cur.begin(phasePrefix(name), 0)
	defer r.cur.end()
	var ccs []jetstream.ConsumeContext
	defer func() {
		for _, cc := range ccs {
			cc.Stop()
		}
	}()
	for _, c := range r.conss {
		cc, err := c.Consume(func(m jetstream.Msg) {
			r.cur.arrive(m.Headers().Get(jetstream.MsgIDHeader))
			_ = m.Ack()
		}, jetstream.PullMaxMessages(64))
		if err != nil {
			return Row{}, err
		}
		ccs = append(ccs, cc)
	}
	pub, err := newAsyncPublisher(r.nc)
	if err != nil {
		return Row{}, err
	}
	m, err := startMeter(procs...)
	if err != nil {
		return Row{}, err
	}
	if err := pub.addErrors(ctx, p, "benchraw", 0, n, users); err != nil {
		return Row{}, err
	}
	if err := p.drain(ctx, int64(len(r.conss)), 30*time.Second); err != nil {
		return Row{}, err
	}
	if err := waitIdle(ctx, r.nc, rawDurableStream); err != nil {
		return Row{}, err
	}
	procFigures, err := m.stop(int64(n))
	if err != nil {
		return Row{}, err
	}
	// Events, not deliveries: each event is consumed and acknowledged by every consumer.
	secs := p.last().Sub(p.first).Seconds()
	return Row{Name: name, Baseline: true, Events: int64(n), Seconds: secs, Throughput: float64(n) / secs, Latency: p.rec.Summary(), Procs: procFigures,
		Figures: map[string]float64{"consumers": float64(len(r.conss)), "deliveries": float64(p.arrived.Load())}}, nil
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wneessen/go-mail"
	"golang.org/x/sync/errgroup"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/events"
)

// email: add_error events to users with an email address, through the dispatcher's
// email channel (its own consumer, templates, go-mail over a pool of SMTP
// connections) to an SMTP sink in the harness; the baseline is a raw go-mail loop
// sending messages of the same size over the same number of connections to the same
// sink. Latency ends when the sink has the whole message. The target is the channel
// at full speed, in a dispatcher that runs it alone (NOTIFY_CHANNELS=email, a
// dedicated email worker); a last row sends the same events through a dispatcher
// that runs every channel.
//
// Defaults: 5,000 events (--events) to 1,000 users (--users) over 4 connections
// (--conns, the daemon's NOTIFY_SMTP_CONNECTIONS default).

const mailFrom = "Kommo Notifications <noreply@notify.example>"

func runEmail(ctx context.Context, h *harness) (*Result, error) {
	users := or(h.o.Users, 1000)
	n := or(h.o.Events, 5000)
	conns := or(h.o.Conns, 4)
	cur := &current{}
	var lastSize atomic.Int64
	sink, err := startSMTPSink(func(id string, size int) {
		lastSize.Store(int64(size))
		cur.arrive(id)
	})
	if err != nil {
		return nil, err
	}
	defer sink.close()
	env := map[string]string{
		"SMTP_URL":                fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", sink.port()),
		"NOTIFY_MAIL_FROM":        mailFrom,
		"NOTIFY_SMTP_CONNECTIONS": strconv.Itoa(conns),
	}
	// The channel at full speed: a dispatcher that runs the email consumer only, as a
	// dedicated email worker does; the raw loop runs beside it on the same sink.
	workerEnv := maps.Clone(env)
	workerEnv["NOTIFY_CHANNELS"] = channels.Email
	var size int
	var baseMsg *mailTemplate
	runs, err := h.emailDaemon(ctx, cur, workerEnv, users, []string{channels.Email}, func(ctx context.Context, nc *nats.Conn, procs []proc, pid int) ([]Row, error) {
		if baseMsg == nil { // the first run: the warm-up has told the channel's size
			size = int(lastSize.Load())
			t, err := newMailTemplate(size)
			if err != nil {
				return nil, err
			}
			baseMsg = t
		}
		target, err := h.durablePhase(ctx, cur, nc, emailWorkerRow, false, procs, pid, n, 0, users, channels.Email)
		if err != nil {
			return nil, err
		}
		target.Figures = map[string]float64{"bytes_per_message": float64(size), "smtp_connections": float64(conns)}
		h.logf("raw go-mail loop")
		base, err := rawMailLoop(ctx, cur, sink.port(), conns, n, users, baseMsg, procs)
		if err != nil {
			return nil, err
		}
		base.Figures = map[string]float64{"bytes_per_message": float64(lastSize.Load()), "smtp_connections": float64(conns)}
		return []Row{target, base}, nil
	})
	if err != nil {
		return nil, err
	}
	// The same events through a dispatcher that runs every channel, for the record:
	// the relay, the center and push (skipped) take them on the same two cores.
	whole, err := h.emailDaemon(ctx, cur, env, users, nil, func(ctx context.Context, nc *nats.Conn, procs []proc, pid int) ([]Row, error) {
		row, err := h.durablePhase(ctx, cur, nc, emailWholeRow, false, procs, pid, n, 0, users)
		if err != nil {
			return nil, err
		}
		row.Figures = map[string]float64{"bytes_per_message": float64(lastSize.Load()), "smtp_connections": float64(conns)}
		return []Row{row}, nil
	})
	if err != nil {
		return nil, err
	}
	for i := range runs {
		runs[i] = append(runs[i], whole[i]...)
	}
	rows := medianRows(runs)
	ratio := compare(rows, emailWorkerRow, "raw go-mail loop")
	compare(rows, emailWholeRow, "raw go-mail loop")
	var bars []Bar
	if t, b := row(rows, emailWorkerRow), row(rows, "raw go-mail loop"); t != nil && b != nil {
		bars = append(bars, atLeast("email: at least 80% of the raw go-mail loop at the same number of connections", t.Name, ">= 80% of baseline",
			fmt.Sprintf("%.0f%% (%s/s against %s/s over %d connections)", ratio*100, thousands(t.Throughput), thousands(b.Throughput), conns), ratio, 0.80))
	}
	notes := []string{
		fmt.Sprintf("%s: %s add_error events published to JetStream at once (asynchronous publishes, each with its Nats-Msg-Id) to %s users whose profiles have an email address (push off), taken by a dispatcher that runs the email consumer only (NOTIFY_CHANNELS=email), which renders and sends each over its pool of %d SMTP connections; per s runs from the first publish to the sink's last message, latency from each event's publish to the sink having its message (it includes the wait in the stream: all events are published at once)", emailWorkerRow, thousands(float64(n)), thousands(float64(users)), conns),
		fmt.Sprintf("baseline: %d goroutines, each with its own go-mail client and connection, compose a message (the channel's headers, a text and an HTML part, padded to the channel's %s bytes) and send it with go-mail's Client.Send (a NOOP before each message, an RSET after it), one after another; latency from composing to the sink having it", conns, thousands(float64(size))),
		"the channel runs each message as one SMTP transaction on go-mail's smtp.Client, MAIL, RCPT and DATA pipelined (the sink advertises PIPELINING), with no NOOP or RSET around it: two round trips a message where the baseline makes six",
		fmt.Sprintf("%s: the same events through a dispatcher that runs every channel: its relay, center and push (recorded as skipped) consumers take them at the same time on the same two cores", emailWholeRow),
		"the sink (emersion/go-smtp, no TLS, no AUTH) runs in the harness process for every row",
	}
	return &Result{
		Title:  fmt.Sprintf("add_error by email over %d SMTP connections", conns),
		Params: map[string]string{"events": fmt.Sprint(n), "users": fmt.Sprint(users), "conns": fmt.Sprint(conns)},
		Rows:   rows, Bars: bars, Notes: notes, Runs: runs,
	}, nil
}

const (
	emailWorkerRow = "email worker"
	emailWholeRow  = "email, every channel"
)

// emailDaemon starts a dispatcher with env, writes the users' profiles, warms it up
// (consumers: the ones it runs, none for all), and runs each repetition in it.
func (h *harness) emailDaemon(ctx context.Context, cur *current, env map[string]string, users int, consumers []string,
	run func(ctx context.Context, nc *nats.Conn, procs []proc, pid int) ([]Row, error)) ([][]Row, error) {
	d, err := h.startDaemon(ctx, "", env)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	nc, err := h.connect(d.nats, "bench-email")
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := putProfiles(ctx, nc, users, true, false); err != nil {
		return nil, err
	}
	// The daemon's directory has every profile once an event to the last user is
	// delivered (profiles load in order), and the pool's connections are open then.
	if err := h.waitProfiles(ctx, cur, nc, users, consumers...); err != nil {
		return nil, err
	}
	procs := []proc{{"dispatcher", d.pid}, self()}
	return h.repeat(ctx, func(ctx context.Context, _ int) ([]Row, error) {
		rows, err := run(ctx, nc, procs, d.pid)
		if err != nil {
			return nil, err
		}
		return rows, d.alive()
	})
}

// mailTemplate is the baseline's message: the email channel's headers, a text and an
// HTML part, the HTML padded so that the whole message is about as large as the
// channel's.
type mailTemplate struct {
	subject, text, html string
}

func newMailTemplate(size int) (*mailTemplate, error) {
	t := &mailTemplate{
		subject: "Error",
		text:    "Error\n\nFailed to set the task! Contact not found!\n\nOpen: https://crm.example.com/contacts/list/?term=4951234567\n",
		html:    "<!doctype html><html><body><h1>Error</h1><p>Failed to set the task! Contact not found!</p><p><a href=\"https://crm.example.com/contacts/list/?term=4951234567\">Open</a></p>",
	}
	m, err := t.msg("u0", "probe-0-0")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := m.WriteTo(&b); err != nil {
		return nil, err
	}
	if pad := size - b.Len() - len("</body></html>"); pad > 0 {
		// Lines of 70 characters: quoted-printable keeps them as they are.
		line := strings.Repeat("x", 69) + "\n"
		t.html += "<!--\n" + strings.Repeat(line, pad/len(line)) + "-->"
	}
	t.html += "</body></html>"
	return t, nil
}

// msg composes one message as the email channel does.
func (t *mailTemplate) msg(user, id string) (*mail.Msg, error) {
	m := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := m.From(mailFrom); err != nil {
		return nil, err
	}
	if err := m.To("User " + user + " <" + user + "@example.com>"); err != nil {
		return nil, err
	}
	m.Subject(t.subject)
	m.SetMessageIDWithValue(id + "@notify.example")
	m.SetDate()
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetGenHeader(mail.HeaderXAutoResponseSuppress, "All")
	m.SetGenHeader("X-Notify-Event-Id", id)
	m.SetGenHeader("X-Notify-Type", string(events.AddError))
	m.SetBodyString(mail.TypeTextPlain, t.text)
	m.AddAlternativeString(mail.TypeTextHTML, t.html)
	return m, nil
}

// rawMailLoop sends n messages over conns go-mail clients, each sending one message
// after another on its own connection.
func rawMailLoop(ctx context.Context, cur *current, port, conns, n, users int, t *mailTemplate, procs []proc) (Row, error) {
	const name = "raw go-mail loop"
	clients := make([]*mail.Client, conns)
	for i := range clients {
		c, err := mail.NewClient("127.0.0.1", mail.WithPort(port), mail.WithTLSPolicy(mail.NoTLS), mail.WithHELO("bench.local"), mail.WithTimeout(30*time.Second))
		if err != nil {
			return Row{}, err
		}
		if err := c.DialWithContext(ctx); err != nil {
			return Row{}, err
		}
		defer c.Close()
		clients[i] = c
	}
	p := cur.begin(phasePrefix(name), 0)
	defer cur.end()
	m, err := startMeter(procs...)
	if err != nil {
		return Row{}, err
	}
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range clients {
		g.Go(func() error {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				_, id := p.id(time.Now())
				msg, err := t.msg(userName(int(i)%users), id)
				if err != nil {
					return err
				}
				if err := c.Send(msg); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Row{}, err
	}
	if err := p.drain(ctx, 1, 30*time.Second); err != nil {
		return Row{}, err
	}
	return p.row(name, true, m)
}

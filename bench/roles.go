package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events/token"
)

// secretEnv carries the user-token secret to the clients role (not on its command
// line, where ps shows it).
const secretEnv = "NOTIFY_BENCH_SECRET"

// runNATS is a NATS server with JetStream in a process of its own, for the durable
// scenario, whose baseline, no-op router and daemon take turns on one server.
func runNATS(ctx context.Context, fs *flag.FlagSet, args []string, out *json.Encoder) error {
	store := fs.String("store", "", "JetStream store directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv, err := dispatcher.StartEmbedded(dispatcher.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: *store})
	if err != nil {
		return err
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if err := out.Encode(map[string]string{"url": srv.ClientURL()}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// routerResult is what the router role reports when it stops.
type routerResult struct {
	Deliveries int64   `json:"deliveries"`
	Latency    Latency `json:"latency"`
}

// runRouter is the dispatcher's router (package dispatcher, configured as the daemon
// configures it) with a no-op in place of every channel: each delivery is answered
// at once as a disabled channel answers (skipped, channel_disabled), which the router
// handles as it handles a sent one (counted, its status record written, acknowledged).
// What remains is the router's own cost: consume, decode and validate, status
// records, acks.
func runRouter(ctx context.Context, fs *flag.FlagSet, args []string, out *json.Encoder) error {
	natsURL := fs.String("nats", "", "NATS URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	nc, err := nats.Connect(*natsURL, nats.Name("bench-router"), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	rec := &Recorder{}
	var n atomic.Int64
	var chans []channels.Channel
	for _, name := range []string{channels.Relay, channels.Center, channels.Email, channels.Push} {
		c := &noopChannel{name: name, rec: rec, n: &n}
		if name == channels.Relay {
			chans = append(chans, liveNoop{c})
		} else {
			chans = append(chans, c)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := dispatcher.New(nc, dispatcher.Config{Channels: chans, Logger: log})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	select {
	case <-d.Routing():
	case err := <-done:
		stop()
		return fmt.Errorf("router stopped before routing: %v", err)
	}
	if err := out.Encode(map[string]bool{"routing": true}); err != nil {
		stop()
		return err
	}
	<-ctx.Done()
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return out.Encode(routerResult{Deliveries: n.Load(), Latency: rec.Summary()})
}

// noopChannel answers every delivery at once, as channels.Disabled does, and records
// the latency from the publish time in the event id.
type noopChannel struct {
	name string
	rec  *Recorder
	n    *atomic.Int64
}

func (c *noopChannel) Name() string { return c.name }

func (c *noopChannel) Send(_ context.Context, d *channels.Delivery) error {
	if _, _, sent, err := parseEventID(d.Event.ID); err == nil {
		c.rec.Add(time.Since(sent))
	}
	c.n.Add(1)
	return channels.Skip(channels.ReasonChannelDisabled)
}

// liveNoop is the no-op relay: live and broadcasting, as the real relay is.
type liveNoop struct{ *noopChannel }

func (liveNoop) Live() bool       { return true }
func (liveNoop) Broadcasts() bool { return true }

// clientsReady is what the clients role says once its connections are open.
type clientsReady struct {
	Connected int     `json:"connected"`
	Connect   Latency `json:"connect"` // dial to hello
}

type clientsResult struct {
	ClosedByServer int64 `json:"closed_by_server"`
}

// runClients opens authenticated websocket connections for users <first>.. of an
// account and holds them, idle, until stopped: the idle scenario's browsers, in
// processes of their own so that the harness is not the one holding 100,000 sockets.
func runClients(ctx context.Context, fs *flag.FlagSet, args []string, out *json.Encoder) error {
	wsURL := fs.String("url", "", "websocket URL of the dispatcher (ws://host:port/ws)")
	account := fs.String("account", benchAccount, "account")
	first := fs.Int("first", 0, "first user number")
	count := fs.Int("count", 0, "connections")
	locals := fs.String("locals", "", "comma-separated source addresses")
	parallel := fs.Int("parallel", 64, "dials at a time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, _, err := raiseFileLimit(0); err != nil {
		return err
	}
	signer, err := token.NewSigner([]byte(os.Getenv(secretEnv)))
	if err != nil {
		return err
	}
	var ips []net.IP
	for _, s := range splitList(*locals) {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("--locals: %q is not an address", s)
		}
		ips = append(ips, ip)
	}
	tokens := make([]string, *count)
	for i := range tokens {
		if tokens[i], err = signer.Mint(*account, userName(*first+i), 24*time.Hour); err != nil {
			return err
		}
	}
	var closed atomic.Int64
	f, connect, err := dialFleet(ctx, fleetSpec{
		n:        *count,
		url:      func(i int) string { return *wsURL + "?token=" + url.QueryEscape(tokens[i]) },
		locals:   ips,
		parallel: *parallel,
		hello:    true,
		onClose:  func(int, websocket.StatusCode) { closed.Add(1) },
	})
	if err != nil {
		return err
	}
	if err := out.Encode(clientsReady{Connected: *count, Connect: connect.Summary()}); err != nil {
		f.close()
		return err
	}
	<-ctx.Done()
	f.close()
	return out.Encode(clientsResult{ClosedByServer: closed.Load()})
}

// benchAccount is the account every scenario's users belong to.
const benchAccount = "bench"

// userName is the name of user i of a scenario: u0, u1, ...
func userName(i int) string { return "u" + strconv.Itoa(i) }

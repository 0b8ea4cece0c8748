package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/errgroup"

	"github.com/kommo-notify/notify/channels"
)

// Dispatcher routes notification events from NATS to channels.
type Dispatcher struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *slog.Logger
	metrics  *Metrics
	channels map[string]channels.Channel
	// owner is the channel whose consumer speaks for the router about each durable
	// event: it counts the event as received and dead-letters it when it is invalid.
	// Every consumer validates (cheap and deterministic), but only one reports.
	owner        string
	consumed     []string // the channels whose consumers run here (Config.Consume)
	popupSubs    dropCounter
	statusWrites *statusWrites // delivery records, written without waiting
	dedup        *dedup
	decoded      *decoded      // one validation of each stored event for all channel consumers
	routing      chan struct{} // closed once pop-up subscriptions are live
	routed       sync.Once
	ready        atomic.Bool // routing and not shutting down
	filteredOnce sync.Once   // the warning about consumers with subject filters
	// statusKV is the delivery status bucket, set by the first Provision.
	statusKV atomic.Pointer[jetstream.KeyValue]
}

// New checks cfg and returns a dispatcher on nc. Nothing is provisioned or consumed
// until Run. The connection stays the caller's: drain it after Run returns.
func New(nc *nats.Conn, cfg Config) (*Dispatcher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: jetstream: %w", err)
	}
	d := &Dispatcher{
		cfg:      cfg,
		nc:       nc,
		js:       js,
		log:      cfg.Logger,
		metrics:  NewMetrics(cfg.Registerer),
		channels: make(map[string]channels.Channel, len(cfg.Channels)),
		dedup:    newDedup(cfg.DedupWindow, popupDedupCapacity),
		consumed: cfg.consumed(),
		routing:  make(chan struct{}),
		owner:    durableChannels()[0],
	}
	d.decoded = newDecoded(len(d.consumed), decodedCapacity)
	d.statusWrites = newStatusWrites(nc, StatusBucket)
	promauto.With(cfg.Registerer).NewCounterFunc(channels.NATSDroppedOpts(channels.SlowRouter), d.popupSubs.count)
	for _, ch := range cfg.Channels {
		d.channels[ch.Name()] = ch
	}
	return d, nil
}

// Metrics returns the router's metrics, shared with the HTTP API for rejections.
func (d *Dispatcher) Metrics() *Metrics { return d.metrics }

// Provision creates or updates the streams and consumers. Run calls it too; calling
// it first lets a daemon fail early on a JetStream it cannot use.
func (d *Dispatcher) Provision(ctx context.Context) error {
	return d.provision(ctx)
}

// Routing is closed once Run routes: the streams are in place and the pop-up
// subscriptions are live, so a pop-up published from then on is routed.
func (d *Dispatcher) Routing() <-chan struct{} { return d.routing }

// startedRouting marks the dispatcher ready; routePopups calls it once subscribed.
func (d *Dispatcher) startedRouting() {
	d.ready.Store(true)
	d.routed.Do(func() { close(d.routing) })
}

// Run provisions the streams, then routes until ctx ends. On the way out it stops
// taking new events, lets in-flight sends finish within ShutdownTimeout (handing the
// rest back to JetStream for redelivery), and closes the channels.
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := d.Provision(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return fmt.Errorf("dispatcher: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, ch := range d.cfg.Channels {
		if r, ok := ch.(channels.Runner); ok {
			g.Go(func() error {
				if err := r.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
					return fmt.Errorf("channel %s: %w", ch.Name(), err)
				}
				return nil
			})
		}
	}
	g.Go(func() error { return d.routePopups(gctx) })
	for _, name := range d.consumed {
		g.Go(func() error { return d.consume(gctx, d.channels[name]) })
	}
	g.Go(func() error { return d.deadLetterAdvisories(gctx) })
	g.Go(func() error { d.sample(gctx); return nil })
	d.log.Info("dispatcher routing", "channels", d.consumed, "replicas", d.cfg.Replicas,
		"dedup_window", d.cfg.DedupWindow.String())
	err := g.Wait()
	d.ready.Store(false)
	d.closeChannels()
	return err
}

// Ready reports whether the dispatcher can take events: connected to NATS, routing
// (streams in place, pop-up subscriptions live) and not shutting down.
func (d *Dispatcher) Ready() error {
	if !d.ready.Load() {
		return errors.New("not routing")
	}
	if !d.nc.IsConnected() {
		return errors.New("NATS not connected")
	}
	return nil
}

func (d *Dispatcher) closeChannels() {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	for _, ch := range d.cfg.Channels {
		if c, ok := ch.(channels.Closer); ok {
			if err := c.Close(ctx); err != nil {
				d.log.Error("close channel", "channel", ch.Name(), "error", err)
			}
		}
	}
}

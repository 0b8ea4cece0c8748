package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/channels"
)

// Recipients resolves events.AllUsers for durable types: the users of an account in
// the recipient directory.
type Recipients interface {
	Users(ctx context.Context, account string) ([]string, error)
}

// Config configures a Dispatcher. Zero fields take the documented defaults.
type Config struct {
	// Channels deliver events; every channel named in Routes must be present (wire
	// channels.Disabled for a medium that is not configured).
	Channels []channels.Channel
	// Recipients expands _all for durable types; nil means no directory, so _all
	// reaches no recipient of center, email or push.
	Recipients Recipients

	Replicas    int           // stream replicas: 1 (3 on a cluster)
	DedupWindow time.Duration // Nats-Msg-Id dedup window: 10m
	MaxAge      time.Duration // how long an undelivered durable event is kept: 7 days
	DLQMaxAge   time.Duration // how long dead letters are kept: 30 days
	AckWait     time.Duration // redelivery after a crash mid-send: 30s
	MaxAttempts int           // attempts per channel before dead-lettering: 10
	RetryBase   time.Duration // first retry delay, doubling per attempt: 1s
	RetryMax    time.Duration // longest retry delay: 5m
	Concurrency int           // sends in flight per channel, unless it says (channels.Concurrent): 64
	// PopupMaxAge: a durable event older than this when the relay gets it (after an
	// outage) no longer rings as a pop-up; it is still in the center. Default 2m.
	PopupMaxAge time.Duration
	// ShutdownTimeout bounds how long in-flight sends may run after Run's context
	// ends; what is unfinished then is handed back to JetStream. Default 10s.
	ShutdownTimeout time.Duration
	// SampleInterval is how often consumer lag and dead letters are sampled: 5s.
	SampleInterval time.Duration
	// StatusTTL is how long delivery status records are kept: 72h. A sent record is
	// also what keeps a redelivered event from being sent twice, so it must outlive
	// any redelivery (the longest retry schedule, or a crash-loop) by a margin.
	StatusTTL time.Duration
	// QueueGroup shares pop-up subjects among dispatchers: "notify-router".
	QueueGroup string
	// PopupPending is how many pop-ups each pop-up subscription may hold waiting to be
	// routed; beyond that NATS drops them (a slow consumer, counted in
	// notify_nats_dropped_total{consumer="router"}). A pop-up that waits long is
	// stale, and the bound keeps memory bounded under overload. Default 65,536: about
	// a second and a half at the most one dispatcher routes on two cores.
	PopupPending int
	// Consume names the channels whose durable consumers this dispatcher runs; empty
	// means every channel of the durable types. Every dispatcher provisions every
	// consumer, so events wait for a channel run elsewhere (a dedicated email or push
	// worker); a deployment that splits them must run each channel somewhere. The
	// relay's consumer speaks for the router: it counts durable events as received and
	// dead-letters the invalid ones.
	Consume []string

	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are kept but not exported
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	def(&c.DedupWindow, 10*time.Minute)
	def(&c.MaxAge, 7*24*time.Hour)
	def(&c.DLQMaxAge, 30*24*time.Hour)
	def(&c.AckWait, 30*time.Second)
	def(&c.RetryBase, time.Second)
	def(&c.RetryMax, 5*time.Minute)
	def(&c.PopupMaxAge, 2*time.Minute)
	def(&c.ShutdownTimeout, 10*time.Second)
	def(&c.SampleInterval, 5*time.Second)
	def(&c.StatusTTL, 72*time.Hour)
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 10
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.PopupPending == 0 {
		c.PopupPending = 1 << 16
	}
	if c.QueueGroup == "" {
		c.QueueGroup = "notify-router"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
}

// consumed lists the channels whose consumers run, in routing-table order.
func (c *Config) consumed() []string {
	if len(c.Consume) == 0 {
		return durableChannels()
	}
	return slices.DeleteFunc(durableChannels(), func(ch string) bool { return !slices.Contains(c.Consume, ch) })
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("replicas must be 1, 3 or 5, not %d", c.Replicas))
	}
	if c.DedupWindow < time.Second {
		errs = append(errs, errors.New("dedup window must be at least 1s"))
	}
	if c.DedupWindow > c.MaxAge {
		errs = append(errs, errors.New("dedup window may not be longer than the stream's max age"))
	}
	if c.StatusTTL < time.Hour {
		errs = append(errs, errors.New("status TTL must be at least 1h"))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, errors.New("max attempts must be at least 1"))
	}
	if c.RetryBase <= 0 || c.RetryMax < c.RetryBase {
		errs = append(errs, errors.New("retry delays must be positive, the longest no shorter than the first"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, errors.New("concurrency must be at least 1"))
	}
	have := map[string]bool{}
	for _, ch := range c.Channels {
		if have[ch.Name()] {
			errs = append(errs, fmt.Errorf("channel %q given twice", ch.Name()))
		}
		have[ch.Name()] = true
	}
	for _, name := range requiredChannels() {
		if !have[name] {
			errs = append(errs, fmt.Errorf("channel %q missing (wire channels.Disabled to turn it off)", name))
		}
	}
	for i, name := range c.Consume {
		switch {
		case !slices.Contains(durableChannels(), name):
			errs = append(errs, fmt.Errorf("consume: %q is not a channel of the durable types (%s)", name, strings.Join(durableChannels(), ", ")))
		case slices.Contains(c.Consume[:i], name):
			errs = append(errs, fmt.Errorf("consume: channel %q given twice", name))
		}
	}
	return errors.Join(errs...)
}

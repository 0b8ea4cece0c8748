package center

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults and bounds of Config.
const (
	DefaultMaxItems      = 1000
	DefaultMaxAge        = 90 * 24 * time.Hour
	DefaultSweepInterval = time.Minute
	DefaultTimeout       = 5 * time.Second

	// MaxMaxItems bounds MaxItems: the user's state record grows by a few bytes per
	// 64 items kept, and every write rewrites it.
	MaxMaxItems = 1_000_000
)

// Names of the center's storage: internal to the dispatcher, documented in doc.go.
const (
	StreamName    = "NOTIFY_CENTER"
	SubjectPrefix = "center"
	StateBucket   = "NOTIFY_CENTER_STATE"
	IDBucket      = "NOTIFY_CENTER_IDS"
)

// Config configures the center. Zero fields take the documented defaults.
type Config struct {
	// Conn is the dispatcher's connection; it stays the caller's. Required.
	Conn *nats.Conn
	// BaseURL is the CRM's public URL (NOTIFY_BASE_URL), against which a link that
	// is a path and an add_call element become absolute click URLs. Empty: such items
	// have an empty click.
	BaseURL string
	// MaxItems is how many items a user keeps; adding one more evicts the oldest:
	// DefaultMaxItems.
	MaxItems int
	// MaxAge is how long an item is kept: DefaultMaxAge. Run evicts older items
	// every SweepInterval.
	MaxAge time.Duration
	// SweepInterval is how often Run evicts the items past MaxAge: DefaultSweepInterval.
	SweepInterval time.Duration
	// Replicas of the stream and the buckets: 1.
	Replicas int
	// Timeout bounds each NATS request the center makes on its own (a direct get
	// without a deadline in its context): DefaultTimeout.
	Timeout time.Duration
	// Now is the clock of created_at and of age retention: time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxItems == 0 {
		c.MaxItems = DefaultMaxItems
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
}

// Validate reports every setting that cannot work. Zero fields are valid: they take
// their defaults in New.
func (c *Config) Validate() error {
	var errs []error
	if c.Conn == nil {
		errs = append(errs, errors.New("a NATS connection is required"))
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("base URL %q is not an absolute http(s) URL", c.BaseURL))
		}
	}
	if c.MaxItems < 0 || c.MaxItems > MaxMaxItems {
		errs = append(errs, fmt.Errorf("max items must be 1 to %d", MaxMaxItems))
	}
	if c.MaxAge < 0 || (c.MaxAge > 0 && c.MaxAge < time.Minute) {
		errs = append(errs, errors.New("max age must be at least 1m"))
	}
	if c.SweepInterval < 0 {
		errs = append(errs, errors.New("sweep interval may not be negative"))
	}
	if c.Replicas != 0 && c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		errs = append(errs, fmt.Errorf("replicas must be 1, 3 or 5, not %d", c.Replicas))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout may not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("center: %w", err)
	}
	return nil
}

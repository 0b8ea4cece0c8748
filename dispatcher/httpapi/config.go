package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kommo-notify/notify/dispatcher"
	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/producer"
	"github.com/kommo-notify/notify/events/token"
)

// Publisher publishes a validated event to NATS: core NATS for pop-ups, JetStream for
// durable types. *producer.Client is one.
type Publisher interface {
	PublishEvent(ctx context.Context, ev *events.Event) (producer.Result, error)
}

var _ Publisher = (*producer.Client)(nil)

// UserTokens verifies user tokens; *token.Signer is one.
type UserTokens interface {
	Verify(tok string) (token.User, error)
}

// Route mounts a handler of another component (websocket relay, center API, demo
// page) on the listener. Pattern is an http.ServeMux pattern such as "GET /ws"; it may
// not overlap the API's own patterns ambiguously. A handler for the site root should
// use "GET /{$}" so that unknown paths still get the JSON 404.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Defaults of Config.
const (
	DefaultRateLimit      = 1000
	DefaultPublishTimeout = 5 * time.Second
)

// maxRateLimit keeps the burst (twice the rate) well inside an int.
const maxRateLimit = 1e9

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	// Publisher publishes accepted events. Required.
	Publisher Publisher
	// APIKeys may publish, each for any account or for its own (see ParseKeys).
	// At least one is required.
	APIKeys Keys
	// AdminKeys are the operators' keys. They are refused (403) on producer routes:
	// an admin key is not a publishing credential.
	AdminKeys Keys
	// Users, when set, lets a browser publish with its user token (Bearer), for its
	// own account and user only: how /client.js's APP.notifications reach the API.
	Users UserTokens
	// Directory is the recipient directory behind the admin routes
	// /api/v1/accounts/{account}/users/{user}[/devices]. Nil: they answer 503.
	Directory Directory
	// Center is the notification center behind /api/v1/center, for the user of a
	// token verified by Users. Nil: those routes answer 503.
	Center Center
	// Status keeps the delivery status of durable events, behind GET
	// /api/v1/events/{id}. Nil: that route answers 503.
	Status Status
	// AllowedOrigins are the host or host:port patterns (* as a wildcard) of pages on
	// other origins that may call the API from a browser (CORS), as for the websocket.
	AllowedOrigins []string
	// RateLimit is the accepted events a second per account: DefaultRateLimit. The
	// bucket holds twice that, so a burst of 2×RateLimit passes at once.
	RateLimit float64
	// PublishTimeout bounds one publish to NATS (a JetStream PubAck for durable
	// types): DefaultPublishTimeout. Past it the request is answered 503.
	PublishTimeout time.Duration
	// Metrics counts rejected events. Nil: metrics on a private registry (kept, not exported).
	Metrics *dispatcher.Metrics
	// Ready reports whether events can be taken (NATS connected, streams in place),
	// for /readyz and before each publish. Nil: always ready.
	Ready func() error
	// MetricsHandler serves GET /metrics. Nil: /metrics is 404.
	MetricsHandler http.Handler
	// Routes are mounted after the API's own patterns.
	Routes []Route
	// Logger receives one debug record per request and warnings for failed publishes.
	Logger *slog.Logger
	// Now is the clock for event dates, acceptance times and rate limiting: time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Metrics == nil {
		c.Metrics = dispatcher.NewMetrics(prometheus.NewRegistry())
	}
	if c.Ready == nil {
		c.Ready = func() error { return nil }
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every setting that cannot work. Zero fields are valid: they take
// their defaults in New.
func (c *Config) Validate() error {
	var errs []error
	if c.Publisher == nil {
		errs = append(errs, errors.New("publisher is required"))
	}
	if c.APIKeys.Len() == 0 {
		errs = append(errs, errors.New("no API keys: every publish would be refused"))
	}
	if c.Center != nil && c.Users == nil {
		errs = append(errs, errors.New("a center needs Users to verify the tokens of its users"))
	}
	if math.IsNaN(c.RateLimit) || c.RateLimit < 0 || c.RateLimit > maxRateLimit {
		errs = append(errs, fmt.Errorf("rate limit must be above 0 and at most %g events/s", float64(maxRateLimit)))
	}
	if c.PublishTimeout < 0 {
		errs = append(errs, errors.New("publish timeout may not be negative"))
	}
	for i, r := range c.Routes {
		if r.Pattern == "" || r.Handler == nil {
			errs = append(errs, fmt.Errorf("route %d: pattern and handler are required", i+1))
		}
	}
	return errors.Join(errs...)
}

package push

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"

	"github.com/kommo-notify/notify/channels/directory"
)

// Defaults of Config.
const (
	// DefaultRatePerMinute is FCM's quota: 600,000 messages a minute per project.
	DefaultRatePerMinute = 600_000
	// DefaultTimeout bounds one send, below the router's 30-second ack wait, so
	// JetStream never redelivers an event whose send is still running.
	DefaultTimeout = 20 * time.Second
	// DefaultInFlight is how many sends the router keeps in flight: at FCM's usual
	// 50-100 ms per request, about 10,000 messages a second.
	DefaultInFlight = 1024
	// DefaultRemember is how many partly delivered sends are remembered for their
	// retry (see Config.Remember).
	DefaultRemember = 100_000
	// Android notification channels the app must create: calls ring, errors do not
	// need to.
	DefaultCallChannel  = "calls"
	DefaultErrorChannel = "errors"
	// DefaultSound is the platform's default notification sound.
	DefaultSound = "default"
	// DefaultProblemLogInterval: a configuration problem is logged once per interval.
	DefaultProblemLogInterval = time.Minute
)

// Profiles finds a recipient's push switch and devices: the directory's cache.
type Profiles interface {
	Profile(account, user string) (directory.Profile, bool)
	// Ready is closed once the profiles are loaded: before that, "no profile" means
	// "not known yet", not "no device".
	Ready() <-chan struct{}
}

// Devices drops a token FCM refused for good: the directory's store.
type Devices interface {
	RemoveDevice(ctx context.Context, account, user, token string) (removed bool, _ error)
}

var (
	_ Profiles = (*directory.Cache)(nil)
	_ Devices  = (*directory.Store)(nil)
)

// Config configures a Sender. Zero fields take the documented defaults.
type Config struct {
	// ProjectID is the Firebase project: the credentials' project_id by default.
	ProjectID string
	// Credentials is the service account that sends; access tokens are minted at its
	// token_uri, so a key file pointing at an emulator's /token works against it.
	Credentials *Credentials
	// TokenSource replaces Credentials with tokens from elsewhere (a static token for
	// an emulator). Exactly one of the two is required.
	TokenSource oauth2.TokenSource
	// Endpoint is the base URL of an FCM v1 compatible service (the emulator's); the
	// channel calls Endpoint + "/v1/projects/<id>/messages:send". Empty: FCM itself.
	Endpoint string
	// BaseURL is NOTIFY_BASE_URL, without a trailing slash: a link that is a path and
	// an add_call's element become absolute click URLs against it. Required.
	BaseURL string

	Profiles Profiles // required: the recipient directory's cache
	Devices  Devices  // required: the recipient directory's store

	// RatePerMinute caps the messages sent per minute (one per device), so a burst
	// stays under the project's quota instead of meeting QUOTA_EXCEEDED:
	// DefaultRatePerMinute. Waiting for it respects the send's context.
	RatePerMinute int
	// Timeout bounds one send: the wait for the directory's first load and for the
	// rate limiter, every device's request and go-fcm's own retries of a 503.
	// DefaultTimeout.
	Timeout time.Duration
	// InFlight is how many sends the router runs at once (see channels.Concurrent):
	// DefaultInFlight. Each is one HTTP request per device; throughput is about
	// InFlight divided by FCM's latency.
	InFlight int
	// Remember bounds the sends whose delivered devices are remembered in memory, so
	// a retry goes only to the devices that failed: DefaultRemember. Past it, the
	// oldest are forgotten and their retry reaches every device again.
	Remember int
	// CallChannel and ErrorChannel are the Android notification channel ids of
	// add_call and add_error: DefaultCallChannel and DefaultErrorChannel.
	CallChannel  string
	ErrorChannel string
	// Sound is the notification sound on Android and iOS: DefaultSound.
	Sound string
	// ProblemLogInterval: a configuration problem (refused credentials,
	// THIRD_PARTY_AUTH_ERROR) is logged at error once per interval, with how many
	// were suppressed: DefaultProblemLogInterval.
	ProblemLogInterval time.Duration
	// Transport carries the HTTP requests, under the OAuth layer. Nil: a clone of
	// http.DefaultTransport keeping up to 1,024 idle connections, so a thousand
	// concurrent requests over HTTP/1.1 reuse their connections. HTTPS endpoints
	// (FCM) negotiate HTTP/2 and multiplex on a few connections.
	Transport http.RoundTripper

	Registerer prometheus.Registerer // nil: metrics are kept but not exported
	Logger     *slog.Logger          // nil: discard
}

func (c *Config) setDefaults() {
	if c.ProjectID == "" && c.Credentials != nil {
		c.ProjectID = c.Credentials.ProjectID
	}
	c.Endpoint = strings.TrimRight(c.Endpoint, "/")
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.RatePerMinute == 0 {
		c.RatePerMinute = DefaultRatePerMinute
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Remember == 0 {
		c.Remember = DefaultRemember
	}
	if c.InFlight == 0 {
		c.InFlight = DefaultInFlight
	}
	if c.CallChannel == "" {
		c.CallChannel = DefaultCallChannel
	}
	if c.ErrorChannel == "" {
		c.ErrorChannel = DefaultErrorChannel
	}
	if c.Sound == "" {
		c.Sound = DefaultSound
	}
	if c.ProblemLogInterval == 0 {
		c.ProblemLogInterval = DefaultProblemLogInterval
	}
	if c.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 1024
		c.Transport = t
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if (c.Credentials == nil) == (c.TokenSource == nil) {
		errs = append(errs, errors.New("exactly one of credentials and a token source is required"))
	}
	if c.ProjectID == "" {
		errs = append(errs, errors.New("a project id is required (the credentials have none)"))
	}
	if c.Endpoint != "" && !isHTTPURL(c.Endpoint) {
		errs = append(errs, errors.New("the endpoint must be an absolute http(s) URL"))
	}
	if !isHTTPURL(c.BaseURL) {
		errs = append(errs, errors.New("the base URL must be an absolute http(s) URL"))
	}
	if c.Profiles == nil || c.Devices == nil {
		errs = append(errs, errors.New("the recipient directory (profiles and devices) is required"))
	}
	if c.RatePerMinute < 0 || c.Timeout < 0 || c.Remember < 0 || c.ProblemLogInterval < 0 || c.InFlight < 0 {
		errs = append(errs, errors.New("the rate, timeout, in-flight sends, remember and log interval may not be negative"))
	}
	return errors.Join(errs...)
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"firebase.google.com/go/v4/messaging"
	fcm "github.com/appleboy/go-fcm"
	"golang.org/x/oauth2"
	"golang.org/x/time/rate"
	"google.golang.org/api/option"

	"github.com/kommo-notify/notify/channels"
	"github.com/kommo-notify/notify/channels/directory"
	"github.com/kommo-notify/notify/events"
)

// fcmEndpoint is FCM's own base URL, where go-fcm sends without Config.Endpoint.
const fcmEndpoint = "https://fcm.googleapis.com"

// Sender is the mobile push channel: it sends add_error and add_call to every device
// of the recipient through FCM HTTP v1 (go-fcm), prunes the tokens FCM refuses for
// good, and retries the devices that failed for now. It is safe for concurrent use.
type Sender struct {
	cfg      Config
	client   *fcm.Client
	http     *http.Client
	tokens   oauth2.TokenSource
	limiter  *rate.Limiter
	ledger   *ledger
	metrics  *metrics
	log      *slog.Logger
	problems map[string]*throttle
}

var (
	_ channels.Channel    = (*Sender)(nil)
	_ channels.Closer     = (*Sender)(nil)
	_ channels.Concurrent = (*Sender)(nil)
)

// New returns a push channel configured by cfg. It does not reach FCM: a
// credentials problem shows at the first send, as a permanent error and an error log.
func New(ctx context.Context, cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	hc, tokens, err := authorizedClient(&cfg)
	if err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}
	opts := []fcm.Option{
		fcm.WithProjectID(cfg.ProjectID),
		// Our client rather than fcm.WithHTTPClient, which needs credentials JSON
		// (there is none with a static token) and fixes the timeout at 10 s.
		fcm.WithCustomClientOption(option.WithHTTPClient(hc)),
	}
	if cfg.Endpoint != "" {
		opts = append(opts, fcm.WithEndpoint(cfg.Endpoint+"/v1"))
	}
	client, err := fcm.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("push: FCM client: %w", err)
	}
	perSecond := float64(cfg.RatePerMinute) / 60
	return &Sender{
		cfg:     cfg,
		client:  client,
		http:    hc,
		tokens:  tokens,
		limiter: rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond))),
		ledger:  newLedger(cfg.Remember),
		metrics: newMetrics(cfg.Registerer),
		log:     cfg.Logger.With("channel", channels.Push),
		problems: map[string]*throttle{
			problemCredentials:    {every: cfg.ProblemLogInterval},
			problemThirdPartyAuth: {every: cfg.ProblemLogInterval},
		},
	}, nil
}

// Name is channels.Push.
func (*Sender) Name() string { return channels.Push }

// Concurrency is Config.InFlight: the sends the router keeps in flight.
func (s *Sender) Concurrency() int { return s.cfg.InFlight }

// Project is the Firebase project the sender sends for.
func (s *Sender) Project() string { return s.cfg.ProjectID }

// Endpoint is the base URL of the FCM service in use.
func (s *Sender) Endpoint() string {
	if s.cfg.Endpoint == "" {
		return fcmEndpoint
	}
	return s.cfg.Endpoint
}

// Send pushes d.Event to every device of d.User. No profile or no device is a skip
// (no_device), push switched off too (opted_out). Per device, FCM's answer decides:
// delivered; gone for good (UNREGISTERED, SENDER_ID_MISMATCH, an invalid token), so
// the token is removed from the directory; refused for now (QUOTA_EXCEEDED,
// UNAVAILABLE, INTERNAL, network), so Send returns a transient error carrying FCM's
// Retry-After and the retry goes only to those devices; or a configuration problem
// (refused credentials, THIRD_PARTY_AUTH_ERROR), a permanent error. It returns within
// the configured Timeout, and sooner when ctx ends.
func (s *Sender) Send(ctx context.Context, d *channels.Delivery) error {
	ev := d.Event
	if ev.Type != events.AddError && ev.Type != events.AddCall {
		return channels.Permanent(fmt.Errorf("push: %s: %s is not pushed", ev.ID, ev.Type))
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	select {
	case <-s.cfg.Profiles.Ready():
	case <-ctx.Done():
		return fmt.Errorf("push: %s: the recipient directory is still loading: %w", ev.ID, context.Cause(ctx))
	}
	p, ok := s.cfg.Profiles.Profile(ev.Account, d.User)
	switch {
	case !ok:
		return channels.Skip(channels.ReasonNoDevice)
	case !p.Channels.Push:
		return channels.Skip(channels.ReasonOptedOut)
	case len(p.Devices) == 0:
		return channels.Skip(channels.ReasonNoDevice)
	}
	key := sendKey(ev.ID, ev.Account, d.User)
	// The router sends an _all event to every user again when one of them fails,
	// so those sends are remembered even when they succeed.
	broadcast := ev.User == events.AllUsers
	tokens := tokensOf(p.Devices)
	if d.Attempt > 1 || broadcast {
		if tokens = s.ledger.pending(key, tokens); len(tokens) == 0 {
			return nil // every device had it on an earlier attempt
		}
	}
	if _, err := s.tokens.Token(); err != nil {
		return s.tokenError(ev, err)
	}
	if err := s.wait(ctx, len(tokens)); err != nil {
		return fmt.Errorf("push: %s: wait for the send rate: %w", ev.ID, err)
	}
	resp, err := s.client.SendMulticast(ctx, s.message(ev, tokens))
	if err != nil { // refused by the library before anything was sent
		return channels.Permanent(fmt.Errorf("push: %s: %w", ev.ID, err))
	}
	r := s.settle(ctx, ev, d.User, tokens, resp.Responses)
	switch {
	case r.retry != nil || broadcast:
		s.ledger.record(key, r.done)
	case d.Attempt > 1:
		s.ledger.forget(key)
	}
	return r.err(ev, len(tokens), len(p.Devices))
}

// wait takes n messages from the rate limiter, in bursts it can grant.
func (s *Sender) wait(ctx context.Context, n int) error {
	for n > 0 {
		k := min(n, s.limiter.Burst())
		if err := s.limiter.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// results is what one batch came to.
type results struct {
	done       []string // delivered or pruned: not to be sent again for this event
	delivered  int
	pruned     int
	retry      error         // the last transient failure
	retryAfter time.Duration // the longest Retry-After
	retries    int
	failure    error            // the last permanent failure
	problems   map[string]error // configuration problems met, with the last error of each
}

// settle reads the batch response device by device: it prunes dead tokens, counts
// every outcome and reports each configuration problem once for the batch.
func (s *Sender) settle(ctx context.Context, ev *events.Event, user string, tokens []string, responses []*messaging.SendResponse) results {
	r := results{problems: map[string]error{}}
	defer func() {
		for problem, err := range r.problems {
			s.problem(problem, ev, err)
		}
	}()
	for i, resp := range responses {
		token := tokens[i]
		v, after := classify(resp.Error)
		switch v {
		case sent:
			r.done = append(r.done, token)
			r.delivered++
			s.metrics.messages[outcomeSent].Inc()
		case prune:
			r.done = append(r.done, token)
			r.pruned++
			s.prune(ctx, ev, user, token, resp.Error)
		case retry:
			r.retry, r.retryAfter = resp.Error, max(r.retryAfter, after)
			r.retries++
			s.metrics.messages[outcomeRetry].Inc()
		case thirdParty:
			r.failure = fmt.Errorf("%w: %w", ErrThirdPartyAuth, resp.Error)
			r.problems[problemThirdPartyAuth] = resp.Error
			s.metrics.messages[outcomeFailed].Inc()
		case credential:
			r.failure = fmt.Errorf("%w: %w", ErrCredentials, resp.Error)
			r.problems[problemCredentials] = resp.Error
			s.metrics.messages[outcomeFailed].Inc()
		case refused:
			r.failure = resp.Error
			s.metrics.messages[outcomeFailed].Inc()
		}
	}
	return r
}

// err is the send's answer to the router. A transient failure wins over a permanent
// one, so the devices that can still get the event do; every device pruned with
// none delivered leaves the user without a device: skipped, no_device.
func (r *results) err(ev *events.Event, sending, devices int) error {
	switch {
	case r.retry != nil:
		err := fmt.Errorf("push: %s: %d of %d devices to retry: %w", ev.ID, r.retries, sending, r.retry)
		if r.retryAfter > 0 {
			return channels.RetryAfter(err, r.retryAfter)
		}
		return err
	case r.failure != nil:
		return channels.Permanent(fmt.Errorf("push: %s: %w", ev.ID, r.failure))
	case r.delivered == 0 && r.pruned == devices:
		return channels.Skip(channels.ReasonNoDevice)
	}
	return nil
}

// prune removes a token FCM refused for good. A failure to remove it is logged, not
// returned: the event is done with this device either way, and the next send prunes
// the token again.
func (s *Sender) prune(ctx context.Context, ev *events.Event, user, token string, cause error) {
	s.metrics.messages[outcomePruned].Inc()
	log := s.log.With("event_id", ev.ID, "account", ev.Account, "user", user, "token_hash", tokenHash(token))
	removed, err := s.cfg.Devices.RemoveDevice(ctx, ev.Account, user, token)
	if err != nil {
		log.Warn("could not remove a dead push token", "error", err, "cause", cause)
		return
	}
	if removed {
		s.metrics.pruned.Inc()
		log.Info("dead push token removed", "cause", cause)
	}
}

// tokenError answers a failed access-token fetch: refused credentials are a
// configuration problem (permanent, logged); an unreachable token endpoint is
// transient.
func (s *Sender) tokenError(ev *events.Event, err error) error {
	if refusedCredentials(err) {
		s.problem(problemCredentials, ev, err)
		return channels.Permanent(fmt.Errorf("push: %s: %w: %w", ev.ID, ErrCredentials, err))
	}
	return fmt.Errorf("push: %s: get an access token: %w", ev.ID, err)
}

// problem counts a send failed by a configuration problem and logs it at error,
// once per interval.
func (s *Sender) problem(problem string, ev *events.Event, err error) {
	s.metrics.problems[problem].Inc()
	if ok, suppressed := s.problems[problem].allow(time.Now()); ok {
		s.log.Error("FCM configuration problem: push fails until it is fixed",
			"problem", problem, "project", s.cfg.ProjectID, "event_id", ev.ID, "error", err, "suppressed", suppressed)
	}
}

// Close releases idle connections. Call it after the last Send.
func (s *Sender) Close(context.Context) error {
	s.http.CloseIdleConnections()
	return nil
}

func tokensOf(devices []directory.Device) []string {
	out := make([]string, len(devices))
	for i, d := range devices {
		out[i] = d.Token
	}
	return out
}

// tokenHash names a token in logs without revealing it.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

package push

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Outcomes of one message to one device, the outcome label of
// notify_push_messages_total.
const (
	outcomeSent   = "sent"   // FCM accepted it
	outcomePruned = "pruned" // the token is gone for good and was removed
	outcomeRetry  = "retry"  // refused for now: quota, unavailable, internal, network
	outcomeFailed = "failed" // refused for good: the message, or the project's configuration
)

// Configuration problems, the problem label of notify_push_config_errors_total.
const (
	problemCredentials    = "credentials"      // the token endpoint or FCM refused our credentials (401/403)
	problemThirdPartyAuth = "third_party_auth" // FCM could not authenticate to APNs or web push
)

type metrics struct {
	pruned   prometheus.Counter
	messages map[string]prometheus.Counter
	problems map[string]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		pruned: f.NewCounter(prometheus.CounterOpts{
			Name: "notify_push_tokens_pruned_total",
			Help: "Push tokens removed from the recipient directory because FCM refused them for good (UNREGISTERED, SENDER_ID_MISMATCH, an invalid token).",
		}),
		messages: map[string]prometheus.Counter{},
		problems: map[string]prometheus.Counter{},
	}
	messages := f.NewCounterVec(prometheus.CounterOpts{
		Name: "notify_push_messages_total",
		Help: "Push messages, one per device, by what FCM made of them.",
	}, []string{"outcome"})
	for _, o := range []string{outcomeSent, outcomePruned, outcomeRetry, outcomeFailed} {
		m.messages[o] = messages.WithLabelValues(o)
	}
	problems := f.NewCounterVec(prometheus.CounterOpts{
		Name: "notify_push_config_errors_total",
		Help: "Push sends refused because of the FCM project's configuration, by problem.",
	}, []string{"problem"})
	for _, p := range []string{problemCredentials, problemThirdPartyAuth} {
		m.problems[p] = problems.WithLabelValues(p)
	}
	return m
}

// ExportMetrics registers the push channel's metrics on reg, at zero, for a daemon
// whose push channel is off: dashboards and alerts on notify_push_tokens_pruned_total
// see the series either way. New registers them itself.
func ExportMetrics(reg prometheus.Registerer) { newMetrics(reg) }

// throttle lets one log line through per interval and counts the others, so a
// misconfigured project is reported without a line per notification.
type throttle struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now, and how many were held back since the last time.
func (t *throttle) allow(now time.Time) (ok bool, suppressed int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < t.every {
		t.suppressed++
		return false, 0
	}
	t.last, suppressed, t.suppressed = now, t.suppressed, 0
	return true, suppressed
}

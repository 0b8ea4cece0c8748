package dispatcher

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/kommo-notify/notify/events"
)

// Delivery outcomes, the values of the outcome label of notify_deliveries_total.
const (
	OutcomeSent    = "sent"
	OutcomeRetry   = "retry"
	OutcomeFailed  = "failed"
	OutcomeSkipped = "skipped"
	OutcomeDead    = "dead"
)

var outcomes = []string{OutcomeSent, OutcomeRetry, OutcomeFailed, OutcomeSkipped, OutcomeDead}

// TypeUnknown labels rejections of a request whose type is not one of the five.
const TypeUnknown = "unknown"

// rejectReasons are the fixed reasons of notify_events_rejected_total: the error codes
// an event can be refused with.
var rejectReasons = []string{
	events.CodeInvalidJSON, events.CodeInvalidField, events.CodeUnknownType, events.CodeTooLarge,
	events.CodeUnsupportedMediaType, events.CodeUnauthorized, events.CodeForbidden,
	events.CodeRateLimited, events.CodeUnavailable,
}

// Metrics are the router's Prometheus metrics. The zero value is not usable; call
// NewMetrics once per registry.
type Metrics struct {
	received   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	latency    *prometheus.HistogramVec
	pending    *prometheus.GaugeVec
	dlq        prometheus.Gauge

	// Children resolved once, so the hot path does no label hashing.
	receivedBy map[events.Type]prometheus.Counter
	byRoute    map[routeKey]*routeMetrics
}

type routeKey struct {
	channel string
	typ     events.Type
}

type routeMetrics struct {
	outcome  map[string]prometheus.Counter
	duration prometheus.Observer
	latency  prometheus.Observer
}

// NewMetrics registers the router's metrics on reg and exports every series whose
// labels are known in advance at zero, so dashboards and alerts see them before the
// first event.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "notify_events_received_total",
			Help: "Events that reached the router, by type.",
		}, []string{"type"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "notify_events_rejected_total",
			Help: "Events refused by the router or the HTTP API, by type and reason.",
		}, []string{"type", "reason"}),
		deliveries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "notify_deliveries_total",
			Help: "Delivery attempts by channel, type and outcome (sent, retry, failed, skipped, dead).",
		}, []string{"channel", "type", "outcome"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "notify_delivery_duration_seconds",
			Help:    "Time of one send, by channel.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"channel"}),
		latency: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "notify_event_latency_seconds",
			Help:    "Time from acceptance of an event to its delivery, by channel.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"channel"}),
		pending: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "notify_consumer_pending",
			Help: "Messages a JetStream consumer has not yet acknowledged (pending plus in flight), sampled.",
		}, []string{"consumer"}),
		dlq: f.NewGauge(prometheus.GaugeOpts{
			Name: "notify_dlq_messages",
			Help: "Messages in the dead-letter stream, sampled.",
		}),
		receivedBy: make(map[events.Type]prometheus.Counter),
		byRoute:    make(map[routeKey]*routeMetrics),
	}
	for _, t := range events.Types() {
		m.receivedBy[t] = m.received.WithLabelValues(string(t))
		for _, r := range rejectReasons {
			m.rejected.WithLabelValues(string(t), r)
		}
		for _, ch := range Routes[t] {
			rm := &routeMetrics{
				outcome:  make(map[string]prometheus.Counter, len(outcomes)),
				duration: m.duration.WithLabelValues(ch),
				latency:  m.latency.WithLabelValues(ch),
			}
			for _, o := range outcomes {
				rm.outcome[o] = m.deliveries.WithLabelValues(ch, string(t), o)
			}
			m.byRoute[routeKey{ch, t}] = rm
		}
	}
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(TypeUnknown, r)
	}
	for _, ch := range durableChannels() {
		m.pending.WithLabelValues(ch)
	}
	return m
}

// Received counts an event that reached the router.
func (m *Metrics) Received(t events.Type) { m.receivedBy[t].Inc() }

// Rejected counts a refused event. typ may be TypeUnknown; reason is an error code.
func (m *Metrics) Rejected(typ, reason string) { m.rejected.WithLabelValues(typ, reason).Inc() }

// delivered counts one delivery outcome and, for a delivery, its latency since the
// event was accepted.
func (m *Metrics) delivered(channel string, t events.Type, outcome string, accepted time.Time) {
	rm := m.byRoute[routeKey{channel, t}]
	if rm == nil { // a channel outside the routing table: resolve on the slow path
		m.deliveries.WithLabelValues(channel, string(t), outcome).Inc()
		return
	}
	rm.outcome[outcome].Inc()
	if outcome == OutcomeSent && !accepted.IsZero() {
		rm.latency.Observe(time.Since(accepted).Seconds())
	}
}

package channels

import "github.com/prometheus/client_golang/prometheus"

// The consumers of notify_nats_dropped_total: the subscriptions that may drop.
const (
	SlowRouter = "router" // the pop-up subscriptions the router routes from
	SlowHub    = "hub"    // the hub's subscriptions for the frames of its tabs
)

// NATSDroppedOpts is notify_nats_dropped_total for one consumer: the messages the
// subscriptions of this dispatcher dropped because they could not take them in time
// (a NATS slow consumer). The router and the hub each export their own series, and
// the one definition keeps them consistent.
func NATSDroppedOpts(consumer string) prometheus.CounterOpts {
	return prometheus.CounterOpts{
		Name:        "notify_nats_dropped_total",
		Help:        "Messages subscriptions of this dispatcher dropped as a NATS slow consumer: router (pop-ups to route) or hub (frames for tabs).",
		ConstLabels: prometheus.Labels{"consumer": consumer},
	}
}

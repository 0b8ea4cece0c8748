package relay

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/kommo-notify/notify/channels"
)

// Reasons a connection is dropped by the server, the reason label of
// notify_ws_dropped_total.
const (
	dropSlow         = "slow"          // its queue was full
	dropPingTimeout  = "ping_timeout"  // it stopped answering pings
	dropWriteError   = "write_error"   // a write failed or timed out
	dropTokenExpired = "token_expired" // its token expired
)

type hubMetrics struct {
	connections prometheus.Gauge
	dropped     map[string]prometheus.Counter
}

func newHubMetrics(reg prometheus.Registerer, natsDropped func() float64) *hubMetrics {
	f := promauto.With(reg)
	f.NewCounterFunc(channels.NATSDroppedOpts(channels.SlowHub), natsDropped)
	m := &hubMetrics{
		connections: f.NewGauge(prometheus.GaugeOpts{
			Name: "notify_ws_connections",
			Help: "Open websocket connections on this dispatcher.",
		}),
		dropped: map[string]prometheus.Counter{},
	}
	dropped := f.NewCounterVec(prometheus.CounterOpts{
		Name: "notify_ws_dropped_total",
		Help: "Websocket connections closed by the server, by reason.",
	}, []string{"reason"})
	for _, r := range []string{dropSlow, dropPingTimeout, dropWriteError, dropTokenExpired} {
		m.dropped[r] = dropped.WithLabelValues(r)
	}
	return m
}

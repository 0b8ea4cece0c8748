package dispatcher

import (
	"context"
	"time"
)

// sample refreshes the gauges that describe JetStream state (consumer lag, dead
// letters) every SampleInterval. It reads consumer and stream info, one request each,
// so the cost does not grow with traffic.
func (d *Dispatcher) sample(ctx context.Context) {
	t := time.NewTicker(d.cfg.SampleInterval)
	defer t.Stop()
	for {
		d.sampleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dispatcher) sampleOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.SampleInterval)
	defer cancel()
	for _, name := range durableChannels() {
		cons, err := d.js.Consumer(ctx, StreamName, name)
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		d.metrics.pending.WithLabelValues(name).Set(float64(info.NumPending + uint64(info.NumAckPending)))
	}
	if s, err := d.js.Stream(ctx, DLQStreamName); err == nil {
		if info, err := s.Info(ctx); err == nil {
			d.metrics.dlq.Set(float64(info.State.Msgs))
		}
	}
}

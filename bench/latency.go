package bench

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Recorder collects latencies from any number of goroutines.
type Recorder struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records one latency.
func (r *Recorder) Add(d time.Duration) {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
}

// Merge adds every latency of o.
func (r *Recorder) Merge(o *Recorder) {
	o.mu.Lock()
	d := slices.Clone(o.d)
	o.mu.Unlock()
	r.mu.Lock()
	r.d = append(r.d, d...)
	r.mu.Unlock()
}

// Len is the number of latencies recorded.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.d)
}

// Summary sorts what was recorded and returns its percentiles.
func (r *Recorder) Summary() Latency {
	r.mu.Lock()
	d := slices.Clone(r.d)
	r.mu.Unlock()
	return Summarize(d)
}

// Latency is the distribution of a set of latencies, in milliseconds so that the JSON
// reads as the table does. N is 0 when nothing was measured.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
}

// Summarize returns the percentiles of d; it sorts d in place.
func Summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	return Latency{
		N:    len(d),
		P50:  ms(Percentile(d, 0.50)),
		P99:  ms(Percentile(d, 0.99)),
		P999: ms(Percentile(d, 0.999)),
		Max:  ms(d[len(d)-1]),
	}
}

// Percentile is the nearest-rank percentile p (0 < p <= 1) of sorted: the smallest
// value with at least p of the values at or below it. With fewer than 1/(1-p)
// values it is the maximum, as it should be: 100 samples say nothing finer about a
// p99.9 than their worst one.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// The event ids the harness publishes carry their publish time, so whichever process
// sees the event (a websocket client, the SMTP sink, the FCM emulator, a router) can
// tell its latency without asking the publisher: <phase>-<seq>-<unix nanoseconds>.
// Event ids are printable ASCII without spaces (events.CheckID), so this one is fine
// in a Nats-Msg-Id, an X-Notify-Event-Id mail header and an FCM data value.

// eventID is the id of event seq of phase, published at t.
func eventID(phase string, seq int64, t time.Time) string {
	b := make([]byte, 0, len(phase)+40)
	b = append(b, phase...)
	b = append(b, '-')
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, t.UnixNano(), 10)
	return string(b)
}

var errNotBenchID = errors.New("not an event id of the harness")

// parseEventID splits an id made by eventID.
func parseEventID(id string) (phase string, seq int64, sent time.Time, err error) {
	last := strings.LastIndexByte(id, '-')
	if last < 0 {
		return "", 0, time.Time{}, errNotBenchID
	}
	mid := strings.LastIndexByte(id[:last], '-')
	if mid < 0 {
		return "", 0, time.Time{}, errNotBenchID
	}
	nanos, err1 := strconv.ParseInt(id[last+1:], 10, 64)
	seq, err2 := strconv.ParseInt(id[mid+1:last], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, time.Time{}, errNotBenchID
	}
	return id[:mid], seq, time.Unix(0, nanos), nil
}

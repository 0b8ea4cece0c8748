package bench

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	thousand := make([]int, 1000)
	for i := range thousand {
		thousand[i] = i + 1
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one value", ms(7), 0.999, 7 * time.Millisecond},
		{"median of four is the second (nearest rank)", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"median of five", ms(1, 2, 3, 4, 5), 0.5, 3 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p99.9 of 1..100 is the maximum", ms(hundred...), 0.999, 100 * time.Millisecond},
		{"p99.9 of 1..1000", ms(thousand...), 0.999, 999 * time.Millisecond},
		{"p100", ms(1, 2, 3), 1, 3 * time.Millisecond},
		{"tiny p is the minimum", ms(1, 2, 3), 0.0001, 1 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.sorted, c.p); got != c.want {
				t.Errorf("Percentile(%v) = %v, want %v", c.p, got, c.want)
			}
		})
	}
}

func TestRecorderSummaryFromManyGoroutines(t *testing.T) {
	var r Recorder
	values := rand.Perm(10_000)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(values); i += 8 {
				r.Add(time.Duration(values[i]+1) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	s := r.Summary()
	want := Latency{N: 10_000, P50: 5, P99: 9.9, P999: 9.99, Max: 10}
	if s != want {
		t.Errorf("summary %+v, want %+v", s, want)
	}
	var other Recorder
	other.Add(time.Hour)
	r.Merge(&other)
	if s := r.Summary(); s.N != 10_001 || s.Max != float64(time.Hour/time.Millisecond) {
		t.Errorf("after merge %+v", s)
	}
	if (&Recorder{}).Summary() != (Latency{}) {
		t.Error("an empty recorder has a summary")
	}
}

func TestEventIDRoundTrip(t *testing.T) {
	at := time.Unix(1_714_566_795, 123_456_789)
	for _, phase := range []string{"tmr1", "with-dash7", "x"} {
		id := eventID(phase, 42, at)
		gotPhase, seq, sent, err := parseEventID(id)
		if err != nil || gotPhase != phase || seq != 42 || !sent.Equal(at) {
			t.Errorf("parseEventID(%q) = %q, %d, %v, %v", id, gotPhase, seq, sent, err)
		}
	}
	for _, bad := range []string{"", "01HX6Y2Q8R0000000000000001", "a-b", "a-1-x", "a-x-1", "seed-3"} {
		if _, _, _, err := parseEventID(bad); err == nil {
			t.Errorf("parseEventID(%q) accepted", bad)
		}
	}
}

func TestCurrentCountsOnlyItsPhase(t *testing.T) {
	var cur current
	p := cur.begin("t", 2)
	_, id := p.id(time.Now())
	other := eventID("elsewhere", 1, time.Now())
	p.slots <- struct{}{}
	if cur.arrive(other) {
		t.Error("an id of another phase counted")
	}
	if !cur.arrive(id) {
		t.Error("the phase's own id did not count")
	}
	if p.arrived.Load() != 1 || len(p.slots) != 0 {
		t.Errorf("arrived %d, %d slots taken", p.arrived.Load(), len(p.slots))
	}
	cur.end()
	if cur.arrive(id) {
		t.Error("counted after the phase ended")
	}
}

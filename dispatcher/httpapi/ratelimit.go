package httpapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sweepEvery is how often, at most, idle buckets are dropped.
const sweepEvery = time.Minute

// limiter is a token bucket per account. Buckets are created on first use and dropped
// once full again: a full bucket behaves exactly like a new one, so eviction never
// grants an account more than its rate, and memory is bounded by the accounts active
// in the last sweep interval rather than by every account ever seen.
type limiter struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter
	lastSweep time.Time
}

// newLimiter returns per-account buckets refilling at perSecond tokens a second and
// holding twice that (at least one).
func newLimiter(perSecond float64) *limiter {
	return &limiter{
		limit:   rate.Limit(perSecond),
		burst:   max(1, int(math.Ceil(2*perSecond))),
		buckets: make(map[string]*rate.Limiter),
	}
}

// reserve takes one token from account's bucket at now. It returns the reservation
// (to be cancelled if the event is not accepted after all) or, when the bucket is
// empty, how long until a token is available.
func (l *limiter) reserve(account string, now time.Time) (*rate.Reservation, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.sweep(now)
	}
	b := l.buckets[account]
	if b == nil {
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[account] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return r, 0
}

// sweep drops the buckets that have refilled completely. l.mu is held.
func (l *limiter) sweep(now time.Time) {
	for account, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, account)
		}
	}
	l.lastSweep = now
}

// size is the number of buckets held.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

package dispatcher

import (
	"sync"
	"time"
)

// popupDedupCapacity bounds the pop-up dedup memory: at most this many ids are
// remembered, the oldest forgotten first, whatever the window.
const popupDedupCapacity = 100_000

// dedup remembers the pop-up ids seen inside a time window. Durable events are
// deduplicated by JetStream itself; pop-ups travel on core NATS, so a dispatcher
// deduplicates the ones it routes. Each instance keeps its own memory: a duplicate
// that the queue group hands to another instance is routed again, which for an
// ephemeral pop-up is a second toast rather than a lost or doubled record.
type dedup struct {
	mu     sync.Mutex
	window time.Duration
	seen   map[string]time.Time
	ring   []seenID // ids in arrival order, for eviction
	next   int
}

type seenID struct {
	id string
	at time.Time
}

func newDedup(window time.Duration, capacity int) *dedup {
	return &dedup{window: window, seen: make(map[string]time.Time, capacity), ring: make([]seenID, capacity)}
}

// firstSeen records id and reports whether it was not seen inside the window.
func (d *dedup) firstSeen(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if at, ok := d.seen[id]; ok && now.Sub(at) < d.window {
		return false
	}
	// Forget the oldest entry, unless its id has been seen again since.
	if old := d.ring[d.next]; old.id != "" && d.seen[old.id].Equal(old.at) {
		delete(d.seen, old.id)
	}
	d.ring[d.next] = seenID{id: id, at: now}
	d.next = (d.next + 1) % len(d.ring)
	d.seen[id] = now
	return true
}

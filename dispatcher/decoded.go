package dispatcher

import (
	"sync"
	"time"

	"github.com/kommo-notify/notify/events"
)

// decodedCapacity bounds the shared decodings: the channel consumers of one dispatcher
// are rarely more than a few pull batches apart.
const decodedCapacity = 4096

// decoded shares one validation of a stored event among the channel consumers of this
// dispatcher. They read the same messages at about the same time, and decoding
// (parsing, validating, sanitising HTML) is most of the router's own work per message:
// without it every event would be validated once per channel. An entry is dropped
// once every consumer has taken it, or when newer ones push it out; a consumer that
// misses decodes again, with the same result.
type decoded struct {
	mu      sync.Mutex
	readers int // the consumers that take each entry
	entries map[storedKey]*decodedEntry
	ring    []storedKey // insertion order, for eviction
	next    int
}

// storedKey names one stored message. The timestamp guards against a stream that was
// deleted and made again, whose sequences start over.
type storedKey struct {
	seq uint64
	at  int64
}

type decodedEntry struct {
	ev    *events.Event
	err   error
	taken int
}

func newDecoded(readers, capacity int) *decoded {
	return &decoded{readers: readers, entries: make(map[storedKey]*decodedEntry), ring: make([]storedKey, capacity)}
}

// get returns the decoding of the message at seq stored at at, running decode if no
// other consumer has yet. The event is shared: channels only read it.
func (c *decoded) get(seq uint64, at time.Time, decode func() (*events.Event, error)) (*events.Event, error) {
	key := storedKey{seq: seq, at: at.UnixNano()}
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		e.taken++
		if e.taken >= c.readers {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		return e.ev, e.err
	}
	c.mu.Unlock()

	ev, err := decode()

	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok || c.readers < 2 {
		return ev, err // decoded twice at once: the first one stays for the others
	}
	if old := c.ring[c.next]; old != (storedKey{}) {
		delete(c.entries, old)
	}
	c.ring[c.next] = key
	c.next = (c.next + 1) % len(c.ring)
	c.entries[key] = &decodedEntry{ev: ev, err: err, taken: 1}
	return ev, err
}

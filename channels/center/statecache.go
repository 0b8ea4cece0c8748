package center

import "sync"

// Bounds of the states a Store remembers: users, and bytes of encoded records (a
// user with 100,000 items has a record of about 6 KB).
const (
	stateCacheSize  = 4096
	stateCacheBytes = 4 << 20
)

// stateCache remembers, per user, the state record this Store last wrote (or read
// for an add) and its revision, so that the next write of the same user starts from
// it instead of a KV get, and an add knows the user's last folded seq to publish
// against (see Store.add). It is only a guess: every write is a compare-and-set on
// the revision, and an add's publish is checked by the stream, so a stale entry
// (another dispatcher, the HTTP API of another process) costs a failed write and a
// fresh read, never a wrong state. Reads for the API never use it.
type stateCache struct {
	mu      sync.Mutex
	entries map[user]cachedState
	bytes   int
}

type cachedState struct {
	value []byte // the encoded record, never modified
	rev   uint64
	last  uint64 // the record's last, read once
}

// get returns a private copy of the user's remembered state, if any.
func (c *stateCache) get(u user) (*state, uint64, bool) {
	c.mu.Lock()
	e, ok := c.entries[u]
	c.mu.Unlock()
	if !ok {
		return nil, 0, false
	}
	st := &state{}
	if st.UnmarshalBinary(e.value) != nil {
		c.forget(u)
		return nil, 0, false
	}
	return st, e.rev, true
}

// last returns the last seq of the user's remembered state, if any.
func (c *stateCache) last(u user) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[u]
	return e.last, ok
}

// put remembers value at rev; an older revision never replaces a newer one, and a
// malformed value is not remembered.
func (c *stateCache) put(u user, value []byte, rev uint64) {
	last, ok := lastOf(value)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[user]cachedState)
	}
	old, ok := c.entries[u]
	if ok && old.rev > rev {
		return
	}
	c.bytes += len(value) - len(old.value)
	c.entries[u] = cachedState{value: value, rev: rev, last: last}
	for k, e := range c.entries { // any others: a map's order is random enough
		if len(c.entries) <= stateCacheSize && c.bytes <= stateCacheBytes {
			break
		}
		if k != u {
			c.bytes -= len(e.value)
			delete(c.entries, k)
		}
	}
}

func (c *stateCache) forget(u user) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[u]; ok {
		c.bytes -= len(e.value)
		delete(c.entries, u)
	}
}

package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotReady is returned by Cache.Users before the initial load: an empty answer
// then would send an _all event to nobody, where a retry a moment later reaches everyone.
var ErrNotReady = errors.New("directory: the recipient directory is still loading")

// How long Run waits before watching again after a failure, doubling up to the most.
const (
	rewatchMin = 100 * time.Millisecond
	rewatchMax = 5 * time.Second
)

var (
	errReconnected = errors.New("NATS reconnected")
	errWatchClosed = errors.New("watcher closed")
)

// Cache is an in-memory copy of the whole directory, kept current by a watcher on the
// bucket, so routing an event costs no NATS round trip: a change made through any
// Store, in any process, is seen here after the watcher's delivery latency
// (milliseconds on a healthy connection). It is safe for concurrent use; Run feeds
// it, and until the initial load is done Ready is open and lookups find nothing.
//
// Memory: every profile is held, about 300 bytes each plus about 240 per device (see
// the package doc).
type Cache struct {
	store *Store
	log   *slog.Logger
	ready chan struct{}
	once  sync.Once

	mu       sync.RWMutex
	accounts index
}

// index is the directory by account, then user.
type index map[string]*accountUsers

type accountUsers struct {
	profiles map[string]Profile
	sorted   []string // the users of profiles, sorted: Users answers without sorting
}

// NewCache returns a cache of store's bucket; it loads once Run is started. A nil
// logger discards.
func NewCache(store *Store, logger *slog.Logger) *Cache {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{store: store, log: logger, ready: make(chan struct{}), accounts: index{}}
}

// Ready is closed once the initial load is done.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// WaitReady waits for the initial load, or for ctx to end.
func (c *Cache) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("directory: wait for the initial load: %w", ctx.Err())
	}
}

// Profile returns the cached profile of account/user. It is the caller's copy.
func (c *Cache) Profile(account, user string) (Profile, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a := c.accounts[account]
	if a == nil {
		return Profile{}, false
	}
	p, ok := a.profiles[user]
	if !ok {
		return Profile{}, false
	}
	return p.clone(), true
}

// Users lists the users of account that have a profile, sorted. It satisfies
// dispatcher.Recipients, which expands _all for durable types. Before the initial load
// it returns ErrNotReady, so the router retries the event instead of reaching nobody.
func (c *Cache) Users(_ context.Context, account string) ([]string, error) {
	select {
	case <-c.ready:
	default:
		return nil, ErrNotReady
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if a := c.accounts[account]; a != nil {
		return slices.Clone(a.sorted), nil
	}
	return []string{}, nil
}

// Len is the number of cached profiles.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, a := range c.accounts {
		n += len(a.profiles)
	}
	return n
}

// Run keeps the cache current until ctx ends, then returns nil. It watches the
// bucket again when the watcher ends and after every NATS reconnect, reloading all
// profiles: after an outage or a server restart, that is the one way to be sure of
// every change made meanwhile, deletions included. Meanwhile the last good copy keeps
// serving. It returns an error only when the NATS connection is closed for good.
func (c *Cache) Run(ctx context.Context) error {
	nc := c.store.js.Conn()
	reconnected := nc.StatusChanged(nats.CONNECTED)
	defer nc.RemoveStatusListener(reconnected)
	delay := rewatchMin
	for {
		loaded, err := c.watch(ctx, reconnected)
		if ctx.Err() != nil {
			return nil
		}
		if nc.IsClosed() {
			return errors.New("directory: the NATS connection is closed")
		}
		if loaded {
			delay = rewatchMin
		}
		if errors.Is(err, errReconnected) {
			c.log.Info("recipient directory: reloading after a NATS reconnect", "bucket", c.store.Bucket())
			continue
		}
		c.log.Warn("recipient directory: watch ended, watching again", "bucket", c.store.Bucket(), "error", err, "retry_in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(2*delay, rewatchMax)
	}
}

// watch loads every profile into a fresh index, swaps it in when the watcher marks the
// end of the initial values, then applies each change as it comes. loaded says the
// swap happened.
func (c *Cache) watch(ctx context.Context, reconnected <-chan nats.Status) (loaded bool, _ error) {
	// A reconnect that happened before this watch starts is covered by it.
	for len(reconnected) > 0 {
		<-reconnected
	}
	w, err := c.store.kv.WatchAll(ctx)
	if err != nil {
		return false, fmt.Errorf("watch bucket %s: %w", c.store.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	start := time.Now()
	fresh := index{}
	for {
		select {
		case <-ctx.Done():
			return loaded, nil
		case <-reconnected:
			return loaded, errReconnected
		case e, ok := <-w.Updates():
			switch {
			case !ok:
				return loaded, errWatchClosed
			case e == nil: // the initial values are done
				fresh.finish()
				c.mu.Lock()
				c.accounts, fresh = fresh, nil
				c.mu.Unlock()
				loaded = true
				c.once.Do(func() { close(c.ready) })
				c.log.Info("recipient directory loaded", "bucket", c.store.Bucket(), "profiles", c.Len(), "duration", time.Since(start))
			case loaded:
				c.mu.Lock()
				c.apply(c.accounts, e, false)
				c.mu.Unlock()
			default:
				c.apply(fresh, e, true)
			}
		}
	}
}

// apply records one watched entry in idx: a put sets the profile, a delete or purge
// removes it. A value that does not decode is logged and treated as absent. While
// loading, only the profiles are recorded; finish sorts the users once at the end.
func (c *Cache) apply(idx index, e jetstream.KeyValueEntry, loading bool) {
	account, user, ok := strings.Cut(e.Key(), ".")
	if !ok {
		return
	}
	var p Profile
	var err error
	if e.Operation() == jetstream.KeyValuePut {
		if p, err = decodeStored(e.Value()); err != nil {
			c.log.Warn("recipient directory: skipping a profile", "account", account, "user", user, "revision", e.Revision(), "error", err)
		}
	}
	switch put := e.Operation() == jetstream.KeyValuePut && err == nil; {
	case loading && put:
		idx.account(account).profiles[user] = p
	case loading:
		if a := idx[account]; a != nil {
			delete(a.profiles, user)
		}
	case put:
		idx.set(account, user, p)
	default:
		idx.remove(account, user)
	}
}

func (idx index) account(account string) *accountUsers {
	a := idx[account]
	if a == nil {
		a = &accountUsers{profiles: make(map[string]Profile)}
		idx[account] = a
	}
	return a
}

// finish lists the users of a loaded index in order.
func (idx index) finish() {
	for name, a := range idx {
		if len(a.profiles) == 0 {
			delete(idx, name)
			continue
		}
		a.sorted = slices.Sorted(maps.Keys(a.profiles))
	}
}

// set records a change, keeping the users sorted.
func (idx index) set(account, user string, p Profile) {
	a := idx.account(account)
	if _, ok := a.profiles[user]; !ok {
		i, _ := slices.BinarySearch(a.sorted, user)
		a.sorted = slices.Insert(a.sorted, i, user)
	}
	a.profiles[user] = p
}

func (idx index) remove(account, user string) {
	a := idx[account]
	if a == nil {
		return
	}
	if _, ok := a.profiles[user]; !ok {
		return
	}
	delete(a.profiles, user)
	if i, found := slices.BinarySearch(a.sorted, user); found {
		a.sorted = slices.Delete(a.sorted, i, i+1)
	}
	if len(a.profiles) == 0 {
		delete(idx, account)
	}
}

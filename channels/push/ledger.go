package push

import (
	"hash/maphash"
	"slices"
	"sync"
)

// ledger remembers, per send (an event to one user), the devices that already have
// the event, so a retry goes only to the others. It holds at most size sends; the
// oldest is forgotten first, and its retry then reaches every device again. Tokens
// are kept as 64-bit hashes: about 100 bytes a send plus 8 a device.
type ledger struct {
	seed maphash.Seed

	mu    sync.Mutex
	sends map[string]*entry
	order []string // a ring of the keys by first record, for eviction
	next  int
}

type entry struct {
	devices map[uint64]struct{}
	slot    int // its place in order
}

func newLedger(size int) *ledger {
	return &ledger{seed: maphash.MakeSeed(), sends: make(map[string]*entry), order: make([]string, size)}
}

// sendKey names one send: the event, its account and the user. The parts cannot
// contain a NUL.
func sendKey(eventID, account, user string) string {
	return eventID + "\x00" + account + "\x00" + user
}

// pending returns the tokens of key that have not had the event yet.
func (l *ledger) pending(key string, tokens []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sends[key]
	if s == nil {
		return tokens
	}
	return slices.DeleteFunc(slices.Clone(tokens), func(t string) bool {
		_, done := s.devices[maphash.String(l.seed, t)]
		return done
	})
}

// record notes that tokens of key are done with: delivered, or dropped for good.
func (l *ledger) record(key string, tokens []string) {
	if len(tokens) == 0 || len(l.order) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sends[key]
	if s == nil {
		if old, ok := l.sends[l.order[l.next]]; ok && old.slot == l.next {
			delete(l.sends, l.order[l.next])
		}
		s = &entry{devices: make(map[uint64]struct{}, len(tokens)), slot: l.next}
		l.sends[key] = s
		l.order[l.next] = key
		l.next = (l.next + 1) % len(l.order)
	}
	for _, t := range tokens {
		s.devices[maphash.String(l.seed, t)] = struct{}{}
	}
}

// forget drops key: its send is complete.
func (l *ledger) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.sends, key)
}

// len is the number of sends remembered.
func (l *ledger) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sends)
}

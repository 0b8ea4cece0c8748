package center

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sweep evicts every item older than MaxAge. The stream holds every user's items in
// the order they came, so the expired ones are its oldest messages: the sweep reads
// from the head until the first item that is young enough, and trims the users it
// met there, each with the same counted eviction as an add. Its cost follows the
// expired items, not the users or the items kept; with nothing to evict it is one
// small read. Dispatchers may sweep at the same time: each eviction is a
// compare-and-set on the user's state.
func (s *Store) Sweep(ctx context.Context) error {
	cutoff := s.cfg.Now().Add(-s.cfg.MaxAge).Unix()
	var errs []error
	for from, n := uint64(1), 16; ; n = min(2*n, foldBatch) {
		msgs, more, err := s.getBatch(ctx, SubjectPrefix+".*.*", from, n)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("center: sweep: %w", err))...)
		}
		var users []user
		seen := map[string]bool{}
		young := false
		for _, m := range msgs {
			if m.meta().CreatedAt >= cutoff {
				young = true
				break
			}
			from = m.seq + 1
			if seen[m.subject] {
				continue
			}
			seen[m.subject] = true
			if u, ok := userOf(m.subject); ok {
				users = append(users, u)
			}
		}
		for _, u := range users {
			// One user's trouble does not keep the others' items past their age.
			if err := s.expire(ctx, u); err != nil {
				errs = append(errs, fmt.Errorf("center: sweep %s: %w", u.stateKey(), err))
			}
		}
		if young || !more || len(msgs) == 0 || ctx.Err() != nil {
			return errors.Join(errs...)
		}
	}
}

// expire evicts the user's items past MaxAge (and beyond MaxItems), write by write.
func (s *Store) expire(ctx context.Context, u user) error {
	for {
		var evicted []storedMsg
		st, err := s.update(ctx, u, func(ctx context.Context, st *state) (bool, error) {
			pending := len(st.deleting) > 0
			if err := s.finishDeletes(ctx, st); err != nil {
				return false, err
			}
			var err error
			evicted, err = s.trim(ctx, u, st)
			return pending || len(evicted) > 0, err
		})
		if err != nil {
			return err
		}
		s.announce(ctx, u, st, nil, evicted)
		if len(evicted) < maxEvictions {
			return nil
		}
	}
}

// userOf parses center.<account>.<user>.
func userOf(subject string) (user, bool) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	if !ok {
		return user{}, false
	}
	account, name, ok := strings.Cut(rest, ".")
	if !ok {
		return user{}, false
	}
	u, err := newUser(account, name)
	return u, err == nil
}

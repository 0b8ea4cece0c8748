package center

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// MarkRead marks the user's items with these ids read and returns the unread count.
// Ids that name no item of the user (another user's, deleted, never stored) are
// ignored. The user's tabs get a read frame listing the ids that changed.
func (s *Store) MarkRead(ctx context.Context, account, name string, ids []string) (unread int64, err error) {
	u, err := newUser(account, name)
	if err != nil {
		return 0, err
	}
	refs, err := s.lookup(ctx, u, ids)
	if err != nil {
		return 0, err
	}
	var changed []string
	st, err := s.update(ctx, u, func(_ context.Context, st *state) (bool, error) {
		changed = changed[:0]
		for _, r := range refs {
			if st.markRead(r.seq) {
				changed = append(changed, r.id)
			}
		}
		return len(changed) > 0, nil
	})
	if err != nil {
		return 0, fmt.Errorf("center: mark read: %w", err)
	}
	if len(changed) > 0 {
		s.publishJSON(u, readFrame{Kind: "center", Op: OpRead, IDs: changed, Unread: st.unread})
	}
	return st.unread, nil
}

// MarkAllRead marks every item of the user read and returns the unread count (0).
// When any was unread, the tabs get a read frame with all set and no ids.
func (s *Store) MarkAllRead(ctx context.Context, account, name string) (unread int64, err error) {
	u, err := newUser(account, name)
	if err != nil {
		return 0, err
	}
	changed := false
	st, err := s.update(ctx, u, func(_ context.Context, st *state) (bool, error) {
		changed = st.markAllRead()
		return changed, nil
	})
	if err != nil {
		return 0, fmt.Errorf("center: mark all read: %w", err)
	}
	if changed {
		s.publishJSON(u, readFrame{Kind: "center", Op: OpRead, IDs: []string{}, All: true, Unread: st.unread})
	}
	return st.unread, nil
}

// Delete removes the user's item with this id and reports whether there was one.
// The tabs get a deleted frame.
func (s *Store) Delete(ctx context.Context, account, name, id string) (bool, error) {
	u, err := newUser(account, name)
	if err != nil {
		return false, err
	}
	refs, err := s.lookup(ctx, u, []string{id})
	if err != nil || len(refs) == 0 {
		return false, err
	}
	seq := refs[0].seq
	found := false
	st, err := s.update(ctx, u, func(ctx context.Context, st *state) (bool, error) {
		found = false
		if seq > st.last || st.isDeleting(seq) {
			return false, nil
		}
		// Whether the item is still there only the stream knows: a read item and a
		// gone one look alike in the state. Read after the state, so a deletion that
		// raced this one made the write below fail and this check run again; read
		// from the leader, which has every deletion a written state counts.
		m, err := s.leaderMsg(ctx, seq)
		if err != nil {
			return false, fmt.Errorf("read item: %w", err)
		}
		if m == nil || m.subject != u.subject() || m.meta().ID != id {
			return false, nil
		}
		st.remove(seq)
		found = true
		return true, nil
	})
	if err != nil {
		return false, fmt.Errorf("center: delete: %w", err)
	}
	if !found {
		return false, nil
	}
	s.removed(ctx, u, []uint64{seq})
	s.publishJSON(u, deletedFrame{Kind: "center", Op: OpDeleted, IDs: []string{id}, Unread: st.unread})
	return true, nil
}

// ref is an item of the user found by its event id.
type ref struct {
	seq uint64
	id  string
}

// lookup finds the user's items with these ids in the id bucket, in seq order; ids
// without an item are left out.
func (s *Store) lookup(ctx context.Context, u user, ids []string) ([]ref, error) {
	var (
		mu   sync.Mutex
		refs []ref
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelRequests)
	for _, id := range ids {
		g.Go(func() error {
			e, err := s.ids.Get(gctx, u.idKey(id))
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read id: %w", err)
			}
			seq, err := parseSeq(e.Value())
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			refs = append(refs, ref{seq: seq, id: id})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("center: %w", err)
	}
	slices.SortFunc(refs, func(a, b ref) int { return cmp.Compare(a.seq, b.seq) })
	return slices.CompactFunc(refs, func(a, b ref) bool { return a.seq == b.seq }), nil
}

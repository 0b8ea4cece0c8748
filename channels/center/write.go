package center

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

const (
	// foldBatch bounds the items one write folds in.
	foldBatch = 256
	// maxEvictions bounds the items one write evicts; the next write goes on.
	maxEvictions = 1024
	// parallelRequests bounds the NATS requests one operation has in flight.
	parallelRequests = 16
)

// load reads the user's state and its revision; a user without one has an empty
// state at revision 0.
func (s *Store) load(ctx context.Context, u user) (*state, uint64, error) {
	value, rev, err := s.loadRecord(ctx, u)
	if err != nil {
		return nil, 0, err
	}
	st := &state{}
	if err := st.UnmarshalBinary(value); err != nil {
		return nil, 0, fmt.Errorf("state of %s: %w", u.stateKey(), err)
	}
	return st, rev, nil
}

// loadRecord reads the user's encoded state and its revision; a user without one
// has the empty state's record at revision 0.
func (s *Store) loadRecord(ctx context.Context, u user) ([]byte, uint64, error) {
	e, err := s.states.Get(ctx, u.stateKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		value, err := (&state{}).MarshalBinary()
		return value, 0, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read state: %w", err)
	}
	return e.Value(), e.Revision(), nil
}

// knownLast is the last seq of the user's state as this Store knows it: the state
// it remembers, or else the state read now and remembered, so that the write that
// follows starts from it without a second read.
func (s *Store) knownLast(ctx context.Context, u user) (uint64, error) {
	if last, ok := s.recent.last(u); ok {
		return last, nil
	}
	value, rev, err := s.loadRecord(ctx, u)
	if err != nil {
		return 0, err
	}
	last, ok := lastOf(value)
	if !ok {
		return 0, fmt.Errorf("state of %s: %w", u.stateKey(), errBadState)
	}
	s.recent.put(u, value, rev)
	return last, nil
}

// update applies fn to the user's state and writes the result back with a
// compare-and-set on the revision it read; when another writer got there first it
// starts again from a fresh read. fn reports whether it changed anything; it may run
// several times, so it must reset whatever it collects.
//
// The first try starts from the state this Store last wrote (or read for an add)
// for the user, if it remembers one (see stateCache), which saves a read per write
// in the common case of one dispatcher writing a user's center. A stale one fails
// the compare-and-set; an answer of "nothing to change" from it is checked again on
// a fresh read.
func (s *Store) update(ctx context.Context, u user, fn func(ctx context.Context, st *state) (bool, error)) (*state, error) {
	for fresh := false; ; {
		var st *state
		var rev uint64
		cached := false
		if !fresh {
			st, rev, cached = s.recent.get(u)
		}
		if !cached {
			var err error
			if st, rev, err = s.load(ctx, u); err != nil {
				return nil, err
			}
		}
		changed, err := fn(ctx, st)
		if err != nil {
			if cached {
				s.recent.forget(u)
			}
			return st, err
		}
		if !changed {
			if cached {
				fresh = true
				continue
			}
			return st, nil
		}
		st.normalize()
		value, err := st.MarshalBinary()
		if err != nil {
			return nil, err
		}
		var next uint64
		if rev == 0 {
			// The bucket's create: it also takes the place of a deleted record.
			next, err = s.states.Create(ctx, u.stateKey(), value)
		} else {
			next, err = s.pub.publish(ctx, s.statePut+u.stateKey(), value, &rev)
		}
		switch {
		case err == nil:
			s.recent.put(u, value, next)
			return st, nil
		// Another writer: again. The stream refuses a stale revision with error code
		// 10071, or 10164 when replicated; the bucket's create wraps the same error.
		case wrongLastSequence(err):
			s.recent.forget(u)
			fresh = true
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		default:
			s.recent.forget(u)
			return nil, fmt.Errorf("write state: %w", err)
		}
	}
}

// add stores one item. The item's message goes to the stream first; then the state
// folds in every message of the user it has not counted yet, this one included. A
// crash between the two writes leaves a message the next fold counts in, and a
// redelivered event publishes a second message that the fold recognises by its
// event id and deletes, so an event is one item however often it comes.
//
// The message is published on the condition that the user's newest message is the
// state's last seq (Nats-Expected-Last-Subject-Sequence; 0 expects none), checked by
// the stream's leader. When the stream accepts it, no message of the user lies
// between that seq and this one, so the fold has nothing to read: it counts in the
// body it holds. Finding the user's next message costs the server a walk over every
// message stored since the user's previous one (its per-subject index knows where a
// user's messages are, not what lies between), which on a stream of interleaved
// users was most of its work for an add. When the condition fails (another writer
// got there first, this Store's copy of the state is stale, or the newest message
// was deleted: a redelivery's duplicate, an item deleted through the API, or a
// crash left one unfolded), the message is published without it and the fold reads
// what it must.
func (s *Store) add(ctx context.Context, u user, body []byte) error {
	after, err := s.knownLast(ctx, u)
	if err != nil {
		return err
	}
	seq, err := s.pub.publish(ctx, u.subject(), body, &after)
	if err == nil {
		return s.catchUp(ctx, u, seq, &proven{after: after, msg: storedMsg{seq: seq, subject: u.subject(), data: body}})
	}
	if !wrongLastSequence(err) {
		return fmt.Errorf("publish item: %w", err)
	}
	// Start from a fresh read: it costs one get, where a stale copy would cost a fold
	// of items counted in already and a failed write.
	s.recent.forget(u)
	if seq, err = s.pub.publish(ctx, u.subject(), body, nil); err != nil {
		return fmt.Errorf("publish item: %w", err)
	}
	return s.catchUp(ctx, u, seq, nil)
}

// proven is what an accepted conditional publish tells: msg is the user's only
// message above after.
type proven struct {
	after uint64
	msg   storedMsg
}

// wrongLastSequence reports the stream's refusal of a conditional publish: error
// code 10071, or 10164 from a replicated stream with a write of the subject in flight.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// catchUp folds the user's items into the state until it covers seq. known, if not
// nil, is what the publish of seq proved (see add).
func (s *Store) catchUp(ctx context.Context, u user, seq uint64, known *proven) error {
	for wait := time.Millisecond; ; {
		var added, evicted []storedMsg
		var before uint64
		st, err := s.update(ctx, u, func(ctx context.Context, st *state) (bool, error) {
			added, evicted, before = nil, nil, st.last
			if st.last >= seq {
				return false, nil
			}
			pending := len(st.deleting) > 0
			if err := s.finishDeletes(ctx, st); err != nil {
				return false, err
			}
			var err error
			if added, err = s.fold(ctx, u, st, seq, known); err != nil {
				return false, err
			}
			if evicted, err = s.trim(ctx, u, st); err != nil {
				return false, err
			}
			return pending || st.last != before || len(evicted) > 0, nil
		})
		if err != nil {
			return err
		}
		s.announce(ctx, u, st, added, evicted)
		if st.last >= seq {
			return nil
		}
		if st.last == before {
			// Nothing new to fold: either another writer folded in the same event
			// first and deleted this message as its duplicate before its own write
			// lost a race, or a replica serving direct gets lags its leader.
			if m, err := s.leaderMsg(ctx, seq); err != nil || m == nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
				wait = min(2*wait, 100*time.Millisecond)
			}
		}
	}
}

// fold counts in the user's messages above st.last, up to foldBatch of them, and
// returns the items it added. A message whose event id already belongs to an
// earlier item is a redelivery: it is deleted before the state says it is folded in.
//
// upTo is the message the caller published. When its publish proved it the only
// message above st.last (known), nothing is read. Otherwise it is mostly still the
// only one not folded in yet, which one single get finds out (no subscription, one
// reply); only when older ones wait (a writer crashed, or several write at once)
// does a batch read them. A retry from a fresher state than the proof's takes this
// path too.
func (s *Store) fold(ctx context.Context, u user, st *state, upTo uint64, known *proven) ([]storedMsg, error) {
	msgs, err := s.unfolded(ctx, u, st, upTo, known)
	if err != nil || len(msgs) == 0 {
		return nil, err
	}
	// The id claim runs on every path: a redelivery of an event folded in already
	// passes the publish's condition like any new event.
	owners, err := s.claimIDs(ctx, u, msgs)
	if err != nil {
		return nil, err
	}
	var added []storedMsg
	var duplicates []uint64
	for _, m := range msgs {
		st.last = max(st.last, m.seq)
		meta := m.meta()
		if meta.ID == "" || owners[meta.ID] != m.seq {
			duplicates = append(duplicates, m.seq)
			continue
		}
		st.add(m.seq, meta.CreatedAt)
		added = append(added, m)
	}
	if err := s.deleteMsgs(ctx, duplicates); err != nil {
		return nil, err
	}
	if len(duplicates) > 0 {
		s.log.Debug("center dropped redelivered items", "account", u.account, "user", u.user, "count", len(duplicates))
	}
	return added, nil
}

// unfolded returns the user's messages above st.last, in order: all of them up to
// upTo at least, up to foldBatch of them.
func (s *Store) unfolded(ctx context.Context, u user, st *state, upTo uint64, known *proven) ([]storedMsg, error) {
	if known != nil && known.after == st.last {
		return []storedMsg{known.msg}, nil
	}
	next, err := s.getNext(ctx, u.subject(), st.last+1)
	if err != nil || next == nil {
		return nil, err
	}
	if next.seq >= upTo {
		return []storedMsg{*next}, nil
	}
	msgs, _, err := s.getBatch(ctx, u.subject(), st.last+1, foldBatch)
	return msgs, err
}

// claimIDs records, for each event id among msgs, the item that owns it: the first
// message with that id ever folded in. The id bucket's create is the arbiter, so two
// dispatchers folding the same messages agree. It returns the owner of every id.
func (s *Store) claimIDs(ctx context.Context, u user, msgs []storedMsg) (map[string]uint64, error) {
	first := make(map[string]uint64, len(msgs))
	for _, m := range msgs {
		if id := m.meta().ID; id != "" {
			if _, seen := first[id]; !seen {
				first[id] = m.seq
			}
		}
	}
	owners := make(map[string]uint64, len(first))
	if len(first) == 1 { // the common case: the one item just published
		for id, seq := range first {
			owner, err := s.claimID(ctx, u.idKey(id), seq)
			if err != nil {
				return nil, err
			}
			owners[id] = owner
		}
		return owners, nil
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelRequests)
	for id, seq := range first {
		g.Go(func() error {
			owner, err := s.claimID(gctx, u.idKey(id), seq)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			owners[id] = owner
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return owners, nil
}

// claimID creates key for seq, or returns the seq that holds it already.
func (s *Store) claimID(ctx context.Context, key string, seq uint64) (uint64, error) {
	none := uint64(0)
	_, err := s.pub.publish(ctx, s.idPut+key, formatSeq(seq), &none)
	if err == nil {
		return seq, nil
	}
	if !wrongLastSequence(err) {
		return 0, fmt.Errorf("claim id: %w", err)
	}
	// The key is held, or only its delete marker is: the bucket's create tells.
	_, err = s.ids.Create(ctx, key, formatSeq(seq))
	if err == nil {
		return seq, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("claim id: %w", err)
	}
	e, err := s.ids.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read id: %w", err)
	}
	return parseSeq(e.Value())
}

// trim evicts the oldest items while the user has more than MaxItems or items older
// than MaxAge, at most maxEvictions per write, and returns them. The evicted items
// are counted out and left in st.deleting; their messages go after the write.
func (s *Store) trim(ctx context.Context, u user, st *state) ([]storedMsg, error) {
	cutoff := s.cfg.Now().Add(-s.cfg.MaxAge).Unix()
	var evicted []storedMsg
	from := uint64(0)
	for len(evicted) < maxEvictions && st.count > 0 {
		excess := st.count - int64(s.cfg.MaxItems)
		aged := st.oldest < cutoff
		if excess <= 0 && !aged {
			break
		}
		want := max(excess+1, 1) // one more tells the new oldest
		if aged {
			want = max(want, foldBatch)
		}
		want = min(want, int64(maxEvictions-len(evicted)+1))
		if from == 0 {
			from = st.blocks[0].first
		}
		msgs, more, err := s.getBatch(ctx, u.subject(), from, int(want)+len(st.deleting))
		if err != nil {
			return nil, err
		}
		stop := !more
		for _, m := range msgs {
			from = m.seq + 1
			if m.seq > st.last {
				stop = true
				break
			}
			if st.isDeleting(m.seq) {
				continue
			}
			if len(evicted) == maxEvictions {
				stop = true
				break
			}
			if gone, err := s.goneOnLeader(ctx, m.seq); err != nil {
				return nil, err
			} else if gone {
				continue
			}
			created := m.meta().CreatedAt
			if excess > 0 || created < cutoff {
				st.remove(m.seq)
				evicted = append(evicted, m)
				excess--
				continue
			}
			st.oldest = created
			stop = true
			break
		}
		if stop || len(msgs) == 0 {
			break
		}
	}
	return evicted, nil
}

// goneOnLeader reports a message that a replica still showed but its leader has
// deleted already: on a cluster, a replica may answer a direct get a moment behind,
// and an item counted out once must not be evicted twice. With one replica the
// answer came from the leader and nothing is asked.
func (s *Store) goneOnLeader(ctx context.Context, seq uint64) (bool, error) {
	if s.cfg.Replicas == 1 {
		return false, nil
	}
	m, err := s.leaderMsg(ctx, seq)
	return m == nil, err
}

// finishDeletes deletes the messages of items a previous write counted out but did
// not get to delete (it crashed, or lost a race), and forgets them.
func (s *Store) finishDeletes(ctx context.Context, st *state) error {
	if len(st.deleting) == 0 {
		return nil
	}
	if err := s.deleteMsgs(ctx, st.deleting); err != nil {
		return err
	}
	st.finishDeletes()
	return nil
}

// removed deletes the messages of items a write counted out, then clears them from
// the state's pending deletions. If either step fails, the next fold finishes it.
func (s *Store) removed(ctx context.Context, u user, seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	err := s.deleteMsgs(ctx, seqs)
	if err == nil {
		_, err = s.update(ctx, u, func(_ context.Context, st *state) (bool, error) {
			n := len(st.deleting)
			st.deleting = slices.DeleteFunc(st.deleting, func(seq uint64) bool {
				_, found := slices.BinarySearch(seqs, seq)
				return found
			})
			return len(st.deleting) != n, nil
		})
	}
	if err != nil {
		s.log.Warn("center deletions left for the next write", "account", u.account, "user", u.user, "count", len(seqs), "error", err)
	}
}

// announce finishes a fold: it deletes the evicted items' messages and tells the
// user's tabs what was added and what was evicted.
func (s *Store) announce(ctx context.Context, u user, st *state, added, evicted []storedMsg) {
	gone := make([]uint64, len(evicted))
	ids := make([]string, len(evicted))
	for i, m := range evicted {
		gone[i], ids[i] = m.seq, m.meta().ID
	}
	s.removed(ctx, u, gone)
	for _, m := range added {
		if _, out := slices.BinarySearch(gone, m.seq); !out {
			if item := served(m.data, m.seq, false); item != nil {
				s.publish(u, addedFrame(item, st.unread))
			}
		}
	}
	if len(ids) > 0 {
		s.publishJSON(u, deletedFrame{Kind: "center", Op: OpDeleted, IDs: ids, Unread: st.unread})
	}
}

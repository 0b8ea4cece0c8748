package center

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
)

// resumeBatch is how many items a resume reads per round trip.
const resumeBatch = 256

// List returns a page of the user's items, newest first: the limit newest with a
// seq below before (0: the newest of all), the user's unread count, and the cursor
// of the next page (the seq of the page's oldest item; 0 when no older item exists).
// Items added meanwhile have larger seqs, so walking the pages never misses or
// repeats an item. Each item is the JSON of Item.
//
// It costs two round trips whatever the number of items: the state, and one batch
// of at most limit+1 items plus the rest of two blocks (see state), read from the
// stream's per-subject index.
func (s *Store) List(ctx context.Context, account, name string, before uint64, limit int) (items []json.RawMessage, next uint64, unread int64, err error) {
	u, err := newUser(account, name)
	if err != nil {
		return nil, 0, 0, err
	}
	limit = max(limit, 1)
	st, _, err := s.load(ctx, u)
	if err != nil {
		return nil, 0, 0, err
	}
	c := st.last + 1
	if before > 0 && before < c {
		c = before
	}
	// The block holding the newest item below c, then back until the blocks below it
	// hold more than a page: those are all below c, the first block maybe only in part.
	m := sort.Search(len(st.blocks), func(i int) bool { return st.blocks[i].first >= c }) - 1
	if m < 0 {
		return []json.RawMessage{}, 0, st.unread, nil
	}
	// Of the block holding c, at most c-first items lie below c (fewer when other
	// users' items share the stream's sequence).
	batch := int(min(uint64(st.blocks[m].live), c-st.blocks[m].first))
	below := 0
	if c > st.last {
		below = batch // all of the newest block is below c
	}
	j := m
	for j > 0 && below <= limit {
		j--
		below += int(st.blocks[j].live)
		batch += int(st.blocks[j].live)
	}
	msgs, _, err := s.getBatch(ctx, u.subject(), st.blocks[j].first, batch+len(st.deleting))
	if err != nil {
		return nil, 0, 0, err
	}
	var page []json.RawMessage // oldest first
	var seqs []uint64
	for _, m := range msgs {
		if m.seq >= c {
			break
		}
		if st.isDeleting(m.seq) {
			continue
		}
		if item := served(m.data, m.seq, st.isRead(m.seq)); item != nil {
			page = append(page, item)
			seqs = append(seqs, m.seq)
		}
	}
	if len(page) > limit {
		page, seqs = page[len(page)-limit:], seqs[len(seqs)-limit:]
		next = seqs[0]
	}
	slices.Reverse(page)
	if page == nil {
		page = []json.RawMessage{}
	}
	return page, next, st.unread, nil
}

// Unread is the user's unread count: one read of the state record, no scan.
func (s *Store) Unread(ctx context.Context, account, name string) (int64, error) {
	u, err := newUser(account, name)
	if err != nil {
		return 0, err
	}
	st, _, err := s.load(ctx, u)
	if err != nil {
		return 0, err
	}
	return st.unread, nil
}

// State is the websocket hello's view of the user's center: the unread count and
// the latest seq (0 if none).
func (s *Store) State(ctx context.Context, account, name string) (unread int64, seq uint64, err error) {
	u, err := newUser(account, name)
	if err != nil {
		return 0, 0, err
	}
	st, _, err := s.load(ctx, u)
	if err != nil {
		return 0, 0, err
	}
	return st.unread, st.last, nil
}

// Resume sends the center added frame of every item of the user with a seq above
// after, in seq order, and returns the latest seq and the unread count they were
// sent with. It answers a tab's {"op":"resume","after":N} after a reconnect.
func (s *Store) Resume(ctx context.Context, account, name string, after uint64, send func(frame []byte) error) (seq uint64, unread int64, err error) {
	u, err := newUser(account, name)
	if err != nil {
		return 0, 0, err
	}
	st, _, err := s.load(ctx, u)
	if err != nil {
		return 0, 0, err
	}
	for from := after + 1; from <= st.last; {
		msgs, more, err := s.getBatch(ctx, u.subject(), from, resumeBatch)
		if err != nil {
			return 0, 0, err
		}
		for _, m := range msgs {
			if m.seq > st.last {
				return st.last, st.unread, nil
			}
			from = m.seq + 1
			item := served(m.data, m.seq, st.isRead(m.seq))
			if item == nil || st.isDeleting(m.seq) {
				continue
			}
			if err := send(addedFrame(item, st.unread)); err != nil {
				return 0, 0, err
			}
		}
		if !more || len(msgs) == 0 {
			break
		}
	}
	return st.last, st.unread, nil
}

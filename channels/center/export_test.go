package center

import (
	"context"
	"fmt"
)

// CheckState compares a user's state record with the user's items in the stream,
// read in full, and reports the first invariant of state that does not hold.
func (s *Store) CheckState(ctx context.Context, account, name string) error {
	u, err := newUser(account, name)
	if err != nil {
		return err
	}
	st, _, err := s.load(ctx, u)
	if err != nil {
		return err
	}
	var live []storedMsg
	for from := uint64(1); ; {
		msgs, more, err := s.getBatch(ctx, u.subject(), from, 1024)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			from = m.seq + 1
			if m.seq <= st.last && !st.isDeleting(m.seq) {
				live = append(live, m)
			}
		}
		if !more || len(msgs) == 0 {
			break
		}
	}
	if st.count != int64(len(live)) {
		return fmt.Errorf("count %d, %d items in the stream", st.count, len(live))
	}
	perBlock := make([]block, len(st.blocks))
	unread := int64(0)
	for _, m := range live {
		i := st.blockOf(m.seq)
		if i < 0 {
			return fmt.Errorf("item %d lies before the first block", m.seq)
		}
		perBlock[i].live++
		if !st.isRead(m.seq) {
			perBlock[i].unread++
			unread++
		}
		if c := m.meta().CreatedAt; c < st.oldest {
			return fmt.Errorf("oldest %d, but item %d was created at %d", st.oldest, m.seq, c)
		}
	}
	if st.unread != unread {
		return fmt.Errorf("unread %d, %d unread items in the stream", st.unread, unread)
	}
	for i, b := range st.blocks {
		if i > 0 && b.first <= st.blocks[i-1].first {
			return fmt.Errorf("block %d starts at %d, not after block %d", i, b.first, i-1)
		}
		if b.live > blockSize || b.live != perBlock[i].live || b.unread != perBlock[i].unread {
			return fmt.Errorf("block %d says %d live, %d unread; the stream has %d, %d", i, b.live, b.unread, perBlock[i].live, perBlock[i].unread)
		}
	}
	for i, seq := range st.read {
		if seq <= st.readUpTo || (i > 0 && seq <= st.read[i-1]) {
			return fmt.Errorf("read set %v is not ascending above %d", st.read, st.readUpTo)
		}
	}
	return nil
}

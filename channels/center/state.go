package center

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// blockSize is how many live items a block holds at most: the granularity of the
// sparse index that lets a page start near its cursor instead of scanning.
const blockSize = 64

// state is a user's record in the state bucket: the counters and the sparse index
// that make unread counts and pages cost the same at 10 or 100,000 items. It is a
// view of the user's subject in the stream, folded in up to last: every item with a
// larger sequence is not counted yet (its writer is still at work, or crashed), and
// the next add folds it in.
//
// Invariants, kept by the methods below and checked by the tests:
//   - count and unread are the live items and the live unread items at or below last;
//   - every live item lies in exactly one block, the one with the largest first at or
//     below its seq; blocks are ascending, each holds at most blockSize live items, and
//     nothing live lies below blocks[0].first;
//   - an item is read when its seq is at or below readUpTo or in read; an item that is
//     gone (deleted or evicted) is at or below readUpTo or in read too, so marking it
//     read again never changes a count;
//   - deleting holds items already counted out whose stream message may still exist
//     (a crash between the two writes): pages skip them, the next write deletes them.
type state struct {
	last     uint64   // highest stream sequence folded in
	count    int64    // live items
	unread   int64    // live unread items
	oldest   int64    // created_at (Unix s) of the oldest live item, or earlier; 0 when empty
	readUpTo uint64   // every item at or below is read or gone
	read     []uint64 // ascending: items above readUpTo that are read or gone
	blocks   []block
	deleting []uint64 // ascending
}

// block is a run of a user's items: those with a seq from first up to the next
// block's first.
type block struct {
	first  uint64
	live   uint32
	unread uint32
}

// add counts in a new item, the newest. The caller sets last.
func (st *state) add(seq uint64, created int64) {
	if st.count == 0 {
		st.oldest = created
	}
	if n := len(st.blocks); n == 0 || st.blocks[n-1].live >= blockSize {
		st.blocks = append(st.blocks, block{first: seq})
	}
	b := &st.blocks[len(st.blocks)-1]
	b.live++
	b.unread++
	st.count++
	st.unread++
}

// blockOf is the index of the block holding seq, -1 when seq lies before them all.
func (st *state) blockOf(seq uint64) int {
	return sort.Search(len(st.blocks), func(i int) bool { return st.blocks[i].first > seq }) - 1
}

func (st *state) isRead(seq uint64) bool {
	if seq <= st.readUpTo {
		return true
	}
	_, found := slices.BinarySearch(st.read, seq)
	return found
}

func (st *state) isDeleting(seq uint64) bool {
	_, found := slices.BinarySearch(st.deleting, seq)
	return found
}

// markRead marks the item at seq read and reports whether that changed anything.
// seq comes from the user's own id index, so it is the user's item; one that is not
// folded in yet, already read, or gone changes nothing.
func (st *state) markRead(seq uint64) bool {
	if seq > st.last || st.isRead(seq) {
		return false
	}
	i := st.blockOf(seq)
	if i < 0 {
		return false
	}
	st.blocks[i].unread--
	st.unread--
	st.read = insertSorted(st.read, seq)
	return true
}

// markAllRead marks every folded-in item read and reports whether any was unread.
func (st *state) markAllRead() bool {
	changed := st.unread > 0
	st.readUpTo = st.last
	st.read = nil
	st.unread = 0
	for i := range st.blocks {
		st.blocks[i].unread = 0
	}
	return changed
}

// remove counts out the live item at seq and schedules its message for deletion.
func (st *state) remove(seq uint64) {
	i := st.blockOf(seq)
	if i < 0 {
		return // gone already: not live
	}
	b := &st.blocks[i]
	b.live--
	st.count--
	if !st.isRead(seq) {
		b.unread--
		st.unread--
		st.read = insertSorted(st.read, seq)
	}
	st.deleting = insertSorted(st.deleting, seq)
	if st.count == 0 {
		st.oldest = 0
	}
}

// normalize restores the compact form after counts went down: empty leading blocks
// go, neighbours that fit in one block merge, and readUpTo moves up to just below
// the first block with an unread item, so read holds only what it must.
func (st *state) normalize() {
	out := st.blocks[:0]
	for _, b := range st.blocks {
		switch n := len(out); {
		case n == 0 && b.live == 0:
			// nothing live before it either: drop
		case n > 0 && out[n-1].live+b.live <= blockSize:
			out[n-1].live += b.live
			out[n-1].unread += b.unread
		default:
			out = append(out, b)
		}
	}
	clear(st.blocks[len(out):])
	st.blocks = out

	upTo := st.last
	for _, b := range st.blocks {
		if b.unread > 0 {
			upTo = b.first - 1
			break
		}
	}
	if upTo > st.readUpTo {
		st.readUpTo = upTo
		i, _ := slices.BinarySearch(st.read, upTo+1)
		st.read = slices.Delete(st.read, 0, i)
	}
}

// finishDeletes forgets the pending deletions; the caller has deleted their messages.
func (st *state) finishDeletes() { st.deleting = nil }

func insertSorted(s []uint64, v uint64) []uint64 {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	return slices.Insert(s, i, v)
}

// stateVersion is the first byte of an encoded state.
const stateVersion = 1

var errBadState = errors.New("center: malformed state record")

// MarshalBinary encodes the state compactly: the version byte, then uvarints (last,
// count, unread, oldest, readUpTo), then three lists, each its length followed by its
// entries: read as deltas from readUpTo, blocks as (first delta, live, unread),
// deleting as deltas. 100,000 items take about 6 KB.
func (st *state) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 48+4*len(st.blocks)+3*(len(st.read)+len(st.deleting)))
	b = append(b, stateVersion)
	for _, v := range []uint64{st.last, uint64(st.count), uint64(st.unread), uint64(st.oldest), st.readUpTo} {
		b = binary.AppendUvarint(b, v)
	}
	b = appendDeltas(b, st.readUpTo, st.read)
	b = binary.AppendUvarint(b, uint64(len(st.blocks)))
	prev := uint64(0)
	for _, blk := range st.blocks {
		b = binary.AppendUvarint(b, blk.first-prev)
		b = binary.AppendUvarint(b, uint64(blk.live))
		b = binary.AppendUvarint(b, uint64(blk.unread))
		prev = blk.first
	}
	b = appendDeltas(b, 0, st.deleting)
	return b, nil
}

func appendDeltas(b []byte, base uint64, seqs []uint64) []byte {
	b = binary.AppendUvarint(b, uint64(len(seqs)))
	for _, s := range seqs {
		b = binary.AppendUvarint(b, s-base)
		base = s
	}
	return b
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (st *state) UnmarshalBinary(data []byte) error {
	if len(data) == 0 || data[0] != stateVersion {
		return fmt.Errorf("%w: unknown version", errBadState)
	}
	d := decoder{b: data[1:]}
	*st = state{
		last:     d.uvarint(),
		count:    int64(d.uvarint()),
		unread:   int64(d.uvarint()),
		oldest:   int64(d.uvarint()),
		readUpTo: d.uvarint(),
	}
	st.read = d.deltas(st.readUpTo)
	if n := d.length(3); n > 0 {
		st.blocks = make([]block, n)
		prev := uint64(0)
		for i := range st.blocks {
			prev += d.uvarint()
			st.blocks[i] = block{first: prev, live: uint32(d.uvarint()), unread: uint32(d.uvarint())}
		}
	}
	st.deleting = d.deltas(0)
	if d.err != nil || len(d.b) != 0 {
		return errBadState
	}
	return nil
}

// lastOf reads last from an encoded state without decoding the rest.
func lastOf(data []byte) (uint64, bool) {
	if len(data) == 0 || data[0] != stateVersion {
		return 0, false
	}
	last, n := binary.Uvarint(data[1:])
	return last, n > 0
}

// decoder reads uvarints, remembering the first failure.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errBadState
		return 0
	}
	d.b = d.b[n:]
	return v
}

// length reads a list length, refusing one the remaining bytes cannot hold at
// perEntry bytes or more an entry.
func (d *decoder) length(perEntry int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/perEntry) {
		d.err = errBadState
		return 0
	}
	return int(n)
}

func (d *decoder) deltas(base uint64) []uint64 {
	n := d.length(1)
	if n == 0 {
		return nil
	}
	out := make([]uint64, n)
	for i := range out {
		base += d.uvarint()
		out[i] = base
	}
	return out
}

package center

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestStateEncodingRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	cases := map[string]*state{
		"empty": {},
		"one item": {last: 9, count: 1, unread: 1, oldest: 1714566795,
			blocks: []block{{first: 9, live: 1, unread: 1}}},
		"read marks and pending deletions": {last: 1 << 40, count: 3, unread: 1, oldest: 1, readUpTo: 1 << 39,
			read: []uint64{1<<39 + 1, 1<<39 + 5}, deleting: []uint64{7, 1 << 39},
			blocks: []block{{first: 1 << 38, live: 2, unread: 0}, {first: 1<<39 + 1, live: 1, unread: 1}}},
	}
	random := &state{last: 1_000_000}
	for i := range 2000 {
		random.blocks = append(random.blocks, block{first: uint64(i*500 + rng.IntN(400)), live: uint32(rng.IntN(65)), unread: uint32(rng.IntN(65))})
	}
	cases["2000 blocks"] = random
	for name, st := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := st.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got state
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&got, st) {
				t.Errorf("decoded %+v\nwant %+v", got, *st)
			}
			for cut := range len(b) { // every truncation is refused, never a panic
				if err := new(state).UnmarshalBinary(b[:cut]); err == nil {
					t.Fatalf("accepted %d of %d bytes", cut, len(b))
				}
			}
		})
	}
}

func TestNormalizeKeepsTheIndexSmall(t *testing.T) {
	st := &state{}
	for seq := uint64(1); seq <= 3*blockSize; seq++ {
		st.add(seq, 100)
		st.last = seq
	}
	if len(st.blocks) != 3 {
		t.Fatalf("%d blocks for %d items", len(st.blocks), 3*blockSize)
	}
	// Delete half of the first two blocks and read half of the rest: they merge.
	for seq := uint64(1); seq <= 2*blockSize; seq++ {
		switch {
		case seq%4 == 0:
			// kept unread
		case seq%2 == 0:
			st.markRead(seq)
		default:
			st.remove(seq)
		}
	}
	st.normalize()
	if len(st.blocks) != 2 || st.blocks[0].live != blockSize || st.blocks[0].unread != blockSize/2 || st.count != 2*blockSize {
		t.Errorf("blocks %+v, count %d", st.blocks, st.count)
	}
	if st.readUpTo != 0 || len(st.read) != 3*blockSize/2 || st.unread != blockSize/2+blockSize {
		t.Errorf("readUpTo %d, %d read, unread %d", st.readUpTo, len(st.read), st.unread)
	}
	// Once the merged block is all read, readUpTo passes it and the read set empties.
	for seq := uint64(4); seq <= 2*blockSize; seq += 4 {
		st.markRead(seq)
	}
	st.normalize()
	if st.readUpTo != 2*blockSize || len(st.read) != 0 || st.unread != blockSize {
		t.Errorf("readUpTo %d, read %v, unread %d", st.readUpTo, st.read, st.unread)
	}
	if !st.markAllRead() || st.unread != 0 {
		t.Fatal("mark all read")
	}
	st.normalize()
	if st.readUpTo != st.last || len(st.read) != 0 {
		t.Errorf("after mark all: readUpTo %d, read %v", st.readUpTo, st.read)
	}
}

package center_test

import (
	"fmt"
	"slices"
	"testing"
)

// TestPagesNeverMissOrRepeatWhileItemsArrive walks the pages of a user while new
// items arrive (and, in some cases, old ones are deleted) between the requests: the
// walk returns exactly the items that were there when it started, newest first,
// minus the deleted ones, and a new first page shows the new items.
func TestPagesNeverMissOrRepeatWhileItemsArrive(t *testing.T) {
	const initial = 150 // more than two blocks of the index
	cases := []struct {
		limit       int
		newPerPage  int
		deleteEvery int // delete every n-th initial item during the walk; 0: none
	}{
		{limit: 1, newPerPage: 1},
		{limit: 7, newPerPage: 2},
		{limit: 50, newPerPage: 3},
		{limit: 64, newPerPage: 1, deleteEvery: 5},
		{limit: 200, newPerPage: 5},
		{limit: 13, newPerPage: 2, deleteEvery: 3},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("limit %d, %d new per page, delete every %d", tc.limit, tc.newPerPage, tc.deleteEvery), func(t *testing.T) {
			r := newRig(t, nil)
			var want []string // newest first
			for i := range initial {
				id := fmt.Sprintf("old-%03d", i)
				r.add(t, "acme", "42", id)
				want = append([]string{id}, want...)
			}
			deleted := map[string]bool{}
			var got []string
			added := 0
			for before, pages := uint64(0), 0; ; pages++ {
				items, next, _ := r.page(t, "acme", "42", before, tc.limit)
				if len(items) > tc.limit {
					t.Fatalf("page of %d items, limit %d", len(items), tc.limit)
				}
				for _, it := range items {
					got = append(got, it.ID)
				}
				if next == 0 {
					break
				}
				if pages > initial {
					t.Fatal("the walk does not end")
				}
				before = next
				for range tc.newPerPage {
					r.add(t, "acme", "42", fmt.Sprintf("new-%03d", added))
					added++
				}
				if tc.deleteEvery > 0 {
					// Delete one item the walk has not reached yet.
					for _, id := range want[slices.Index(want, got[len(got)-1])+1:] {
						if !deleted[id] && len(deleted)*tc.deleteEvery < initial {
							if found, err := r.store.Delete(t.Context(), "acme", "42", id); err != nil || !found {
								t.Fatalf("delete %s: %v %v", id, found, err)
							}
							deleted[id] = true
							break
						}
					}
				}
			}
			want = slices.DeleteFunc(want, func(id string) bool { return deleted[id] })
			if !slices.Equal(got, want) {
				t.Errorf("walked %d items, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
			}

			first, _, unread := r.page(t, "acme", "42", 0, 200)
			if wantUnread := int64(initial + added - len(deleted)); unread != wantUnread {
				t.Errorf("unread %d, want %d", unread, wantUnread)
			}
			if added > 0 && first[0].ID != fmt.Sprintf("new-%03d", added-1) {
				t.Errorf("the first page starts with %s, not the newest item", first[0].ID)
			}
			r.checkState(t, "acme", "42")
		})
	}
}

func TestPageOfAnEmptyCenter(t *testing.T) {
	r := newRig(t, nil)
	items, next, unread := r.page(t, "acme", "42", 0, 50)
	if len(items) != 0 || next != 0 || unread != 0 {
		t.Errorf("empty center: %d items, next %d, unread %d", len(items), next, unread)
	}
	r.add(t, "acme", "42", "only")
	items, next, _ = r.page(t, "acme", "42", 0, 1)
	if len(items) != 1 || next != 0 {
		t.Errorf("one item, limit 1: %d items, next %d (no older page)", len(items), next)
	}
	items, next, _ = r.page(t, "acme", "42", items[0].Seq, 50)
	if len(items) != 0 || next != 0 {
		t.Errorf("before the oldest item: %d items, next %d", len(items), next)
	}
}

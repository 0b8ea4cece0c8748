// Package center is the notification center: a durable inbox per user, kept in
// JetStream and nothing else. It is the channel that stores every add_error and
// add_call for each recipient (Store.Send), the store behind the center's HTTP API
// (List, Unread, MarkRead, MarkAllRead, Delete; mounted by dispatcher/httpapi) and
// what the websocket hub asks for a tab's hello and resume (State, Resume: it is a
// relay.Center). Each change is also published as a frame on ui.<account>.<user>
// (center added, read or deleted; frames.go), so every open tab of the user shows the
// same list and badge.
//
// # Storage
//
//   - Stream NOTIFY_CENTER, subjects center.<account>.<user>: one message per item,
//     its body the item's JSON without seq and read (see Item); the stream sequence
//     is the item's seq, so a user's seqs increase. Deleting an item deletes its
//     message. Direct gets are allowed: pages and resumes read a run of a user's
//     items in one batched direct get from the server's per-subject index. The
//     stream's own MaxAge is twice the retention, a safety net only.
//   - KV bucket NOTIFY_CENTER_STATE, key <account>.<user>: the user's state record
//     (state.go), a compact binary value holding the unread and item counts, the
//     read marks (a watermark plus the read seqs above it) and a sparse index: the
//     first seq and the live and unread counts of each block of up to 64 items. About
//     6 KB at 100,000 items.
//   - KV bucket NOTIFY_CENTER_IDS, key <account>.<user>.<128-bit SHA-256 of the event
//     id, base64url>: the seq of the item that owns the event id. Keys expire a day
//     after the retention (MaxAge).
//
// # Writes
//
// Every change of a user's state is a compare-and-set on its revision (kv.Update,
// again from a fresh read when the revision is stale), so any number of dispatchers
// write safely. An add publishes the item's message first, then folds into the
// state every message of the user above the state's last seq: for each it claims
// the event id (kv.Create; the first message with an id owns it), counts it in and
// indexes it. A message whose id another item owns is a redelivery and is deleted
// before the state moves past it. Because the stream is the log and the state a
// view folded in from it, a crash between the writes leaves a message that the next
// fold counts in, and an event is one item however often and however late it is
// redelivered. Removals (a delete, an eviction) go the other way: the state counts
// the item out and lists it as pending deletion, then the message is deleted and
// the pending entry cleared; a pending entry left by a crash is skipped by pages
// and finished by the next fold.
//
// A Store remembers the state record it last wrote (or read for an add) for each
// recent user (statecache.go) and starts the next write from it instead of a read: the
// compare-and-set turns a stale copy into a fresh read, so this saves a round trip
// without trusting the copy. An add publishes its message on the condition that the
// user's newest message is that state's last seq (Nats-Expected-Last-Subject-Sequence,
// 0 for none; the stream's leader checks it), reading the state first when it
// remembers none. An accepted publish proves the new message the only one above that
// seq, so a fold starting from it reads nothing back and counts in the body it holds;
// the id claim, the compare-and-set, retention and pending deletions run as ever. A
// refused one (another writer got there first, the copy is stale, the newest message
// was deleted, a crash left one unfolded) publishes again without the condition, and
// its fold, like any fold from another seq, asks for the user's one message after the
// state's last seq with a single direct get (no subscription); only when that is not
// the message it has just published does it read a batch.
//
// Retention is the application's, so the counters see every eviction: each add
// evicts the oldest items beyond MaxItems or older than MaxAge, and Run sweeps
// every SweepInterval for items past MaxAge. The sweep reads the stream from its
// oldest message until the first young one, so it costs what there is to evict.
//
// # Invariants
//
//   - unread and the item count are exact after any sequence of adds,
//     redeliveries, reads, deletes and evictions (a model-based test holds them);
//   - unread is kept, never computed: Unread and State are one KV get;
//   - List starts its batch at the block before its cursor and reads at most
//     limit+1 items plus two blocks' worth: no scan, whatever the user holds;
//   - a page's cursor is the seq of its oldest item and new items get larger seqs,
//     so walking the pages never misses or repeats an item while items arrive;
//   - one user's state and items are reached only through keys and subjects built
//     from that user's account and name.
//
// # Costs
//
// An add: a publish, an id create and a state write (three round trips; a fourth, the
// state read, when the Store does not remember the user's state). The publishes of
// all adds, and their frames, go out in batches, one batch out at a time (see
// publisher), so under load a round trip is shared by many adds. An add that evicts costs a direct get, a
// delete and a second state write more. Checking the publish's condition
// costs the server a lookup of the subject's last message in its per-subject index.
// An add whose condition fails costs a second publish, a state read and a direct get
// more, and that direct get costs the server a walk over the messages stored between
// the user's previous item and this one: the per-subject index knows where a user's
// messages start and end in a block, not what lies between. A page: a state read and
// one direct get of about 100 items. Unread: a state read. Mark read: an id read
// per id, a state read and a write. Storage: the items, one id key per item stored
// in the last MaxAge plus a day (about 150 bytes each), and one state record per
// user. On a cluster (Replicas 3) direct gets may be answered by a replica a moment
// behind its leader: a page may miss an item added in that moment (its added frame
// still reaches the tabs), and the write path asks the leader where it matters
// (evictions, deletes).
//
// # Imports
//
// channels and events, NATS and x/sync: never the dispatcher, another channel or
// cmd. Items the API serves are passed through as JSON, so dispatcher/httpapi needs
// no import of this package (cmd wires it).
package center

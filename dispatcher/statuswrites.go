package dispatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
)

// statusWrites writes delivery records without waiting for them. A KV put waits a
// round trip for its acknowledgement, and a dispatcher finishes hundreds of
// deliveries at once (each channel keeps its sends in flight). Here a record is
// published at once, and what must follow it (acknowledging the event) runs when its
// acknowledgement comes: no goroutine waits for a record, and the records of many
// deliveries share the connection's writes.
//
// The records are KV puts (a publish to $KV.<bucket>.<key>) whose acknowledgements
// come to one subscription made once, each to a reply subject of its own, so a
// record costs the server what a put costs and the client no request of its own. The
// keys and values are those of a put: readers see no difference.
type statusWrites struct {
	nc      *nats.Conn
	subject string // $KV.<bucket>.
	inbox   string // the acknowledgement of record n comes to <inbox>n

	subOnce sync.Once
	subErr  error

	mu       sync.Mutex
	next     uint64
	pending  map[uint64]pendingWrite // by the token in the reply subject
	sweeping bool                    // a sweep is scheduled
}

// pendingWrite is a record waiting for its acknowledgement.
type pendingWrite struct {
	deadline time.Time
	done     func(error)
}

// statusSweep is how often records that outstay statusWriteTimeout are failed.
const statusSweep = statusWriteTimeout / 5

func newStatusWrites(nc *nats.Conn, bucket string) *statusWrites {
	return &statusWrites{
		nc:      nc,
		subject: "$KV." + bucket + ".",
		inbox:   nc.NewInbox() + ".",
		pending: map[uint64]pendingWrite{},
	}
}

// put stores rec under key and calls done once it is stored (nil) or failed to be:
// refused, no bucket, no connection, or no acknowledgement within
// statusWriteTimeout. done runs exactly once, on another goroutine or before put
// returns, and must not block: the acknowledgements of other records wait for it.
func (q *statusWrites) put(key string, rec statusRecord, done func(error)) {
	q.subOnce.Do(func() {
		_, q.subErr = q.nc.Subscribe(q.inbox+"*", q.acknowledged)
	})
	if q.subErr != nil {
		done(fmt.Errorf("status records: %w", q.subErr))
		return
	}
	value := rec.appendJSON(make([]byte, 0, 192))
	q.mu.Lock()
	q.next++
	token := q.next
	q.pending[token] = pendingWrite{deadline: time.Now().Add(statusWriteTimeout), done: done}
	sweep := !q.sweeping
	q.sweeping = true
	q.mu.Unlock()
	if sweep {
		time.AfterFunc(statusSweep, q.sweep)
	}
	reply := strconv.AppendUint([]byte(q.inbox), token, 10)
	if err := q.nc.PublishRequest(q.subject+key, string(reply), value); err != nil {
		if w, ok := q.take(token); ok {
			w.done(fmt.Errorf("status record: %w", err))
		}
	}
}

// take removes the record with token from the pending ones; false when it is not
// there any more (answered, or failed by a sweep).
func (q *statusWrites) take(token uint64) (pendingWrite, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	w, ok := q.pending[token]
	delete(q.pending, token)
	return w, ok
}

// sweep fails the records that outstayed their deadline, and schedules the next
// sweep while any record waits.
func (q *statusWrites) sweep() {
	now := time.Now()
	var late []pendingWrite
	q.mu.Lock()
	for token, w := range q.pending {
		if now.After(w.deadline) {
			late = append(late, w)
			delete(q.pending, token)
		}
	}
	q.sweeping = len(q.pending) > 0
	if q.sweeping {
		time.AfterFunc(statusSweep, q.sweep)
	}
	q.mu.Unlock()
	for _, w := range late {
		w.done(errors.New("status record: no acknowledgement in time"))
	}
}

// acknowledged answers one record: a PubAck, a JetStream error, or the server's
// no-responders status when the bucket is gone.
func (q *statusWrites) acknowledged(m *nats.Msg) {
	token, err := strconv.ParseUint(m.Subject[len(q.inbox):], 10, 64)
	if err != nil {
		return
	}
	w, ok := q.take(token)
	if !ok {
		return // failed by a sweep already
	}
	w.done(ackError(m))
}

// ackError is the error a put's acknowledgement carries, nil for a PubAck.
func ackError(m *nats.Msg) error {
	switch {
	case len(m.Data) == 0:
		return fmt.Errorf("status record: status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
	case bytes.Contains(m.Data, []byte(`"error"`)):
		var resp struct {
			Error *jetstream.APIError `json:"error"`
		}
		if json.Unmarshal(m.Data, &resp) == nil && resp.Error != nil {
			return fmt.Errorf("status record: %w", resp.Error)
		}
	}
	return nil
}

// appendJSON appends the record as encoding/json writes it, without its reflection:
// one is encoded per delivery.
func (r *statusRecord) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = events.AppendJSONString(b, string(r.Type))
	b = append(b, `,"account":`...)
	b = events.AppendJSONString(b, r.Account)
	b = append(b, `,"to":`...)
	b = events.AppendJSONString(b, r.To)
	if r.State != "" {
		b = append(b, `,"state":`...)
		b = events.AppendJSONString(b, r.State)
	}
	if r.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(r.Attempts), 10)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = events.AppendJSONString(b, r.Reason)
	}
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = events.AppendJSONString(b, r.Error)
	}
	b = append(b, `,"updated_at":"`...)
	b = r.Updated.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

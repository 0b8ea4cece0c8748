package dispatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
)

// statusWrites writes delivery records without anyone waiting for them. A KV put
// waits a round trip for its acknowledgement, and a dispatcher finishes hundreds of
// deliveries at once (each channel keeps its sends in flight). Records are published
// in batches, one batch out at a time: the records that come in while one is out go
// together in the next, which the acknowledgement that completes the batch publishes.
// So a busy dispatcher writes its records in few large writes instead of one each,
// and what must follow a record (acknowledging the event) runs once its batch is
// acknowledged: no goroutine waits for a record.
//
// The records are KV puts (a publish to $KV.<bucket>.<key>) whose acknowledgements
// come to one subscription made once, to a reply subject per batch, so a record
// costs the server what a put costs and the client no request of its own. The keys
// and values are those of a put: readers see no difference.
type statusWrites struct {
	nc      *nats.Conn
	subject string // $KV.<bucket>.
	inbox   string // the acknowledgements of batch n come to <inbox>n

	subOnce sync.Once
	subErr  error

	mu       sync.Mutex
	queue    []queuedWrite   // waiting for the batch out to be answered
	out      *statusBatchOut // the batch out, nil when none is
	batches  uint64          // the last batch token given
	sweeping bool            // a sweep is scheduled
}

// queuedWrite is a record waiting for the next batch.
type queuedWrite struct {
	key   string
	value []byte
	done  func(error)
}

// statusBatchOut is the published batch: its records' callbacks, how many
// acknowledgements it waits for, and until when.
type statusBatchOut struct {
	token    uint64
	done     []func(error)
	left     int
	err      error // the first refusal: the batch's answer
	deadline time.Time
}

// statusBatch bounds the records of one batch.
const statusBatch = 1024

// statusSweep is how often a batch that outstays statusWriteTimeout is looked for.
const statusSweep = statusWriteTimeout / 5

func newStatusWrites(nc *nats.Conn, bucket string) *statusWrites {
	return &statusWrites{
		nc:      nc,
		subject: "$KV." + bucket + ".",
		inbox:   nc.NewInbox() + ".",
	}
}

// put stores rec under key and calls done once it is stored (nil) or failed to be:
// refused, no bucket, no connection, or no acknowledgement within
// statusWriteTimeout. A refusal of one record of a batch is every record's answer:
// the writers only log it. done runs exactly once, on another goroutine or before
// put returns, and must not block: the acknowledgements of other records wait for
// it.
func (q *statusWrites) put(key string, rec statusRecord, done func(error)) {
	q.subOnce.Do(func() {
		_, q.subErr = q.nc.Subscribe(q.inbox+"*", q.acknowledged)
	})
	if q.subErr != nil {
		done(fmt.Errorf("status records: %w", q.subErr))
		return
	}
	w := queuedWrite{key: key, value: rec.appendJSON(make([]byte, 0, 192)), done: done}
	q.mu.Lock()
	q.queue = append(q.queue, w)
	var batch *statusBatchOut
	var records []queuedWrite
	if q.out == nil {
		batch, records = q.startLocked()
	}
	q.mu.Unlock()
	q.publish(batch, records)
}

// startLocked makes the queued records (statusBatch at most) the batch out and
// returns it with its records, for publishing.
func (q *statusWrites) startLocked() (*statusBatchOut, []queuedWrite) {
	n := min(len(q.queue), statusBatch)
	if n == 0 {
		return nil, nil
	}
	batch := slices.Clone(q.queue[:n])
	clear(q.queue[:n])
	q.queue = append(q.queue[:0], q.queue[n:]...)
	q.batches++
	b := &statusBatchOut{token: q.batches, left: n, deadline: time.Now().Add(statusWriteTimeout), done: make([]func(error), n)}
	for i, w := range batch {
		b.done[i] = w.done
	}
	q.out = b
	if !q.sweeping {
		q.sweeping = true
		time.AfterFunc(statusSweep, q.sweep)
	}
	return b, batch
}

// publish writes the batch out; a record the connection refuses counts as answered
// with that error.
func (q *statusWrites) publish(b *statusBatchOut, records []queuedWrite) {
	if b == nil {
		return
	}
	reply := q.inbox + strconv.FormatUint(b.token, 10)
	for i, w := range records {
		if err := q.nc.PublishRequest(q.subject+w.key, reply, w.value); err != nil {
			q.answer(b.token, len(records)-i, fmt.Errorf("status record: %w", err))
			return
		}
	}
}

// answer counts n answers to the batch with token, unless it is no longer out (it
// was failed by a sweep). The answer that completes the batch calls its records'
// callbacks and publishes the next batch.
func (q *statusWrites) answer(token uint64, n int, err error) {
	q.mu.Lock()
	b := q.out
	if b == nil || b.token != token {
		q.mu.Unlock()
		return
	}
	b.left -= n
	if err != nil && b.err == nil {
		b.err = err
	}
	if b.left > 0 {
		q.mu.Unlock()
		return
	}
	q.out = nil
	next, records := q.startLocked()
	q.mu.Unlock()
	for _, done := range b.done {
		done(b.err)
	}
	q.publish(next, records)
}

// sweep fails the batch out once it outstayed its deadline, and schedules the next
// sweep while anything waits.
func (q *statusWrites) sweep() {
	q.mu.Lock()
	var late *statusBatchOut
	if q.out != nil && time.Now().After(q.out.deadline) {
		late = q.out
	}
	q.sweeping = q.out != nil || len(q.queue) > 0
	if q.sweeping {
		time.AfterFunc(statusSweep, q.sweep)
	}
	q.mu.Unlock()
	if late != nil {
		q.answer(late.token, late.left, errors.New("status record: no acknowledgement in time"))
	}
}

// acknowledged counts one acknowledgement: a PubAck, a JetStream error, or the
// server's no-responders status when the bucket is gone.
func (q *statusWrites) acknowledged(m *nats.Msg) {
	token, err := strconv.ParseUint(m.Subject[len(q.inbox):], 10, 64)
	if err != nil {
		return
	}
	q.answer(token, 1, ackError(m))
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

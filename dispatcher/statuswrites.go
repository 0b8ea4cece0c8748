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

// statusBatch bounds the records one flush writes.
const statusBatch = 1024

// statusWrites is a group commit of delivery records. A KV put waits a round trip
// for its acknowledgement, and a dispatcher finishes hundreds of deliveries at once
// (each channel keeps its sends in flight): the records that come in while one flush
// is out are published together in the next, without waiting for each other, and
// every writer returns once the acknowledgements of its flush are in. There is no
// goroutine of its own: the writer that finds no flush running runs one, and hands
// the next to the first writer that came in meanwhile.
//
// The records are KV puts (a publish to $KV.<bucket>.<key>), with the
// acknowledgements of one flush coming to one reply subject of a subscription made
// once, so a record costs the server what a put costs and the client no request of
// its own. The keys and values are those of a put: readers see no difference.
type statusWrites struct {
	nc      *nats.Conn
	subject string // $KV.<bucket>.
	inbox   string // the acknowledgements of flush n come to <inbox>n

	subOnce sync.Once
	subErr  error

	mu       sync.Mutex
	queue    []*statusWrite
	flushing bool

	acksMu sync.Mutex
	acks   map[string]*flushAcks
	flushN uint64
}

// statusWrite is one record waiting to be written.
type statusWrite struct {
	key   string
	value []byte
	done  chan error // one answer: nil, the flush's error, or errLead
}

// flushAcks counts the acknowledgements of one flush.
type flushAcks struct {
	want, got int
	err       error // the first refusal
	done      chan struct{}
}

// errLead tells a waiting writer to run the next flush; it never leaves statusWrites.
var errLead = errors.New("lead the next status flush")

func newStatusWrites(nc *nats.Conn, bucket string) *statusWrites {
	return &statusWrites{
		nc:      nc,
		subject: "$KV." + bucket + ".",
		inbox:   nc.NewInbox() + ".",
		acks:    map[string]*flushAcks{},
	}
}

// put stores rec under key and returns once it is stored, or failed to be.
func (q *statusWrites) put(key string, rec statusRecord) error {
	w := &statusWrite{key: key, value: rec.appendJSON(make([]byte, 0, 192)), done: make(chan error, 1)}
	q.mu.Lock()
	q.queue = append(q.queue, w)
	lead := !q.flushing
	q.flushing = true
	q.mu.Unlock()
	if !lead {
		if err := <-w.done; err != errLead {
			return err
		}
	}
	q.mu.Lock()
	n := min(len(q.queue), statusBatch)
	batch := make([]*statusWrite, n)
	copy(batch, q.queue)
	q.queue = append(q.queue[:0], q.queue[n:]...)
	q.mu.Unlock()

	err := q.publish(batch) // w is in it: it was queued and had no answer yet
	for _, o := range batch {
		o.done <- err
	}

	q.mu.Lock()
	if len(q.queue) > 0 {
		q.queue[0].done <- errLead
	} else {
		q.flushing = false
	}
	q.mu.Unlock()
	return <-w.done
}

// publish writes a batch and waits for its acknowledgements. A refusal is the
// batch's error: the server answers in order, but the writers of a failed record
// only log it, so every writer of the batch does.
func (q *statusWrites) publish(batch []*statusWrite) error {
	q.subOnce.Do(func() {
		_, q.subErr = q.nc.Subscribe(q.inbox+"*", q.acknowledged)
	})
	if q.subErr != nil {
		return fmt.Errorf("status records: %w", q.subErr)
	}
	fa := &flushAcks{want: len(batch), done: make(chan struct{})}
	q.acksMu.Lock()
	q.flushN++
	token := strconv.FormatUint(q.flushN, 10)
	q.acks[token] = fa
	q.acksMu.Unlock()
	defer func() {
		q.acksMu.Lock()
		delete(q.acks, token)
		q.acksMu.Unlock()
	}()
	reply := q.inbox + token
	for _, w := range batch {
		if err := q.nc.PublishRequest(q.subject+w.key, reply, w.value); err != nil {
			return fmt.Errorf("status record: %w", err)
		}
	}
	timeout := time.NewTimer(statusWriteTimeout)
	defer timeout.Stop()
	select {
	case <-fa.done:
		q.acksMu.Lock()
		defer q.acksMu.Unlock()
		if fa.err != nil {
			return fmt.Errorf("status record: %w", fa.err)
		}
		return nil
	case <-timeout.C:
		return errors.New("status record: no acknowledgement in time")
	}
}

// acknowledged counts one acknowledgement: a PubAck, a JetStream error, or the
// server's no-responders status when the bucket is gone.
func (q *statusWrites) acknowledged(m *nats.Msg) {
	var err error
	switch {
	case len(m.Data) == 0:
		err = fmt.Errorf("status %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
	case bytes.Contains(m.Data, []byte(`"error"`)):
		var resp struct {
			Error *jetstream.APIError `json:"error"`
		}
		if json.Unmarshal(m.Data, &resp) == nil && resp.Error != nil {
			err = resp.Error
		}
	}
	q.acksMu.Lock()
	defer q.acksMu.Unlock()
	fa := q.acks[m.Subject[len(q.inbox):]]
	if fa == nil || fa.got == fa.want {
		return // a flush that gave up waiting
	}
	fa.got++
	if err != nil && fa.err == nil {
		fa.err = err
	}
	if fa.got == fa.want {
		close(fa.done)
	}
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

package dispatcher

import (
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
	"github.com/kommo-notify/notify/events/natstest"
)

func TestStatusRecordJSONIsEncodingJSONs(t *testing.T) {
	at := time.Date(2026, 11, 24, 8, 3, 9, 123456789, time.UTC)
	for name, rec := range map[string]statusRecord{
		"event":   {Type: events.AddError, Account: "acme", To: "_all", Updated: at},
		"sent":    {Type: events.AddCall, Account: "acme", To: "42", State: StateSent, Attempts: 1, Updated: at},
		"skipped": {Type: events.AddError, Account: "a-b_c", To: "7", State: StateSkipped, Attempts: 3, Reason: "channel_disabled", Updated: at},
		"error": {Type: events.AddError, Account: "acme", To: "42", State: StateRetrying, Attempts: 2,
			Error: `smtp: 451 "busy" <try> & \later ü`, Updated: at.Truncate(time.Second)},
		"zero time": {Type: events.AddError, Account: "acme", To: "42", State: StateFailed},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			if got := rec.appendJSON(nil); string(got) != string(want) {
				t.Errorf("appendJSON\n got %s\nwant %s", got, want)
			}
		})
	}
}

// putWait is put for a test: it returns once done has run. When the test ends it
// checks that done ran exactly once: by then nothing is queued or out, so no answer
// is left that could call it again.
func putWait(t *testing.T, q *statusWrites, key string, rec statusRecord) error {
	t.Helper()
	var calls atomic.Int32
	result := make(chan error, 2)
	q.put(key, rec, func(err error) {
		calls.Add(1)
		result <- err
	})
	t.Cleanup(func() {
		q.mu.Lock()
		idle := q.out == nil && len(q.queue) == 0
		q.mu.Unlock()
		if n := calls.Load(); n != 1 || !idle {
			t.Errorf("done ran %d times for %s (writes idle: %v)", n, key, idle)
		}
	})
	return <-result
}

// Many writers at once (most of them queued while a batch is out): each is told its
// own record is stored only once it is, every record is there, and nothing is left
// waiting.
func TestStatusWritesStoreEveryRecordOfConcurrentWriters(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: StatusBucket})
	if err != nil {
		t.Fatal(err)
	}
	q := newStatusWrites(nc, StatusBucket)
	const writers = 300
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			rec := statusRecord{Type: events.AddError, Account: "acme", To: "42", State: StateSent, Attempts: i + 1, Updated: time.Now().UTC()}
			key := statusKey("ev-"+strconv.Itoa(i), "center", "42")
			if err := putWait(t, q, key, rec); err != nil {
				t.Errorf("put %d: %v", i, err)
				return
			}
			// Stored before done ran.
			e, err := kv.Get(t.Context(), key)
			if err != nil {
				t.Errorf("get %d: %v", i, err)
				return
			}
			var got statusRecord
			if err := json.Unmarshal(e.Value(), &got); err != nil || got.Attempts != i+1 {
				t.Errorf("record %d: %s (%v)", i, e.Value(), err)
			}
		})
	}
	wg.Wait()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) > 0 || q.out != nil {
		t.Errorf("after the writers: %d queued, batch out %v", len(q.queue), q.out != nil)
	}
}

// Without a bucket to take them, records fail at once (the server says no one
// listens) instead of waiting out the timeout.
func TestStatusWritesFailWithoutBucket(t *testing.T) {
	srv := natstest.Start(t)
	q := newStatusWrites(srv.Conn(t), "NO_SUCH_BUCKET")
	start := time.Now()
	err := putWait(t, q, "key", statusRecord{Type: events.AddError, Account: "acme", To: "42", State: StateSent})
	if err == nil {
		t.Fatal("put without a bucket succeeded")
	}
	if took := time.Since(start); took >= statusWriteTimeout {
		t.Errorf("put failed after %s, want at once: %v", took, err)
	}
}

// A record the server never answers fails once it outstays statusWriteTimeout, the
// record queued behind it goes out then, and a late answer changes nothing.
func TestStatusWritesFailUnansweredRecords(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	// A bucket that never answers its first record and answers the others.
	var seen atomic.Int32
	bucket, err := nc.Subscribe("$KV.SILENT.>", func(m *nats.Msg) {
		if seen.Add(1) > 1 {
			_ = m.Respond([]byte(`{"stream":"KV_SILENT","seq":2}`))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bucket.Unsubscribe() }()
	q := newStatusWrites(nc, "SILENT")
	rec := statusRecord{Type: events.AddError, Account: "acme", To: "42", State: StateSent}
	start := time.Now()
	first, second := make(chan error, 1), make(chan error, 1)
	q.put("first", rec, func(err error) { first <- err })
	q.put("second", rec, func(err error) { second <- err })
	select {
	case err := <-second:
		t.Fatalf("the second record was answered (%v) while the first was out", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := <-first; err == nil {
		t.Fatal("an unanswered record succeeded")
	}
	if took := time.Since(start); took < statusWriteTimeout {
		t.Errorf("failed after %s, before the timeout %s", took, statusWriteTimeout)
	}
	if err := <-second; err != nil {
		t.Errorf("the record after the unanswered one: %v", err)
	}
	// The late answer finds nothing to answer.
	if err := nc.Publish(q.inbox+"1", []byte(`{"stream":"KV_SILENT","seq":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) > 0 || q.out != nil || q.batches != 2 {
		t.Errorf("after the timeout: %d queued, batch out %v, %d batches", len(q.queue), q.out != nil, q.batches)
	}
}

// A refusal by the stream reaches the writer as the record's error.
func TestStatusWritesReportRefusals(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Conn(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// A bucket whose values may be no larger than 16 bytes refuses every record.
	if _, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "TINY", MaxValueSize: 16}); err != nil {
		t.Fatal(err)
	}
	q := newStatusWrites(nc, "TINY")
	err = putWait(t, q, "key", statusRecord{Type: events.AddError, Account: "acme", To: "42", State: StateSent})
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("a refused record: %v, want the server's API error", err)
	}
}

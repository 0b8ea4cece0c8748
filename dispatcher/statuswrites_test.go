package dispatcher

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

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

// Writers that come in while a flush is out are written by the next one; each
// returns once its own record is stored, and every record is there.
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
			if err := q.put(key, rec); err != nil {
				t.Errorf("put %d: %v", i, err)
				return
			}
			// Stored before put returned.
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
	if q.flushing || len(q.queue) > 0 {
		t.Errorf("after the writers: flushing %v, %d queued", q.flushing, len(q.queue))
	}
}

// Without a bucket to take them, records fail at once (the server says no one
// listens) instead of holding the writer.
func TestStatusWritesFailWithoutBucket(t *testing.T) {
	srv := natstest.Start(t)
	q := newStatusWrites(srv.Conn(t), "NO_SUCH_BUCKET")
	start := time.Now()
	err := q.put("key", statusRecord{Type: events.AddError, Account: "acme", To: "42", State: StateSent})
	if err == nil {
		t.Fatal("put without a bucket succeeded")
	}
	if took := time.Since(start); took >= statusWriteTimeout {
		t.Errorf("put failed after %s, want at once: %v", took, err)
	}
}

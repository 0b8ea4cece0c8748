package dispatcher

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
)

// StatusBucket is the KV bucket of delivery status: one record per durable event,
// channel and recipient, under <event>.<channel>.<user> (the event id in unpadded
// base64url, since ids may hold characters KV keys refuse), and one record of the
// event itself under <event>.event, written when the HTTP API accepts it.
//
// A record in state sent is also the delivery's idempotency record: it is written
// after the channel accepted the delivery and before the event is acknowledged, and a
// redelivered event skips every recipient whose record is final. A crash between a
// provider's accept and the record is the one window in which a delivery is repeated.
const StatusBucket = "NOTIFY_STATUS"

// Delivery states of GET /api/v1/events/{id}.
const (
	StateQueued   = "queued"   // the channel has not handled the event yet
	StateSent     = "sent"     // delivered
	StateRetrying = "retrying" // failed for now, another attempt is scheduled
	StateFailed   = "failed"   // given up: dead-lettered, or a pop-up that could not be sent
	StateSkipped  = "skipped"  // nothing to deliver (see Reason)
)

// ErrUnknownEvent is returned for an event with no status: never accepted, not yet
// seen by any channel, or older than the status TTL.
var ErrUnknownEvent = errors.New("unknown event")

// DeliveryStatus is where one channel's delivery of an event to one recipient stands.
type DeliveryStatus struct {
	Channel   string    `json:"channel"`
	User      string    `json:"user"`
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
	UpdatedAt time.Time `json:"updated_at"`
}

// EventStatus is every known delivery of one durable event.
type EventStatus struct {
	ID         string           `json:"id"`
	Type       events.Type      `json:"type"`
	Account    string           `json:"account"`
	Deliveries []DeliveryStatus `json:"deliveries"`
}

// statusRecord is a stored value: a delivery's state, or (State empty) the event's own
// record. Every record names the event, so one record is enough to answer.
type statusRecord struct {
	Type     events.Type `json:"type"`
	Account  string      `json:"account"`
	To       string      `json:"to"` // the event's addressee: a user or _all
	State    string      `json:"state,omitempty"`
	Attempts int         `json:"attempts,omitempty"`
	Reason   string      `json:"reason,omitempty"`
	Error    string      `json:"error,omitempty"`
	Updated  time.Time   `json:"updated_at"`
}

// eventRecordToken is the last key token of an event's own record; channel records
// have one token more, so the two cannot collide.
const eventRecordToken = "event"

// statusWriteTimeout bounds one status write. It runs on its own context: a send that
// finished while the dispatcher shuts down still gets its record.
const statusWriteTimeout = 5 * time.Second

func statusPrefix(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id))
}

func statusKey(id, channel, user string) string {
	return statusPrefix(id) + "." + channel + "." + user
}

// statusConfig is the bucket; records expire after StatusTTL.
func (c *Config) statusConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      StatusBucket,
		Description: "Delivery status and idempotency records of durable notification events",
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		TTL:         c.StatusTTL,
	}
}

// state is the delivery state a router result stands for.
func (r result) state() string {
	switch r.outcome {
	case OutcomeSent:
		return StateSent
	case OutcomeSkipped:
		return StateSkipped
	case OutcomeRetry:
		return StateRetrying
	default:
		return StateFailed
	}
}

// final reports whether a stored state ends the delivery: a redelivered event does not
// try that recipient again. A replay from the dead-letter stream retries failed ones.
func final(state string, replay bool) bool {
	if replay {
		return state == StateSent
	}
	return state == StateSent || state == StateFailed || state == StateSkipped
}

// writeStatus records where one delivery stands and calls done once the record is
// stored, or failed to be. A failed write is logged and not retried: the delivery
// itself is done; only its status and, for a sent delivery, its protection against a
// redelivery are missing. done runs as statusWrites.put says: it must not block.
func (d *Dispatcher) writeStatus(channel string, ev *events.Event, user string, attempt int, r result, done func()) {
	rec := statusRecord{
		Type: ev.Type, Account: ev.Account, To: ev.User,
		State: r.state(), Attempts: attempt, Reason: r.reason, Updated: time.Now().UTC(),
	}
	if r.err != nil {
		rec.Error = headerSafe(r.err.Error())
	}
	stored := func(err error) {
		if err != nil {
			d.log.Warn("write delivery status", "event_id", ev.ID, "channel", channel, "error", err)
		}
		done()
	}
	if d.statusKV.Load() == nil {
		stored(errors.New("status bucket not provisioned"))
		return
	}
	d.statusWrites.put(statusKey(ev.ID, channel, user), rec, stored)
}

func (d *Dispatcher) putStatus(key string, rec statusRecord) error {
	kv := d.statusKV.Load()
	if kv == nil {
		return errors.New("status bucket not provisioned")
	}
	value, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusWriteTimeout)
	defer cancel()
	_, err = (*kv).Put(ctx, key, value)
	return err
}

// Accepted records that ev was accepted, so its status shows every channel as queued
// before any has handled it. The HTTP API calls it after the event's PubAck.
func (d *Dispatcher) Accepted(ev *events.Event) error {
	if !ev.Type.Durable() {
		return nil
	}
	return d.putStatus(statusPrefix(ev.ID)+"."+eventRecordToken, statusRecord{
		Type: ev.Type, Account: ev.Account, To: ev.User, Updated: ev.Accepted.UTC(),
	})
}

// finished returns which of users already have a final delivery of ev through
// channel, from the status records: one get for one user, one watch of the event's
// records for an _all expansion.
func (d *Dispatcher) finished(ctx context.Context, channel string, ev *events.Event, users []string, replay bool) (map[string]bool, error) {
	kv := d.statusKV.Load()
	if kv == nil {
		return nil, errors.New("status bucket not provisioned")
	}
	done := map[string]bool{}
	if len(users) == 1 {
		e, err := (*kv).Get(ctx, statusKey(ev.ID, channel, users[0]))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return done, nil
		}
		if err != nil {
			return nil, err
		}
		var rec statusRecord
		if json.Unmarshal(e.Value(), &rec) == nil && final(rec.State, replay) {
			done[users[0]] = true
		}
		return done, nil
	}
	prefix := statusPrefix(ev.ID) + "." + channel + "."
	err := watchRecords(ctx, *kv, prefix+">", func(key string, rec statusRecord) {
		if final(rec.State, replay) {
			done[strings.TrimPrefix(key, prefix)] = true
		}
	})
	return done, err
}

// watchRecords calls fn for every current record matching the key pattern.
func watchRecords(ctx context.Context, kv jetstream.KeyValue, pattern string, fn func(key string, rec statusRecord)) error {
	w, err := kv.Watch(ctx, pattern, jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("status watch closed")
			}
			if e == nil {
				return nil // the current values are done
			}
			var rec statusRecord
			if json.Unmarshal(e.Value(), &rec) == nil {
				fn(e.Key(), rec)
			}
		}
	}
}

// EventStatus answers GET /api/v1/events/{id}: every delivery recorded for the event,
// and a queued line for each channel that has not handled it yet. ErrUnknownEvent
// when nothing is recorded.
func (d *Dispatcher) EventStatus(ctx context.Context, id string) (*EventStatus, error) {
	kv := d.statusKV.Load()
	if kv == nil {
		return nil, errors.New("status bucket not provisioned")
	}
	prefix := statusPrefix(id) + "."
	out := &EventStatus{ID: id, Deliveries: []DeliveryStatus{}}
	var to string
	var accepted time.Time
	seen := map[string]bool{}
	found := false
	err := watchRecords(ctx, *kv, prefix+">", func(key string, rec statusRecord) {
		found = true
		out.Type, out.Account, to = rec.Type, rec.Account, rec.To
		channel, user, ok := strings.Cut(strings.TrimPrefix(key, prefix), ".")
		if !ok { // the event's own record
			accepted = rec.Updated
			return
		}
		seen[channel] = true
		out.Deliveries = append(out.Deliveries, DeliveryStatus{
			Channel: channel, User: user, State: rec.State, Attempts: rec.Attempts,
			Reason: rec.Reason, Error: rec.Error, UpdatedAt: rec.Updated,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", id, err)
	}
	if !found {
		return nil, ErrUnknownEvent
	}
	if accepted.IsZero() { // published over NATS: queued since the first record
		for _, dl := range out.Deliveries {
			if accepted.IsZero() || dl.UpdatedAt.Before(accepted) {
				accepted = dl.UpdatedAt
			}
		}
	}
	for _, channel := range Routes[out.Type] {
		if !seen[channel] {
			out.Deliveries = append(out.Deliveries, DeliveryStatus{
				Channel: channel, User: to, State: StateQueued, UpdatedAt: accepted,
			})
		}
	}
	order := func(channel string) int { return slices.Index(Routes[out.Type], channel) }
	slices.SortFunc(out.Deliveries, func(a, b DeliveryStatus) int {
		return cmp.Or(cmp.Compare(order(a.Channel), order(b.Channel)), strings.Compare(a.User, b.User))
	})
	return out, nil
}

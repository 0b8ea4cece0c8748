package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
)

// AdvisoryStreamName keeps the max-delivery advisories of the channel consumers. The
// server publishes one when a consumer has delivered an event MaxDeliver times without
// an answer: the router never ran to the end on it (it crashed, or hung past the ack
// wait, every time). The router dead-letters on its own last attempt, so these are
// the deliveries it could not account for. The stream holds them while no dispatcher
// runs; one dispatcher dead-letters each.
const AdvisoryStreamName = "NOTIFY_ADVISORIES"

// maxDeliveriesSubject is the server's advisory subject for the NOTIFY consumers.
const maxDeliveriesSubject = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamName + ".*"

// advisoryConsumer is the durable consumer the dispatchers share on AdvisoryStreamName.
const advisoryConsumer = "dead-letters"

// errDeliveryLimit is the Notify-Error of a dead letter made from an advisory.
var errDeliveryLimit = errors.New("delivery limit reached without an answer: the dispatcher stopped or hung on every attempt")

// maxDeliveriesAdvisory is the server's io.nats.jetstream.advisory.v1.max_deliver.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries int    `json:"deliveries"`
}

func (c *Config) advisoryConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        AdvisoryStreamName,
		Description: "Max-delivery advisories of the NOTIFY consumers, until a dispatcher dead-letters them",
		Subjects:    []string{maxDeliveriesSubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxAge:      c.MaxAge, // the event itself is gone after that
		Discard:     jetstream.DiscardOld,
	}
}

func advisoryConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       advisoryConsumer,
		Description:   "Dead-letters the events named by max-delivery advisories",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 16,
	}
}

// deadLetterAdvisories turns each stored max-delivery advisory into dead letters until
// ctx ends.
func (d *Dispatcher) deadLetterAdvisories(ctx context.Context) error {
	log := d.log.With("consumer", advisoryConsumer)
	return d.keepConsuming(ctx, log, func() error {
		cons, err := d.js.Consumer(ctx, AdvisoryStreamName, advisoryConsumer)
		if err != nil {
			return err
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(16), jetstream.WithMessagesErrOnMissingHeartbeat(false))
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, it.Stop)
		defer stop()
		defer it.Stop()
		for {
			m, err := it.Next()
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			d.handleAdvisory(ctx, m)
		}
	})
}

// handleAdvisory dead-letters the event of one advisory for every recipient whose
// delivery through the consumer's channel is not final, marks them failed, and
// acknowledges the advisory. Live deliveries (pop-ups) are marked failed only.
func (d *Dispatcher) handleAdvisory(ctx context.Context, m jetstream.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data(), &adv); err != nil || adv.Stream != StreamName {
		d.log.Error("unreadable max-delivery advisory", "subject", m.Subject(), "error", err)
		_ = m.Term()
		return
	}
	ch, ok := d.channels[adv.Consumer]
	if !ok {
		_ = m.Term() // a consumer that is not ours
		return
	}
	attempt := 1
	if meta, err := m.Metadata(); err == nil {
		attempt = int(meta.NumDelivered)
	}
	if err := d.deadLetterUndelivered(ctx, adv, ch.Name()); err != nil {
		d.log.Error("dead-letter after max deliveries, will retry", "channel", ch.Name(),
			"stream_seq", adv.StreamSeq, "error", err)
		d.nak(m, advisoryConsumer, "", d.backoff(attempt, err))
		return
	}
	d.ack(m, advisoryConsumer, "")
}

func (d *Dispatcher) deadLetterUndelivered(ctx context.Context, adv maxDeliveriesAdvisory, channel string) error {
	s, err := d.js.Stream(ctx, StreamName)
	if err != nil {
		return err
	}
	raw, err := s.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		d.log.Error("event past its delivery limit is gone from the stream", "channel", channel, "stream_seq", adv.StreamSeq)
		return nil
	}
	if err != nil {
		return err
	}
	if replay := d.replayChannel(raw.Header); replay != "" && replay != channel {
		return nil
	}
	ev, _, err := decode(raw.Subject, raw.Header, raw.Data, raw.Time, func() string {
		return events.StreamID(raw.Time, raw.Sequence)
	})
	if err != nil {
		return nil // invalid: its reporting consumer dead-letters it as such
	}
	ch := d.channels[channel]
	users, err := d.recipients(ctx, ch, ev)
	if err == nil && len(users) > 0 {
		users, err = d.unfinished(ctx, channel, ev, users, false)
	}
	if err != nil {
		return err
	}
	for _, user := range users {
		r := result{outcome: OutcomeFailed, err: errDeliveryLimit}
		if !isLive(ch) {
			r = d.deadLetterDelivery(ctx, channel, raw.Data, ev, user, adv.Deliveries, ReasonMaxAttempts, r)
			if r.outcome == OutcomeRetry {
				return fmt.Errorf("event %s for %s: the dead letter was not written", ev.ID, user)
			}
		}
		d.finish(channel, ev, user, adv.Deliveries, r)
	}
	return nil
}

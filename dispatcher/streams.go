package dispatcher

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kommo-notify/notify/events"
)

// Stream names, part of the contract.
const (
	StreamName    = "NOTIFY"
	DLQStreamName = "NOTIFY_DLQ"
	DLQPrefix     = "dlq"
)

// streamConfig is the NOTIFY stream: every durable event, kept until each channel's
// consumer has acknowledged it (interest retention), deduplicated by Nats-Msg-Id.
func (c *Config) streamConfig() jetstream.StreamConfig {
	var subjects []string
	for _, t := range events.Types() {
		if t.Durable() {
			subjects = append(subjects, events.SubjectFilter(t))
		}
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Durable notification events (add_error, add_call) awaiting their channels",
		Subjects:    subjects,
		Retention:   jetstream.InterestPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.DedupWindow,
		MaxAge:      c.MaxAge,
		Discard:     jetstream.DiscardOld,
	}
}

// dlqConfig is NOTIFY_DLQ: dead letters, kept for inspection and replay. No dedup
// window: two dead letters of one event are two messages.
func (c *Config) dlqConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DLQStreamName,
		Description: "Dead-lettered notification deliveries",
		Subjects:    []string{DLQPrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxAge:      c.DLQMaxAge,
		Discard:     jetstream.DiscardOld,
	}
}

// consumerConfig is the durable consumer of one channel. Each channel has its own, so
// a slow or failing medium never holds back another. concurrency is the channel's
// sends in flight; JetStream hands out a few times that, so every dispatcher sharing
// the consumer has work waiting.
func (c *Config) consumerConfig(channel string, concurrency int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:     channel,
		Description: "Durable notification events for the " + channel + " channel",
		// No subject filter: the stream holds nothing else, and a filtered consumer
		// finds messages through the server's subject index, which leaves out subjects
		// with bytes it does not index (DEL): such an event would be stored and never
		// delivered, not even to be dead-lettered as invalid.
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		// One more than the router's own limit: the router dead-letters on its last
		// attempt, the server's limit only catches crashes that repeat on one message.
		MaxDeliver:    c.MaxAttempts + 1,
		MaxAckPending: concurrency * 4,
		Replicas:      c.Replicas,
	}
}

// provision creates or updates the streams, the channel consumers and the status
// bucket. It is safe to run from any number of dispatchers at once and on every start.
func (d *Dispatcher) provision(ctx context.Context) error {
	cfg := &d.cfg
	for _, sc := range []jetstream.StreamConfig{cfg.streamConfig(), cfg.dlqConfig(), cfg.advisoryConfig()} {
		if _, err := d.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("provision stream %s: %w", sc.Name, err)
		}
	}
	for _, ch := range durableChannels() {
		cc := cfg.consumerConfig(ch, d.concurrency(d.channels[ch]))
		if err := d.keepFilters(ctx, &cc); err != nil {
			return err
		}
		if _, err := d.js.CreateOrUpdateConsumer(ctx, StreamName, cc); err != nil {
			return fmt.Errorf("provision consumer %s: %w", ch, err)
		}
	}
	if _, err := d.js.CreateOrUpdateConsumer(ctx, AdvisoryStreamName, advisoryConsumerConfig()); err != nil {
		return fmt.Errorf("provision consumer %s: %w", advisoryConsumer, err)
	}
	kv, err := d.js.CreateOrUpdateKeyValue(ctx, cfg.statusConfig())
	if err != nil {
		return fmt.Errorf("provision bucket %s: %w", StatusBucket, err)
	}
	d.statusKV.Store(&kv)
	return nil
}

// keepFilters keeps the subject filters of a channel consumer made by an earlier
// version. Dropping them would be right (see consumerConfig), but nats-server 2.15
// then stops seeing the consumer's interest in new messages of an interest-retention
// stream until it restarts, and drops them on arrival: a lost backlog is far worse
// than the rare subject a filter misses. Deleting and recreating the consumer is an
// operator's decision, taken while nothing is pending (README, Operations).
func (d *Dispatcher) keepFilters(ctx context.Context, cc *jetstream.ConsumerConfig) error {
	cons, err := d.js.Consumer(ctx, StreamName, cc.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("provision consumer %s: %w", cc.Durable, err)
	}
	old := cons.CachedInfo().Config
	switch {
	case len(old.FilterSubjects) > 0:
		cc.FilterSubjects = old.FilterSubjects
	case old.FilterSubject != "":
		cc.FilterSubject = old.FilterSubject
	default:
		return nil
	}
	d.filteredOnce.Do(func() {
		d.log.Warn("channel consumers were made with subject filters and keep them; "+
			"recreate them while nothing is pending to deliver events whose subject the server does not index",
			"consumer", cc.Durable)
	})
	return nil
}

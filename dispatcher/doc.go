// Package dispatcher is the router: it takes notification events from NATS, validates
// each once with the events package, and hands them to channels by the routing table.
//
// Pop-up types (show_*) arrive on core NATS through a queue group shared by every
// dispatcher, so each is routed once; a publisher with a reply subject gets the id and
// warnings, or the error. Durable types (add_*) are captured by the JetStream stream
// NOTIFY (interest retention, Nats-Msg-Id dedup); every durable channel has its own
// consumer on it, so a slow or failing medium never delays another.
//
// Every delivery of a durable event leaves a status record (KV NOTIFY_STATUS: event,
// channel, recipient), which GET /api/v1/events/{id} reads. A sent record doubles as
// the idempotency record: a redelivered event, or a replay from the dead-letter stream
// (header Notify-Replay, one channel), skips every recipient already done.
//
// Invariants:
//   - an event is acknowledged only after every recipient's delivery is final (sent,
//     skipped or dead-lettered) and recorded; anything else is redelivered with backoff;
//   - a recipient with a final record is not sent to again; the one repeat left is a
//     crash between the provider's accept and the record;
//   - nothing is dropped without a trace: invalid events, permanent failures and
//     exhausted retries go to NOTIFY_DLQ with the original payload and the reason, and
//     so do events the server gave up on (max-delivery advisories, kept in the stream
//     NOTIFY_ADVISORIES while no dispatcher runs);
//   - consumers that share a message agree on its id, also when it had no Nats-Msg-Id
//     (the id is derived from the stream position);
//   - shutdown stops taking work, lets in-flight sends finish within a deadline and
//     hands the rest back to JetStream.
//
// It owns the streams' and consumers' configuration (provisioned idempotently on every
// start) and the router's metrics. It may import channels and events; it never
// imports a concrete channel package (cmd wires those).
package dispatcher

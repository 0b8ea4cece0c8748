// Package dispatcher is the router: it takes notification events from NATS, validates
// each once with the events package, and hands them to channels by the routing table.
//
// Pop-up types (show_*) arrive on core NATS through a queue group shared by every
// dispatcher, so each is routed once; a publisher with a reply subject gets the id and
// warnings, or the error. Durable types (add_*) are captured by the JetStream stream
// NOTIFY (interest retention, Nats-Msg-Id dedup); every durable channel has its own
// consumer on it, so a slow or failing medium never delays another.
//
// Invariants:
//   - an event is acknowledged only after every recipient's delivery is final (sent,
//     skipped or dead-lettered); anything else is redelivered with backoff;
//   - nothing is dropped without a trace: invalid events, permanent failures and
//     exhausted retries go to NOTIFY_DLQ with the original payload and the reason;
//   - consumers that share a message agree on its id, also when it had no Nats-Msg-Id
//     (the id is derived from the stream position);
//   - shutdown stops taking work, lets in-flight sends finish within a deadline and
//     hands the rest back to JetStream.
//
// It owns the streams' and consumers' configuration (provisioned idempotently on every
// start) and the router's metrics. It may import channels and events; it never
// imports a concrete channel package (cmd wires those).
package dispatcher

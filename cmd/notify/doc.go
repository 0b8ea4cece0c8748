// Command notify is the command-line producer and operator tool of the notification
// dispatcher.
//
//	notify publish <type> --account A --user U [--id ID] [--timeout 5s] '<json>'
//	notify token --account A --user U [--ttl 1h]
//	notify profile get|put|delete --account A --user U ['<json>']
//	notify device add|remove --account A --user U --token T [--platform android]
//	notify dlq list [selectors] [--limit N] [--json]
//	notify dlq replay [selectors] [--all] [--keep] [--dry-run]
//	notify bench popup|broadcast|durable|idle|center|email|push|overload|all [--repeat 5] [--json]
//
// publish validates the payload locally with events.Validate (so a bad payload names
// its field without touching NATS) and publishes it with the Go producer client, then
// prints one JSON line: the event id, the dropped unknown fields and, for durable
// types, the stream and sequence of JetStream's acknowledgement.
//
// Each subcommand is one file with its run method and one line in the command table
// (main.go). Flags may appear before or after positional arguments. Usage goes to
// stdout on --help (exit 0); a wrong command line is reported on stderr with exit 2; a
// failure at run time is one line on stderr with exit 1.
//
// NATS is reached at NATS_URL (default nats://127.0.0.1:4222) with optional NATS_CREDS;
// the flags --nats-url and --creds beat the environment. Passwords in URLs are
// redacted from messages.
//
// token mints a user token with NOTIFY_JWT_SECRET or the secret the dispatcher keeps
// under its data dir. profile and device manage the recipient directory directly in
// its KV bucket, with the directory's own validation, so they work while no dispatcher
// runs (once one has created the bucket).
//
// dlq reads the dead-letter stream NOTIFY_DLQ by sequence (no consumer, nothing left
// behind) and replays a dead letter by republishing its payload into NOTIFY with its
// event id and the Notify-Replay header; the dead letter is deleted only after the
// stream's acknowledgement.
//
// bench is the benchmark harness of package bench: it runs the dispatcher binary as a
// separate process, drives a scenario of PERFORMANCE.md and its raw baseline, and
// prints the table (BENCHMARKS.md says how to read it).
//
// Apart from bench, the command talks to NATS only. It imports events, its
// sub-packages, the directory library and the dispatcher package (for the stream names
// and dead-letter headers); only bench reaches into channel packages (the relay's frame
// encoder, the center's names, the FCM emulator), to drive and check the daemon the
// way its clients do; only cmd/dispatcher wires channels.
package main

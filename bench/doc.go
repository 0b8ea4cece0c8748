// Package bench is the system-level benchmark harness behind `notify bench`: it runs
// the real dispatcher binary as a separate process, drives one scenario of
// PERFORMANCE.md against it, runs the scenario's raw baseline against the same NATS
// server in the same run, and reports throughput, latency percentiles (p50, p99,
// p99.9), CPU-seconds per million events and memory of every process involved, the
// ratio to the baseline, and each bar of PERFORMANCE.md with whether it was met.
//
// Scenarios (one file each): popup, broadcast, durable, idle, center, email, push and
// overload. Shared pieces: latency (the recorder and percentiles), proc (CPU and RSS of
// a process from /proc/<pid>/stat and /proc/<pid>/status), report (the table, the
// JSON and the medians of repeated runs), daemon (finding, building, starting and
// stopping the dispatcher), child (the harness's own helper processes: the bare relay
// of the baselines, a NATS server, a router with no-op channels, websocket client
// fleets), ws and wsclient (websocket clients), frame (a client's read of a frame's
// kind and id, as a browser's JSON.parse would), smtpsink and fcm (the email sink and
// the FCM emulator the daemon sends to).
//
// Invariants:
//   - every figure that the bars compare is measured in the same run as its baseline,
//     with the same payload bytes, against the same NATS server;
//   - latency runs from the moment the harness publishes an event to the moment the
//     receiving websocket client has decoded the frame, the SMTP sink has accepted the
//     message or the FCM emulator has received the push; the publish time travels in
//     the event id (<phase>-<seq>-<unix nanoseconds>), so any process on the machine
//     can compute it;
//   - the harness needs no network beyond loopback and leaves nothing behind: its
//     daemons and helper processes run on temporary directories and free ports, and
//     are stopped by process id.
//
// bench sits beside cmd as a driver: it may import dispatcher, channels/* and
// events/*, and nothing but cmd/notify imports it. It must not import test kits
// (packages that import testing), since it is linked into the notify command.
package bench

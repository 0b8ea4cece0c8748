package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kommo-notify/notify/bench"
)

const benchUsage = `Usage: notify bench <scenario>|all [flags]

Runs a benchmark scenario of PERFORMANCE.md against the real dispatcher, started as
a separate process on a temporary data directory and free loopback ports, and the
scenario's raw baseline against the same NATS server in the same run. Prints one
table per scenario (throughput, latency p50/p99/p99.9, CPU-seconds per million
events and memory of every process, the ratio to the baseline, each bar and whether
it was met), the medians of --repeat runs; --json prints the same as JSON.

Scenarios:
  popup      show_message to --users connected websocket users (1,000) at the highest
             sustained rate, then at --rate (5,000/s) for --duration (10s);
             baseline: a bare NATS subscriber writing the same bytes to as many sockets
  broadcast  --events (20) show_message to _all with --users (10,000) connected;
             baseline: the bare subscriber writing to every connection
  durable    --events (10,000) add_error to --users (1,000) users, with no-op channels,
             with the real center, and with center, email and push; baseline: raw
             JetStream publish + consume + ack of the same messages
  idle       --conns (10,000) idle authenticated websockets: dispatcher memory per
             connection; then --hold (100,000) connections held by one dispatcher
  center     list 50 newest, unread count and mark read for a user holding --items
             (100,000) items, --events (2,000) of each; baseline: raw direct get of 50
  email      --events (5,000) add_error by email over --conns (4) SMTP connections to
             an in-process sink; baseline: a raw go-mail loop on as many connections
  push       --events (5,000) add_error by push to an FCM emulator answering after
             100 ms; baseline: a raw HTTP POST loop with --inflight (64) in flight
  overload   pop-ups at twice --rate for --duration (60s) with slow clients: memory,
             drops of slow clients and the backlog after the load

The dispatcher binary is --dispatcher, else a "dispatcher" next to this program, else
one in PATH, else built from the module around the working directory. Nothing but
loopback is used.

Examples:
  notify bench popup
  notify bench idle --repeat 3 --hold 0
  notify bench all --json > bench.json
`

func (a *app) bench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "--role" {
		// A helper process of a running benchmark (bench.RunChild), not for people.
		if code := bench.RunChild(ctx, args[1:], a.stdin, a.stdout); code != 0 {
			return fmt.Errorf("bench helper %s failed", strings.Join(args[1:min(2, len(args))], ""))
		}
		return nil
	}
	fs := newFlagSet("bench")
	var o bench.Options
	asJSON := fs.Bool("json", false, "print the results as JSON")
	fs.IntVar(&o.Repeat, "repeat", 5, "runs of each scenario; the medians are reported")
	fs.IntVar(&o.Users, "users", 0, "connected or addressed users (scenario default)")
	fs.IntVar(&o.Rate, "rate", 0, "events per second of a fixed-rate phase (popup 5000; overload: twice the measured sustainable rate)")
	fs.DurationVar(&o.Duration, "duration", 0, "length of a timed phase (popup 10s, overload 60s)")
	fs.IntVar(&o.Conns, "conns", 0, "connections: idle websockets (10000), SMTP connections (4)")
	fs.IntVar(&o.Events, "events", 0, "events, broadcasts or operations per phase (scenario default)")
	fs.IntVar(&o.Hold, "hold", 100_000, "idle: connections one dispatcher must hold; 0 skips")
	fs.IntVar(&o.Items, "items", 0, "center: items of the user (100000)")
	fs.IntVar(&o.InFlight, "inflight", 0, "popup: events in flight at the highest rate (2000); push: requests in flight of the baseline (64)")
	fs.StringVar(&o.Dispatcher, "dispatcher", "", "the dispatcher binary to run")
	fs.StringVar(&o.Profile, "profile", "", "directory for `perf record` profiles of the dispatcher during target phases")
	positional, err := a.parseFlags(fs, benchUsage, args)
	if err != nil {
		return err
	}
	if len(positional) != 1 {
		return usagef("name one scenario: %s or all", strings.Join(bench.Scenarios, ", "))
	}
	scenarios := positional
	if positional[0] == "all" {
		scenarios = bench.Scenarios
	} else if !slices.Contains(bench.Scenarios, positional[0]) {
		return usagef("unknown scenario %q: %s or all", positional[0], strings.Join(bench.Scenarios, ", "))
	}
	if o.Repeat < 1 {
		return usagef("--repeat must be at least 1")
	}
	o.Progress = a.stderr
	o.Command = "notify bench " + strings.Join(args, " ")
	var results []*bench.Result
	for _, s := range scenarios {
		o.Scenario = s
		res, err := bench.Run(ctx, o)
		if err != nil {
			return err
		}
		results = append(results, res)
		if !*asJSON {
			if err := bench.WriteText(a.stdout, res); err != nil {
				return err
			}
		}
	}
	if *asJSON {
		return bench.WriteJSON(a.stdout, results)
	}
	return nil
}

package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kommo-notify/notify/events/token"
)

// Options configure a run of one scenario. Zero sizes take the scenario's defaults
// (see Scenarios and each scenario's file).
type Options struct {
	Scenario string
	Repeat   int           // runs whose medians are reported: 5
	Users    int           // connected or addressed users
	Rate     int           // events per second of a fixed-rate phase
	Duration time.Duration // length of a timed phase
	Conns    int           // connections: idle websockets, SMTP connections
	Events   int           // events (broadcasts, operations) per phase
	Hold     int           // idle: connections one dispatcher must hold (0: skip that part)
	Items    int           // center: items of the user: 100,000
	InFlight int           // push: requests in flight of the raw baseline: the router's 64

	// Dispatcher is the daemon's binary; empty: next to the running executable, in
	// PATH, or built from the module around the working directory.
	Dispatcher string
	// Profile is a directory: each target phase runs with the dispatcher under
	// `perf record -g`, one file per phase. Empty: no profile.
	Profile string
	// Self is the command line that runs a helper role: Self + "--role" + role +
	// flags. Default: this executable with "bench".
	Self    []string
	SelfEnv []string // added to the helpers' environment

	Progress io.Writer // one line per step; nil: discarded
	Command  string    // the command line, for the report
}

// Scenarios are the scenarios Run knows, in the order `notify bench all` runs them.
var Scenarios = []string{"popup", "broadcast", "durable", "idle", "center", "email", "push", "overload"}

var scenarioFuncs = map[string]func(ctx context.Context, h *harness) (*Result, error){
	"popup":     runPopup,
	"broadcast": runBroadcast,
	"durable":   runDurable,
	"idle":      runIdle,
	"center":    runCenter,
	"email":     runEmail,
	"push":      runPush,
	"overload":  runOverload,
}

// harness is the state of one run: the dispatcher binary, the helpers' command line,
// the token secret and a temporary directory removed at the end.
type harness struct {
	o       Options
	bin     string
	binHow  string
	tmp     string
	self    []string
	selfEnv []string
	secret  string
	signer  *token.Signer
	seq     int // for unique directory names
	// loopbacks counts the source addresses client processes have taken so far
	// (see localList).
	loopbacks int
}

// Run runs scenario o.Scenario with its baseline o.Repeat times and returns the
// medians and the bars.
func Run(ctx context.Context, o Options) (*Result, error) {
	fn, ok := scenarioFuncs[o.Scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q (one of %s)", o.Scenario, strings.Join(Scenarios, ", "))
	}
	if o.Repeat <= 0 {
		o.Repeat = 5
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	tmp, err := os.MkdirTemp("", "notify-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	h := &harness{o: o, tmp: tmp, self: o.Self, selfEnv: o.SelfEnv}
	if len(h.self) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		h.self = []string{exe, "bench"}
	}
	if h.bin, h.binHow, err = findDispatcher(ctx, o.Dispatcher, tmp, o.Progress); err != nil {
		return nil, err
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	h.secret = hex.EncodeToString(secret)
	if h.signer, err = token.NewSigner([]byte(h.secret)); err != nil {
		return nil, err
	}
	h.selfEnv = append(h.selfEnv, secretEnv+"="+h.secret)
	if o.Profile != "" {
		if err := os.MkdirAll(o.Profile, 0o755); err != nil {
			return nil, fmt.Errorf("--profile: %w", err)
		}
	}
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = strings.Join(f[:3], " ")
		}
	}
	res, err := fn(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Scenario, err)
	}
	res.Scenario = o.Scenario
	res.Command = o.Command
	res.Dispatcher = h.bin + " (" + h.binHow + ")"
	res.Machine = machine()
	res.Machine.Load = load
	res.Repeat = o.Repeat
	return res, nil
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.o.Progress, "bench %s: %s\n", h.o.Scenario, fmt.Sprintf(format, args...))
}

// dir returns a fresh directory under the run's temporary directory.
func (h *harness) dir(name string) string {
	h.seq++
	p := filepath.Join(h.tmp, fmt.Sprintf("%s-%d", name, h.seq))
	_ = os.MkdirAll(p, 0o755)
	return p
}

// startDaemon starts a dispatcher with a fresh data directory.
func (h *harness) startDaemon(ctx context.Context, natsURL string, env map[string]string) (*daemon, error) {
	d, err := startDaemon(ctx, daemonConfig{binary: h.bin, dataDir: h.dir("data"), secret: h.secret, natsURL: natsURL, env: env})
	if err != nil {
		return nil, err
	}
	h.logf("dispatcher pid %d, HTTP %s, NATS %s", d.pid, d.http, d.nats)
	return d, nil
}

// connect opens a NATS connection of the harness.
func (h *harness) connect(url, name string) (*nats.Conn, error) {
	return nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1))
}

// repeat runs one repetition of a scenario o.Repeat times.
func (h *harness) repeat(ctx context.Context, run func(ctx context.Context, i int) ([]Row, error)) ([][]Row, error) {
	var runs [][]Row
	for i := range h.o.Repeat {
		h.logf("run %d of %d", i+1, h.o.Repeat)
		rows, err := run(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		runs = append(runs, rows)
	}
	return runs, nil
}

// token mints a user token of the bench account.
func (h *harness) token(user string) string {
	t, err := h.signer.Mint(benchAccount, user, 24*time.Hour)
	if err != nil {
		panic(err) // the signer and the names are the harness's own
	}
	return t
}

// self is the harness process, for the rows' process figures.
func self() proc { return proc{name: "harness", pid: os.Getpid()} }

// profile runs `perf record -g` on each of procs (the daemon, and NATS where it runs
// apart) while a target phase runs, when --profile is set, one file per process, and
// returns the function that ends them.
func (h *harness) profile(phase string, procs ...proc) func() {
	if h.o.Profile == "" {
		return func() {}
	}
	name := strings.NewReplacer(" ", "_", ",", "", "(", "", ")", "", "+", "and", "/", "-").Replace(phase)
	var cmds []*exec.Cmd
	for _, p := range procs {
		out := filepath.Join(h.o.Profile, fmt.Sprintf("%s-%s-%s-%d.perf.data", h.o.Scenario, name, p.name, time.Now().UnixNano()))
		cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", out, "-p", strconv.Itoa(p.pid))
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			h.logf("no profile: perf: %v", err)
			continue
		}
		h.logf("perf record of %s (pid %d) into %s", p.name, p.pid, out)
		cmds = append(cmds, cmd)
	}
	return func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Signal(os.Interrupt)
		}
		for _, cmd := range cmds {
			_ = cmd.Wait()
		}
	}
}

// machine describes this machine.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), NoFile: fileLimit(), Model: "unknown", Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range bytes.Lines(b) {
			if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
				m.Model = string(bytes.TrimSpace(v))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		m.MemoryGiB = int((uint64(si.Totalram)*uint64(si.Unit) + (1<<30)/2) >> 30)
	}
	return m
}

// settle waits d, unless ctx ends first. It paces a measurement (memory after a
// load, before the next phase); nothing waits on it for correctness.
func settle(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitFor polls cond every step until it holds, ctx ends, or it has not made
// progress (progress returns a changing number) for stall.
func waitFor(ctx context.Context, step, stall time.Duration, cond func() bool, progress func() int64) error {
	last, lastChange := progress(), time.Now()
	tick := time.NewTicker(step)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if p := progress(); p != last {
			last, lastChange = p, time.Now()
		} else if time.Since(lastChange) > stall {
			return fmt.Errorf("no progress for %s (at %d)", stall, p)
		}
	}
	return nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

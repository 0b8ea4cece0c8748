package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// modulePath is the module the dispatcher's source lives in, for building it.
const modulePath = "github.com/kommo-notify/notify"

// findDispatcher returns the dispatcher binary to run and how it was found: the path
// given, else a dispatcher next to the running executable, else one in PATH, else one
// built from the module around the working directory into dir.
func findDispatcher(ctx context.Context, given, dir string, progress io.Writer) (path, how string, err error) {
	if given != "" {
		if err := executable(given); err != nil {
			return "", "", fmt.Errorf("--dispatcher: %w", err)
		}
		abs, _ := filepath.Abs(given)
		return abs, "given with --dispatcher", nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "dispatcher")
		if executable(p) == nil {
			return p, "next to " + filepath.Base(exe), nil
		}
	}
	if p, err := exec.LookPath("dispatcher"); err == nil {
		abs, _ := filepath.Abs(p)
		return abs, "found in PATH", nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", errors.New("no dispatcher binary: pass --dispatcher PATH, put one next to notify or in PATH, or run inside the module to build it")
	}
	out := filepath.Join(dir, "dispatcher")
	fmt.Fprintf(progress, "bench: building the dispatcher from %s\n", root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/dispatcher")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build ./cmd/dispatcher: %v: %s", err, bytes.TrimSpace(msg))
	}
	return out, "built from " + root, nil
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// moduleRoot is the directory of the go.mod of this module that holds the working
// directory, if any.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if strings.TrimSpace(first) == "module "+modulePath {
				return dir, nil
			}
			return "", fmt.Errorf("%s is another module", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the module")
		}
		dir = parent
	}
}

// freeAddr reserves a free port on 127.0.0.1 and returns host:port. The port is free
// again when this returns; the process it is meant for binds it a moment later.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// daemonConfig is how the harness starts one dispatcher.
type daemonConfig struct {
	binary  string
	dataDir string
	secret  string // NOTIFY_JWT_SECRET
	natsURL string // NATS_URL; empty: the daemon embeds its NATS server
	env     map[string]string
}

// The keys the harness gives every daemon it starts.
const (
	benchAPIKey   = "bench-api-key-0123456789"
	benchAdminKey = "bench-admin-key-0123456789"
)

// daemon is a running dispatcher process.
type daemon struct {
	cmd    *exec.Cmd
	pid    int
	http   string // http://127.0.0.1:port
	nats   string // nats://127.0.0.1:port, the embedded server's or the one it joined
	stderr *tail
	exited chan struct{}
	err    error // the wait's result, once exited is closed
}

// startDaemon starts the dispatcher with cfg and waits until /readyz answers 200.
func startDaemon(ctx context.Context, cfg daemonConfig) (*daemon, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"NOTIFY_DATA_DIR":   cfg.dataDir,
		"NOTIFY_HTTP_ADDR":  httpAddr,
		"NOTIFY_JWT_SECRET": cfg.secret,
		"NOTIFY_API_KEYS":   benchAPIKey,
		"NOTIFY_ADMIN_KEYS": benchAdminKey,
		"NOTIFY_BASE_URL":   "https://crm.example.com",
	}
	natsURL := cfg.natsURL
	if natsURL == "" {
		natsAddr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		env["NOTIFY_NATS_LISTEN"] = natsAddr
		natsURL = "nats://" + natsAddr
	} else {
		env["NATS_URL"] = natsURL
	}
	for k, v := range cfg.env {
		env[k] = v
	}
	d := &daemon{http: "http://" + httpAddr, nats: natsURL, stderr: newTail(64 << 10), exited: make(chan struct{})}
	d.stderr.watch(logSlowConsumer)
	d.stderr.watch(logInterrupted)

	d.cmd = exec.Command(cfg.binary)
	d.cmd.Env = childEnv(env)
	d.cmd.Stdout = io.Discard
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.binary, err)
	}
	d.pid = d.cmd.Process.Pid
	go func() { d.err = d.cmd.Wait(); close(d.exited) }()
	if err := d.waitReady(ctx, time.Minute); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// childEnv is the harness's environment without the settings of a dispatcher or NATS
// it may have (they would leak into the daemon under test), plus env.
func childEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "NOTIFY_"), strings.HasPrefix(k, "NATS_"),
			strings.HasPrefix(k, "SMTP_"), strings.HasPrefix(k, "FCM_"):
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func (d *daemon) waitReady(ctx context.Context, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(d.http + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-d.exited:
			return fmt.Errorf("the dispatcher exited before it was ready (%v): %s", d.err, d.stderr.last(2000))
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the dispatcher was not ready after %s: %s", limit, d.stderr.last(2000))
		}
	}
}

// stop ends the dispatcher with SIGTERM (its clean shutdown) and waits; after 30
// seconds it is killed.
func (d *daemon) stop() {
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// alive reports an error if the dispatcher has exited.
func (d *daemon) alive() error {
	select {
	case <-d.exited:
		return fmt.Errorf("the dispatcher exited (%v): %s", d.err, d.stderr.last(2000))
	default:
		return nil
	}
}

// metric reads one sample of the daemon's /metrics: the sum of the series of name
// whose labels contain every label given (such as `reason="slow"`).
func (d *daemon) metric(name string, labels ...string) (float64, error) {
	resp, err := http.Get(d.http + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return sumMetric(resp.Body, name, labels...)
}

// sumMetric adds up the samples of name in a Prometheus text exposition whose label
// set contains all of labels.
func sumMetric(r io.Reader, name string, labels ...string) (float64, error) {
	var sum float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		series, value, ok := strings.Cut(rest, " ")
		if !ok {
			continue
		}
		if series, ok = strings.CutPrefix(series, "{"); ok {
			series = strings.TrimSuffix(series, "}")
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(","+series+",", ","+l+",") {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// tail keeps the last bytes written to it: a child's stderr, for error messages.
type tail struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	watched map[string]int // strings counted in everything written, kept or not
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for w := range t.watched {
		t.watched[w] += strings.Count(string(p), w)
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// watch starts counting the occurrences of s.
func (t *tail) watch(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.watched == nil {
		t.watched = map[string]int{}
	}
	t.watched[s] = 0
}

// count is how many times a watched string was written.
func (t *tail) count(s string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.watched[s]
}

// Strings the harness counts in its processes' logs.
const (
	logSlowConsumer = "slow consumer"
	logInterrupted  = "consumer interrupted"
)

// last returns up to n of the last bytes written, on one line.
func (t *tail) last(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", " | ")
}

package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// The harness's helper processes are the notify command itself, run again with a
// hidden role (`notify bench --role bare-relay ...`), so that a baseline's CPU and
// memory are a process of their own, as the dispatcher's are. The protocol is lines
// of JSON on stdout: the first says the role is ready (and where it listens), an
// optional last one carries its results. The child stops when its stdin closes.

// child is a running helper process.
type child struct {
	role   string
	cmd    *exec.Cmd
	pid    int
	stdin  io.WriteCloser
	lines  chan []byte // stdout, line by line; closed at EOF
	stderr *tail
	exited chan struct{}
	err    error
}

// startChild runs role with args and waits for its ready line, decoded into ready.
func (h *harness) startChild(ctx context.Context, ready any, role string, args ...string) (*child, error) {
	argv := append(append([]string{}, h.self[1:]...), append([]string{"--role", role}, args...)...)
	c := &child{role: role, stderr: newTail(32 << 10), lines: make(chan []byte, 16), exited: make(chan struct{})}
	c.stderr.watch(logInterrupted)
	c.cmd = exec.Command(h.self[0], argv...)
	c.cmd.Env = append(os.Environ(), h.selfEnv...)
	c.cmd.Stderr = c.stderr
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	c.stdin = stdin
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	c.pid = c.cmd.Process.Pid
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			c.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(c.lines)
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	if err := c.next(ctx, ready, 2*time.Minute); err != nil {
		c.kill()
		return nil, fmt.Errorf("%s: %w", role, err)
	}
	return c, nil
}

// next decodes the child's next line into v.
func (c *child) next(ctx context.Context, v any, limit time.Duration) error {
	select {
	case line, ok := <-c.lines:
		if !ok {
			<-c.exited
			return fmt.Errorf("exited (%v): %s", c.err, c.stderr.last(2000))
		}
		var msg struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(line, &msg) == nil && msg.Error != "" {
			return errors.New(msg.Error)
		}
		if v == nil {
			return nil
		}
		return json.Unmarshal(line, v)
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(limit):
		return fmt.Errorf("no answer after %s: %s", limit, c.stderr.last(2000))
	}
}

// stop closes the child's stdin, which ends it, and decodes its last line into result
// when result is not nil.
func (c *child) stop(result any) error {
	_ = c.stdin.Close()
	var err error
	if result != nil {
		err = c.next(context.Background(), result, time.Minute)
	}
	select {
	case <-c.exited:
	case <-time.After(time.Minute):
		c.kill()
		return fmt.Errorf("%s did not stop", c.role)
	}
	return err
}

// kill ends the child at once.
func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// roles are the helper processes' entry points.
var roles = map[string]func(ctx context.Context, fs *flag.FlagSet, args []string, out *json.Encoder) error{
	"bare-relay": runBareRelay,
	"nats":       runNATS,
	"router":     runRouter,
	"clients":    runClients,
}

// RunChild is a helper process: `notify bench --role <role> [flags]`. It is not a
// command for people; the harness starts it and speaks to it over stdin and stdout.
func RunChild(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) int {
	out := json.NewEncoder(stdout)
	if len(args) == 0 {
		_ = out.Encode(map[string]string{"error": "no role"})
		return 2
	}
	role, ok := roles[args[0]]
	if !ok {
		_ = out.Encode(map[string]string{"error": "unknown role " + args[0]})
		return 2
	}
	// The parent closes stdin to stop the child; a parent that dies closes it too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, stdin); cancel() }()
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := role(ctx, fs, args[1:], out); err != nil {
		_ = out.Encode(map[string]string{"error": args[0] + ": " + err.Error()})
		return 1
	}
	return 0
}

// raiseFileLimit sets the soft limit of open files to the hard limit (and tries
// want first, which only a process with CAP_SYS_RESOURCE may), so this process and
// the processes it starts can hold many connections. It returns the limits in force.
func raiseFileLimit(want uint64) (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	if want > lim.Max {
		up := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &up) == nil {
			return want, want, nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	return lim.Cur, lim.Max, nil
}

// fileLimit describes the limits of open files, for the machine line.
func fileLimit() string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%d/%d", lim.Cur, lim.Max)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

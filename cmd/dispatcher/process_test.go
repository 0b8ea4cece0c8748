//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// This file runs the dispatcher as a real child process, for the tests that a
// daemon in the test process cannot stand in for: a SIGKILL ends the process and
// nothing else, with no deferred function, no drain and no last flush.

// buildDispatcher compiles this package's daemon into a temporary directory and
// returns the binary's path. It is built without -race, whatever the test run uses:
// the child is the system under test, not the code under the race detector. The
// test is skipped when no go tool can be found.
func buildDispatcher(t *testing.T) string {
	t.Helper()
	// go test puts its own GOROOT/bin first on the test's PATH; the toolchain that
	// built the test is the fallback when the test binary is run by hand.
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, statErr := os.Stat(goTool); statErr != nil {
			t.Skipf("no go tool to build the dispatcher binary, not on PATH (%v) nor in GOROOT %q", err, runtime.GOROOT())
		}
	}
	bin := filepath.Join(t.TempDir(), "dispatcher")
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the dispatcher: %v\n%s", err, out)
	}
	t.Logf("built the dispatcher binary in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// childProcess is one dispatcher process. Its stdout and stderr go to files in the
// test's temporary directory, printed when the test fails.
type childProcess struct {
	name   string
	cmd    *exec.Cmd
	http   string        // the HTTP base URL the daemon reported
	exited chan struct{} // closed once the process is reaped
	err    error         // Wait's answer, set before exited is closed
}

// startChild runs bin with exactly env (nothing is inherited from the test's own
// environment, so a developer's NOTIFY_* variables cannot leak in) and waits until
// the daemon logs that it routes. The daemon must log JSON (NOTIFY_LOG_FORMAT=json):
// its "dispatcher started" line names the HTTP address, which is how a listener on
// port 0 is found. The process is killed and reaped when the test ends, whatever
// happened to it before.
func startChild(t *testing.T, bin, name string, env map[string]string) *childProcess {
	t.Helper()
	dir := t.TempDir()
	stdout, err := os.Create(filepath.Join(dir, name+".stdout"))
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(dir, name+".stderr"))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 1)
	c := &childProcess{name: name, exited: make(chan struct{})}
	c.cmd = exec.Command(bin)
	for k, v := range env {
		c.cmd.Env = append(c.cmd.Env, k+"="+v)
	}
	c.cmd.Stdout = stdout
	c.cmd.Stderr = io.MultiWriter(stderr, &startedLine{started: started})
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		c.kill(t)
		if t.Failed() {
			for _, f := range []*os.File{stdout, stderr} {
				t.Logf("%s:\n%s", filepath.Base(f.Name()), fileTail(f.Name(), 64<<10))
			}
		}
		stdout.Close()
		stderr.Close()
	})

	select {
	case c.http = <-started:
		return c
	case <-c.exited:
		t.Fatalf("%s exited before it started: %v\n%s", name, c.err, fileTail(stderr.Name(), 16<<10))
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start within 60s:\n%s", name, fileTail(stderr.Name(), 16<<10))
	}
	return nil
}

// kill sends SIGKILL unless the process is gone already, and reaps it.
func (c *childProcess) kill(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
		return
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGKILL %s: %v", c.name, err)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("%s still running 30s after SIGKILL", c.name)
	}
}

// killedBySIGKILL reports whether the reaped process died of SIGKILL.
func (c *childProcess) killedBySIGKILL() bool {
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// startedLine reads the daemon's JSON log as it is written and hands over the HTTP
// address of its "dispatcher started" line, once. exec.Cmd copies stderr to it from
// one goroutine, so it needs no lock.
type startedLine struct {
	started chan<- string
	partial []byte
	done    bool
}

func (w *startedLine) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		line, rest, ok := bytes.Cut(w.partial, []byte("\n"))
		if !ok {
			return len(p), nil
		}
		w.partial = rest
		var rec struct{ Msg, HTTP string }
		if json.Unmarshal(line, &rec) == nil && rec.Msg == "dispatcher started" && rec.HTTP != "" {
			w.started <- rec.HTTP
			w.done, w.partial = true, nil
			return len(p), nil
		}
	}
}

// fileTail is the last limit bytes of a file, from a line start when it is cut.
func fileTail(path string, limit int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	cut := fi.Size() > limit
	if cut {
		if _, err := f.Seek(-limit, io.SeekEnd); err != nil {
			return err.Error()
		}
	}
	r := bufio.NewReader(f)
	if cut {
		_, _ = r.ReadString('\n') // drop the partial first line
	}
	b, _ := io.ReadAll(r)
	if cut {
		return fmt.Sprintf("[... %d bytes before ...]\n%s", fi.Size()-limit, b)
	}
	return string(b)
}

package bench

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPopupEndToEnd runs a tiny popup scenario as `notify bench popup` runs it: the
// real dispatcher built from this module as a separate process, the bare relay as a
// helper process (this test binary, see TestMain), websocket clients, the table.
func TestPopupEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the dispatcher:", err)
	}
	bin := filepath.Join(t.TempDir(), "dispatcher")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../cmd/dispatcher")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	var progress bytes.Buffer
	res, err := Run(t.Context(), Options{
		Scenario:   "popup",
		Repeat:     1,
		Users:      10,
		Rate:       500,
		Duration:   500 * time.Millisecond,
		InFlight:   50,
		Dispatcher: bin,
		Self:       []string{os.Args[0]},
		SelfEnv:    []string{helperEnv + "=1"},
		Progress:   &progress,
		Command:    "notify bench popup (test)",
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	if len(res.Rows) != 4 || len(res.Bars) != 2 || len(res.Runs) != 1 {
		t.Fatalf("%d rows, %d bars, %d runs", len(res.Rows), len(res.Bars), len(res.Runs))
	}
	for _, r := range res.Rows {
		if r.Events == 0 || r.Throughput <= 0 || r.Latency.N != int(r.Events) || r.Latency.P99 <= 0 || r.Figures["lost"] != 0 {
			t.Errorf("row %+v", r)
		}
		names := map[string]bool{}
		for _, p := range r.Procs {
			names[p.Name] = true
		}
		if !names["dispatcher"] || !names["bare-relay"] || !names["harness"] {
			t.Errorf("row %q measures %v", r.Name, names)
		}
	}
	if r := row(res.Rows, "target max rate"); r == nil || r.Ratio <= 0 || r.Versus != "baseline max rate" {
		t.Errorf("no ratio to the baseline: %+v", r)
	}
	var text bytes.Buffer
	if err := WriteText(&text, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "target 500/s") || !strings.Contains(text.String(), "bars (PERFORMANCE.md)") {
		t.Errorf("table:\n%s", text.String())
	}
}

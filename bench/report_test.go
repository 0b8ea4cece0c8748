package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestMedianRows(t *testing.T) {
	run := func(tput, p99, cpu float64, lost float64) []Row {
		return []Row{
			{Name: "target", Events: int64(tput), Throughput: tput, Latency: Latency{N: 10, P99: p99},
				Procs: []ProcFigure{{Name: "dispatcher", CPUPerMillion: cpu, RSSMiB: 100}}, Figures: map[string]float64{"lost": lost}},
			{Name: "baseline", Baseline: true, Throughput: 2 * tput},
		}
	}
	rows := medianRows([][]Row{run(100, 5, 30, 0), run(300, 1, 10, 2), run(200, 9, 20, 1)})
	if len(rows) != 2 || rows[0].Name != "target" || rows[1].Name != "baseline" || !rows[1].Baseline {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	if r.Throughput != 200 || r.Events != 200 || r.Latency.P99 != 5 || r.Procs[0].CPUPerMillion != 20 || r.Figures["lost"] != 1 {
		t.Errorf("medians %+v", r)
	}
	if got := medianRows([][]Row{run(100, 1, 1, 0), run(300, 3, 3, 0)}); got[0].Throughput != 200 {
		t.Errorf("median of two = %v, want their mean", got[0].Throughput)
	}
	if ratio := compare(rows, "target", "baseline"); ratio != 0.5 || rows[0].Versus != "baseline" {
		t.Errorf("ratio %v against %q", ratio, rows[0].Versus)
	}
	if compare(rows, "target", "missing") != 0 {
		t.Error("a ratio against a missing row")
	}
}

func testResult() *Result {
	rows := []Row{
		{Name: "target max rate", Events: 123456, Throughput: 20582.4, Latency: Latency{N: 5, P50: 0.661, P99: 8.99, P999: 24},
			Procs:   []ProcFigure{{Name: "dispatcher", CPUPerMillion: 33.9, RSSMiB: 75.1}, {Name: "other", CPUPerMillion: 1.5}},
			Figures: map[string]float64{"lost": 0}},
		{Name: "baseline max rate", Baseline: true, Throughput: 40551, Procs: []ProcFigure{{Name: "bare-relay", CPUPerMillion: 11.1, RSSMiB: 25}}},
	}
	compare(rows, "target max rate", "baseline max rate")
	return &Result{
		Scenario: "popup", Title: "show_message to 1,000 connected websocket users", Command: "notify bench popup",
		Dispatcher: "/tmp/dispatcher (given)", Machine: Machine{CPUs: 2, Model: "AMD EPYC", MemoryGiB: 24, Kernel: "6.18", Go: "go1.26.8", NoFile: "20000/20000", Load: "0.1 0.2 0.3"},
		Params: map[string]string{"users": "1000", "rate": "5000"}, Repeat: 5, Rows: rows,
		Bars: []Bar{
			atLeast("popup: at least 70% of the bare-subscriber baseline's throughput", "target max rate", ">= 70% of baseline", "51%", rows[0].Ratio, 0.7),
			{Text: "idle: 100,000 held", Row: "target max rate", Short: "held", Measured: "19,000", Why: "the file limit"},
		},
		Notes: []string{"a note"},
	}
}

func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, testResult()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"## popup: show_message to 1,000 connected websocket users",
		"command:    notify bench popup",
		"machine:    2 cores (AMD EPYC), 24 GiB RAM, Linux 6.18, go1.26.8, RLIMIT_NOFILE 20000/20000, load average before 0.1 0.2 0.3",
		"params:     rate=5000 users=1000",
		"runs:       medians of 5",
		"123,456", "20,582", "0.661", "8.99", "24.0",
		"dispatcher 33.9 / other 1.50", // CPU of every process, the rest of the machine included
		"dispatcher 75.1",              // RSS, without "other"
		"51%",                          // the ratio
		">= 70% of baseline; held", "no; n/m",
		"  - popup: at least 70% of the bare-subscriber baseline's throughput: 51%: NOT MET",
		"  - idle: 100,000 held: 19,000: NOT MEASURED\n    why: the file limit",
		"target max rate: lost=0",
		"notes:\n  - a note",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "other 0") {
		t.Errorf("the RSS column shows the rest of the machine:\n%s", out)
	}
	// The table's columns line up: every line of it is as wide as its header.
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, "row  events") {
			for _, next := range lines[i+1 : i+3] {
				if len(strings.TrimRight(next, " ")) > len(l) {
					t.Errorf("row wider than the header:\n%s\n%s", l, next)
				}
			}
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, []*Result{testResult()}); err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	r := back[0]
	rows := r["rows"].([]any)
	first := rows[0].(map[string]any)
	if r["scenario"] != "popup" || first["throughput_per_s"] != 20582.4 || first["ratio"].(float64) == 0 {
		t.Errorf("JSON %s", b.String())
	}
	lat := first["latency"].(map[string]any)
	if lat["p99_ms"] != 8.99 || lat["p99_9_ms"] != 24.0 {
		t.Errorf("latency %v", lat)
	}
	bars := r["bars"].([]any)
	if bars[0].(map[string]any)["met"] != false || bars[1].(map[string]any)["why"] != "the file limit" {
		t.Errorf("bars %v", bars)
	}
}

func TestNumberFormats(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.0123: "0.012", 1.5: "1.50", 12.34: "12.3", 123.4: "123", 1234.5: "1,235", 1234567: "1,234,567", -2500: "-2,500"} {
		if got := short(v); got != want {
			t.Errorf("short(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestSlope(t *testing.T) {
	if got := slope([]float64{0, 1, 2, 3}, []float64{10, 12, 14, 16}); got != 2 {
		t.Errorf("slope = %v, want 2", got)
	}
	if got := slope([]float64{1}, []float64{5}); got != 0 {
		t.Errorf("slope of one point = %v", got)
	}
}

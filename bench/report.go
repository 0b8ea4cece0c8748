package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Row is one line of a scenario's table: the system under test or its baseline in one
// phase (max rate, a fixed rate, an operation).
type Row struct {
	Name string `json:"name"`
	// Baseline marks the raw baselines; the others are the dispatcher.
	Baseline   bool         `json:"baseline"`
	Events     int64        `json:"events"` // events (deliveries, operations) measured
	Seconds    float64      `json:"seconds"`
	Throughput float64      `json:"throughput_per_s"`
	Latency    Latency      `json:"latency"`
	Procs      []ProcFigure `json:"processes"`
	// Ratio is Throughput over the throughput of the row named Versus, when the
	// scenario compares the two (0: not compared).
	Ratio  float64 `json:"ratio,omitempty"`
	Versus string  `json:"versus,omitempty"`
	// Figures are a scenario's own measurements (connections held, KiB per connection,
	// frames lost), by name.
	Figures map[string]float64 `json:"figures,omitempty"`
}

// ProcFigure is one process's share of a row.
type ProcFigure struct {
	Name          string  `json:"name"`
	CPUSeconds    float64 `json:"cpu_s"`
	CPUPerMillion float64 `json:"cpu_s_per_million"` // CPU-seconds per million events of the row
	RSSMiB        float64 `json:"rss_mib"`           // at the end of the phase
	HWMMiB        float64 `json:"hwm_mib"`           // peak since the process started
}

// Bar is one line of "The bar" in PERFORMANCE.md, as measured.
type Bar struct {
	Text     string  `json:"bar"`          // the bar, as PERFORMANCE.md words it
	Row      string  `json:"row"`          // the row that measures it
	Short    string  `json:"short"`        // the bar in a few words, for the table
	Measured string  `json:"measured"`     // what was measured, with units
	Value    float64 `json:"value"`        // the measured number
	Limit    float64 `json:"limit"`        // the bar's number, in the same unit
	Met      bool    `json:"met"`          // false also when it could not be measured
	Why      string  `json:"why,omitzero"` // why it could not be measured here
}

// Machine is where a result was measured.
type Machine struct {
	CPUs      int    `json:"cpus"`
	Model     string `json:"cpu_model"`
	MemoryGiB int    `json:"memory_gib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	NoFile    string `json:"nofile_limit"` // soft/hard RLIMIT_NOFILE of the harness
	Load      string `json:"load_before"`  // /proc/loadavg when the scenario started
}

// Result is one scenario's report: the medians of its repeated runs, the bars, and
// what limits the figures.
type Result struct {
	Scenario   string            `json:"scenario"`
	Title      string            `json:"title"`
	Command    string            `json:"command"`
	Dispatcher string            `json:"dispatcher"` // the binary that ran
	Machine    Machine           `json:"machine"`
	Params     map[string]string `json:"params"`
	Repeat     int               `json:"repeat"`
	Rows       []Row             `json:"rows"` // medians over the runs
	Bars       []Bar             `json:"bars"`
	Notes      []string          `json:"notes"`
	Runs       [][]Row           `json:"runs"` // every run, as measured
}

// medianRows reduces the runs of a scenario (each a list of rows with the same names)
// to one row per name, taking the median of every figure independently.
func medianRows(runs [][]Row) []Row {
	if len(runs) == 0 {
		return nil
	}
	var names []string
	byName := map[string][]Row{}
	for _, run := range runs {
		for _, r := range run {
			if _, ok := byName[r.Name]; !ok {
				names = append(names, r.Name)
			}
			byName[r.Name] = append(byName[r.Name], r)
		}
	}
	out := make([]Row, 0, len(names))
	for _, name := range names {
		rs := byName[name]
		m := Row{Name: name, Baseline: rs[0].Baseline, Versus: rs[0].Versus}
		pick := func(f func(Row) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			return median(v)
		}
		m.Events = int64(math.Round(pick(func(r Row) float64 { return float64(r.Events) })))
		m.Seconds = pick(func(r Row) float64 { return r.Seconds })
		m.Throughput = pick(func(r Row) float64 { return r.Throughput })
		m.Latency = Latency{
			N:    int(math.Round(pick(func(r Row) float64 { return float64(r.Latency.N) }))),
			P50:  pick(func(r Row) float64 { return r.Latency.P50 }),
			P99:  pick(func(r Row) float64 { return r.Latency.P99 }),
			P999: pick(func(r Row) float64 { return r.Latency.P999 }),
			Max:  pick(func(r Row) float64 { return r.Latency.Max }),
		}
		for i, p := range rs[0].Procs {
			at := func(r Row) ProcFigure {
				if i < len(r.Procs) && r.Procs[i].Name == p.Name {
					return r.Procs[i]
				}
				return ProcFigure{}
			}
			m.Procs = append(m.Procs, ProcFigure{
				Name:          p.Name,
				CPUSeconds:    pick(func(r Row) float64 { return at(r).CPUSeconds }),
				CPUPerMillion: pick(func(r Row) float64 { return at(r).CPUPerMillion }),
				RSSMiB:        pick(func(r Row) float64 { return at(r).RSSMiB }),
				HWMMiB:        pick(func(r Row) float64 { return at(r).HWMMiB }),
			})
		}
		for k := range rs[0].Figures {
			if m.Figures == nil {
				m.Figures = map[string]float64{}
			}
			m.Figures[k] = pick(func(r Row) float64 { return r.Figures[k] })
		}
		out = append(out, m)
	}
	return out
}

// median of v (the mean of the middle two for an even count); it sorts v.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// row finds a row by name.
func row(rows []Row, name string) *Row {
	for i := range rows {
		if rows[i].Name == name {
			return &rows[i]
		}
	}
	return nil
}

// compare sets the ratio of row name to row versus, and returns it (0 when either is
// missing or the baseline measured nothing).
func compare(rows []Row, name, versus string) float64 {
	r, b := row(rows, name), row(rows, versus)
	if r == nil || b == nil || b.Throughput == 0 {
		return 0
	}
	r.Ratio, r.Versus = r.Throughput/b.Throughput, versus
	return r.Ratio
}

// atLeast and atMost build a measured bar.
func atLeast(text, rowName, short, measured string, value, limit float64) Bar {
	return Bar{Text: text, Row: rowName, Short: short, Measured: measured, Value: value, Limit: limit, Met: value >= limit}
}

func atMost(text, rowName, short, measured string, value, limit float64) Bar {
	return Bar{Text: text, Row: rowName, Short: short, Measured: measured, Value: value, Limit: limit, Met: value <= limit}
}

// WriteJSON writes results as one indented JSON document: an array of results.
func WriteJSON(w io.Writer, results []*Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

// WriteText writes r as the table BENCHMARKS.md shows, then its bars and notes.
func WriteText(w io.Writer, r *Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s: %s\n\n", r.Scenario, r.Title)
	fmt.Fprintf(&b, "command:    %s\n", r.Command)
	fmt.Fprintf(&b, "dispatcher: %s\n", r.Dispatcher)
	m := r.Machine
	fmt.Fprintf(&b, "machine:    %d cores (%s), %d GiB RAM, Linux %s, %s, RLIMIT_NOFILE %s, load average before %s\n", m.CPUs, m.Model, m.MemoryGiB, m.Kernel, m.Go, m.NoFile, m.Load)
	if len(r.Params) > 0 {
		keys := make([]string, 0, len(r.Params))
		for k := range r.Params {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + r.Params[k]
		}
		fmt.Fprintf(&b, "params:     %s\n", strings.Join(parts, " "))
	}
	fmt.Fprintf(&b, "runs:       medians of %d\n\n", r.Repeat)

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "row\tevents\tper s\tp50 ms\tp99 ms\tp99.9 ms\tCPU s per M events\tRSS MiB\tratio\tbar\tmet\t\n")
	for _, row := range r.Rows {
		var bars, met []string
		for _, bar := range r.Bars {
			if bar.Row == row.Name {
				bars = append(bars, bar.Short)
				met = append(met, yesNo(bar))
			}
		}
		ratio := ""
		if row.Ratio > 0 {
			ratio = fmt.Sprintf("%.0f%%", row.Ratio*100)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			row.Name, thousands(float64(row.Events)), thousands(row.Throughput),
			latencyCell(row.Latency, row.Latency.P50), latencyCell(row.Latency, row.Latency.P99), latencyCell(row.Latency, row.Latency.P999),
			procCells(row.Procs, func(p ProcFigure) string { return short(p.CPUPerMillion) }),
			procCells(slices.DeleteFunc(slices.Clone(row.Procs), func(p ProcFigure) bool { return p.Name == "other" }), func(p ProcFigure) string { return short(p.RSSMiB) }),
			ratio, strings.Join(bars, "; "), strings.Join(met, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if figs := figureLines(r.Rows); len(figs) > 0 {
		b.WriteString("\n")
		for _, l := range figs {
			b.WriteString(l + "\n")
		}
	}
	if len(r.Bars) > 0 {
		b.WriteString("\nbars (PERFORMANCE.md):\n")
		for _, bar := range r.Bars {
			fmt.Fprintf(&b, "  - %s: %s: %s\n", bar.Text, bar.Measured, strings.ToUpper(yesNoLong(bar)))
			if bar.Why != "" {
				fmt.Fprintf(&b, "    why: %s\n", bar.Why)
			}
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func yesNo(b Bar) string {
	switch {
	case b.Why != "" && !b.Met:
		return "n/m"
	case b.Met:
		return "yes"
	}
	return "no"
}

func yesNoLong(b Bar) string {
	switch {
	case b.Why != "" && !b.Met:
		return "not measured"
	case b.Met:
		return "met"
	}
	return "not met"
}

// figureLines lists the rows' own figures, one line per row.
func figureLines(rows []Row) []string {
	var out []string
	for _, r := range rows {
		if len(r.Figures) == 0 {
			continue
		}
		keys := make([]string, 0, len(r.Figures))
		for k := range r.Figures {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + short(r.Figures[k])
		}
		out = append(out, fmt.Sprintf("%s: %s", r.Name, strings.Join(parts, " ")))
	}
	return out
}

func latencyCell(l Latency, v float64) string {
	if l.N == 0 {
		return "-"
	}
	return short(v)
}

// procCells is one figure of every process: "dispatcher 12.3 / harness 4.5".
func procCells(ps []ProcFigure, f func(ProcFigure) string) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Name + " " + f(p)
	}
	return strings.Join(parts, " / ")
}

// short formats v with three significant digits or as a whole number.
func short(v float64) string {
	switch a := math.Abs(v); {
	case v == 0:
		return "0"
	case a >= 1000:
		return thousands(v)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// thousands formats v rounded to a whole number with comma separators.
func thousands(v float64) string {
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

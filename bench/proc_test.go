package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...
	const rest = " S 1 2 3 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 1234 5678 90\n"
	cases := []struct {
		name, line string
		want       time.Duration
	}{
		{"plain name", "4242 (dispatcher)" + rest, 3250 * time.Millisecond},
		{"name with spaces and parentheses", "4242 (a (weird) name)" + rest, 3250 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseStat([]byte(c.line))
			if err != nil || got != c.want {
				t.Errorf("parseStat = %v, %v; want %v", got, err, c.want)
			}
		})
	}
	for _, bad := range []string{"", "4242 dispatcher S 1", "4242 (x) S 1 2 3"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tdispatcher\nVmPeak:\t 2000000 kB\nVmHWM:\t  120000 kB\nVmRSS:\t   98304 kB\nThreads:\t12\n"
	rss, hwm, err := parseStatus([]byte(status))
	if err != nil || rss != 98304<<10 || hwm != 120000<<10 {
		t.Errorf("parseStatus = %d, %d, %v", rss, hwm, err)
	}
	for name, bad := range map[string]string{
		"kernel thread":  "Name:\tkworker\nThreads:\t1\n",
		"unit":           "VmHWM:\t1 MB\nVmRSS:\t1 kB\n",
		"not a number":   "VmHWM:\tx kB\nVmRSS:\t1 kB\n",
		"only one value": "VmRSS:\t1 kB\n",
	} {
		if _, _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseMachineStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseMachineStat([]byte("cpu  100 5 50 9000 300 1 2 3 40 0\ncpu0 1 2 3 4\n"))
	if want := 161 * clockTick; err != nil || got != want {
		t.Errorf("parseMachineStat = %v, %v; want %v", got, err, want)
	}
	if _, err := parseMachineStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("accepted a file without the cpu line")
	}
}

func TestReadProcOfThisProcess(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.HWM < s.RSS || s.CPU < 0 {
		t.Errorf("sample %+v", s)
	}
	m, err := startMeter(proc{"harness", os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	figs, err := m.stop(1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if len(figs) < 1 || figs[0].Name != "harness" || figs[0].RSSMiB <= 0 || figs[0].CPUPerMillion != figs[0].CPUSeconds {
		t.Errorf("figures %+v", figs)
	}
	if _, err := ReadProc(-1); err == nil {
		t.Error("read a process that cannot exist")
	}
}

func TestSumMetric(t *testing.T) {
	const exposition = `# HELP notify_ws_dropped_total Websocket connections closed by the server, by reason.
# TYPE notify_ws_dropped_total counter
notify_ws_dropped_total{reason="ping_timeout"} 0
notify_ws_dropped_total{reason="slow"} 7
notify_ws_dropped_total{reason="write_error"} 3
notify_ws_connections 1000
notify_ws_connections_extra 5
`
	cases := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"notify_ws_dropped_total", nil, 10},
		{"notify_ws_dropped_total", []string{`reason="slow"`}, 7},
		{"notify_ws_dropped_total", []string{`reason="none"`}, 0},
		{"notify_ws_connections", nil, 1000},
	}
	for _, c := range cases {
		got, err := sumMetric(strings.NewReader(exposition), c.name, c.labels...)
		if err != nil || got != c.want {
			t.Errorf("%s %v = %v, %v; want %v", c.name, c.labels, got, err, c.want)
		}
	}
}

func TestHeaderValueAndDataID(t *testing.T) {
	msg := "From: a@example.com\r\nx-notify-event-id:  e1-2-3 \r\nSubject: s\r\n\r\nX-Notify-Event-Id: body\r\n"
	if got := headerValue([]byte(msg), "X-Notify-Event-Id"); got != "e1-2-3" {
		t.Errorf("headerValue = %q", got)
	}
	if got := headerValue([]byte("Subject: s\r\n\r\nX-Notify-Event-Id: body\r\n"), "X-Notify-Event-Id"); got != "" {
		t.Errorf("a header of the body: %q", got)
	}
	body := `{"message":{"token":"t","android":{"notification":{"channel_id":"calls"}},"data":{"type":"add_call","id":"p1-2-3","click":""}}}`
	if got := dataID([]byte(body)); got != "p1-2-3" {
		t.Errorf("dataID = %q", got)
	}
	if got := dataID([]byte(`{"message":{}}`)); got != "" {
		t.Errorf("dataID without an id = %q", got)
	}
}

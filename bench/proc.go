package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, which is 100
// on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) needs cgo to ask).
const clockTick = 10 * time.Millisecond

// ProcSample is what /proc says about a process at one moment.
type ProcSample struct {
	CPU time.Duration // user plus system time since the process started
	RSS int64         // resident memory now, bytes (VmRSS)
	HWM int64         // peak resident memory, bytes (VmHWM)
}

// ReadProc samples process pid.
func ReadProc(pid int) (ProcSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, err
	}
	cpu, err := parseStat(stat)
	if err != nil {
		return ProcSample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, err
	}
	rss, hwm, err := parseStatus(status)
	if err != nil {
		return ProcSample{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return ProcSample{CPU: cpu, RSS: rss, HWM: hwm}, nil
}

// parseStat returns utime+stime of a /proc/<pid>/stat line. The command name (field
// 2) is in parentheses and may hold spaces and parentheses itself, so the fields are
// counted from the last ')': state is field 3, utime 14, stime 15.
func parseStat(b []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, errors.New("no command name")
	}
	fields := bytes.Fields(b[end+1:])
	const utime, stime = 14 - 3, 15 - 3 // indexes in fields, which start at field 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("%d fields after the command name, want more than %d", len(fields), stime)
	}
	u, err1 := strconv.ParseUint(string(fields[utime]), 10, 64)
	s, err2 := strconv.ParseUint(string(fields[stime]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(u+s) * clockTick, nil
}

// parseStatus returns VmRSS and VmHWM of a /proc/<pid>/status, in bytes.
func parseStatus(b []byte) (rss, hwm int64, err error) {
	var haveRSS, haveHWM bool
	for line := range bytes.Lines(b) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(name) {
		case "VmRSS":
			dst, haveRSS = &rss, true
		case "VmHWM":
			dst, haveHWM = &hwm, true
		default:
			continue
		}
		f := bytes.Fields(value)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, 0, fmt.Errorf("%s: unexpected value %q", name, bytes.TrimSpace(value))
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		*dst = kb << 10
	}
	if !haveRSS || !haveHWM {
		return 0, 0, errors.New("no VmRSS or VmHWM (a kernel thread, or a process that has exited)")
	}
	return rss, hwm, nil
}

// proc is one process whose CPU and memory a row reports.
type proc struct {
	name string // dispatcher, nats, harness, bare-relay, router, clients
	pid  int
}

// machineBusy is the CPU time the whole machine has spent busy (every state of the
// first line of /proc/stat but idle and iowait).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineStat(b)
}

func parseMachineStat(b []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var busy uint64
	// user nice system idle iowait irq softirq steal (guest time is inside user)
	for i, v := range f[1:min(len(f), 9)] {
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * clockTick, nil
}

// meter measures a set of processes over one phase of a run, and the CPU the rest of
// the machine used meanwhile (this machine is shared: a busy neighbour shows there).
type meter struct {
	procs []proc
	start []ProcSample
	busy  time.Duration
	began time.Time
}

// startMeter samples procs now.
func startMeter(procs ...proc) (*meter, error) {
	m := &meter{procs: procs, began: time.Now()}
	m.busy, _ = machineBusy()
	for _, p := range procs {
		s, err := ReadProc(p.pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		m.start = append(m.start, s)
	}
	return m, nil
}

// stop samples the processes again and returns their CPU time over the phase, per
// million of events, and their memory now.
func (m *meter) stop(events int64) ([]ProcFigure, error) {
	out := make([]ProcFigure, 0, len(m.procs))
	for i, p := range m.procs {
		s, err := ReadProc(p.pid)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		cpu := (s.CPU - m.start[i].CPU).Seconds()
		f := ProcFigure{Name: p.name, CPUSeconds: cpu, RSSMiB: mib(s.RSS), HWMMiB: mib(s.HWM)}
		if events > 0 {
			f.CPUPerMillion = cpu / float64(events) * 1e6
		}
		out = append(out, f)
	}
	if busy, err := machineBusy(); err == nil && m.busy > 0 {
		other := (busy - m.busy).Seconds()
		for _, f := range out {
			other -= f.CPUSeconds
		}
		f := ProcFigure{Name: "other", CPUSeconds: max(other, 0)}
		if events > 0 {
			f.CPUPerMillion = f.CPUSeconds / float64(events) * 1e6
		}
		out = append(out, f)
	}
	return out, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

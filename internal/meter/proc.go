package meter

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tailor-ml/tailor/internal/errs"
)

// ClockTicks is USER_HZ, the unit of the CPU times in /proc: 100 on every
// Linux architecture Tailor builds for.
const ClockTicks = 100

// ProcCPU is a process's CPU time from /proc/<pid>/stat, in clock ticks:
// its own user and system time and that of its waited-for children.
type ProcCPU struct {
	UTime, STime, CUTime, CSTime uint64
}

// Seconds is the total CPU time in seconds.
func (p ProcCPU) Seconds() float64 {
	return float64(p.UTime+p.STime+p.CUTime+p.CSTime) / ClockTicks
}

// ParseProcStat parses the contents of /proc/<pid>/stat. The command name
// (field 2) may hold spaces and parentheses, so fields are counted from
// the last ')'.
func ParseProcStat(b []byte) (ProcCPU, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcCPU{}, errs.Invalid("proc stat: no ')' closing the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14.
	if len(f) < 15 {
		return ProcCPU{}, errs.Invalid("proc stat: %d fields after the command name, want at least 15", len(f))
	}
	var vals [4]uint64
	for k := range vals {
		v, err := strconv.ParseUint(f[11+k], 10, 64)
		if err != nil {
			return ProcCPU{}, errs.Invalid("proc stat: field %d %q: not a tick count", 14+k, f[11+k])
		}
		vals[k] = v
	}
	return ProcCPU{UTime: vals[0], STime: vals[1], CUTime: vals[2], CSTime: vals[3]}, nil
}

// ParseVmHWM returns the peak resident set size in bytes from the contents
// of /proc/<pid>/status (its VmHWM line, in kB).
func ParseVmHWM(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, errs.Invalid("proc status: line %d: VmHWM %q: want \"<n> kB\"", line, strings.TrimSpace(rest))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<53 {
			return 0, errs.Invalid("proc status: line %d: VmHWM %q is not a size", line, f[0])
		}
		return kb * 1024, nil
	}
	return 0, errs.NotFound("proc status: no VmHWM line")
}

// ParseStatCPU returns the machine's busy and total CPU time in ticks from
// the contents of /proc/stat (its aggregate "cpu" line): total is user +
// nice + system + idle + iowait + irq + softirq + steal, busy is total
// less idle and iowait.
func ParseStatCPU(b []byte) (busy, total uint64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 9 {
			return 0, 0, errs.Invalid("/proc/stat: cpu line has %d fields, want at least 9", len(f))
		}
		var v [8]uint64
		for k := range v {
			if v[k], err = strconv.ParseUint(f[1+k], 10, 64); err != nil {
				return 0, 0, errs.Invalid("/proc/stat: cpu field %d %q: not a tick count", k+1, f[1+k])
			}
			total += v[k]
		}
		idle := v[3] + v[4]
		if idle > total {
			return 0, 0, errs.Invalid("/proc/stat: cpu idle %d over total %d", idle, total)
		}
		return total - idle, total, nil
	}
	return 0, 0, errs.NotFound("/proc/stat: no cpu line")
}

// ReadProc reads pid's CPU time and peak RSS under procRoot.
func ReadProc(procRoot string, pid int) (ProcCPU, int64, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	b, err := os.ReadFile(filepath.Join(dir, "stat")) // #nosec G304 -- procfs path built from a pid
	if err != nil {
		return ProcCPU{}, 0, err
	}
	cpu, err := ParseProcStat(b)
	if err != nil {
		return ProcCPU{}, 0, fmt.Errorf("%s: %w", filepath.Join(dir, "stat"), err)
	}
	b, err = os.ReadFile(filepath.Join(dir, "status")) // #nosec G304 -- procfs path built from a pid
	if err != nil {
		return cpu, 0, err
	}
	rss, err := ParseVmHWM(b)
	if err != nil {
		return cpu, 0, fmt.Errorf("%s: %w", filepath.Join(dir, "status"), err)
	}
	return cpu, rss, nil
}

// ReadStatCPU reads the machine's busy and total CPU ticks under procRoot.
func ReadStatCPU(procRoot string) (busy, total uint64, err error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat")) // #nosec G304 -- procfs path
	if err != nil {
		return 0, 0, err
	}
	return ParseStatCPU(b)
}

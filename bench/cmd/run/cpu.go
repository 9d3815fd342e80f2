package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// procCPU is a process's CPU time so far (user + system) in clock ticks, from /proc/PID/stat:
// it does not depend on how busy the load generator is.
func procCPU(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatTicks(b)
}

// parseStatTicks reads utime and stime (fields 14 and 15) of a /proc/PID/stat line. The command
// name (field 2) is in parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseStatTicks(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat: no ')' in %q", stat)
	}
	f := strings.Fields(string(stat[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat: utime %q, stime %q", f[11], f[12])
	}
	return ut + st, nil
}

// rssMB is a /proc/PID/status memory line (VmRSS, VmHWM) in MB, as "%.1f"; "-" when the
// process is not running.
func rssMB(pid int, key string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "-"
	}
	kb, ok := parseStatusKB(string(b), key)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.1f", kb/1024)
}

// parseStatusKB finds "KEY:   1234 kB" in a /proc/PID/status text.
func parseStatusKB(status, key string) (float64, bool) {
	for line := range strings.Lines(status) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, false
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		return kb, err == nil
	}
	return 0, false
}

// clockTicks is the kernel's USER_HZ (getconf CLK_TCK); Go has no sysconf without cgo. Linux
// fixes it at 100 on every architecture Go supports, the fallback.
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	hz, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || hz <= 0 {
		return 100
	}
	return hz
}

// cpuTimes is the first line of /proc/stat: the machine's CPU time by state.
func cpuTimes() ([]int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return nil, fmt.Errorf("/proc/stat: first line %q", line)
	}
	t := make([]int64, len(f)-1)
	for i, s := range f[1:] {
		if t[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			return nil, fmt.Errorf("/proc/stat: %q", line)
		}
	}
	return t, nil
}

// busyPercent is how busy the machine was between two /proc/stat samples: everything but idle
// and iowait, rounded half to even as run.sh's python did.
func busyPercent(a, b []int64) int {
	var sum, idle int64
	for i := range min(len(a), len(b)) {
		d := b[i] - a[i]
		sum += d
		if i == 3 || i == 4 {
			idle += d
		}
	}
	if sum <= 0 {
		return 0
	}
	return int(math.RoundToEven(100 * float64(sum-idle) / float64(sum)))
}

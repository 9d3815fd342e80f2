package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseStatTicks(t *testing.T) {
	// A command name with spaces and parentheses: fields are counted from the last ')'.
	line := "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 30 0 0 20 0 9 0 100 1000 200 18446744073709551615\n"
	got, err := parseStatTicks([]byte(line))
	if err != nil || got != 180 {
		t.Fatalf("parseStatTicks = %d, %v; want 150+30", got, err)
	}
	for _, bad := range []string{
		"4242 no parenthesis S 1 2 3",
		"4242 (x) S 1 2 3",
		"4242 (x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 abc 30 0",
	} {
		if _, err := parseStatTicks([]byte(bad)); err == nil {
			t.Errorf("parseStatTicks(%q): no error", bad)
		}
	}
}

// The driver's own /proc entry parses: the real file, not a copy of its format.
func TestProcCPUOfThisProcess(t *testing.T) {
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if rss := rssMB(os.Getpid(), "VmRSS"); rss == "-" || rss == "0.0" {
		t.Fatalf("VmRSS of this process: %q", rss)
	}
	if got := rssMB(os.Getpid(), "VmNoSuchKey"); got != "-" {
		t.Fatalf("a missing key: %q, want -", got)
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tredis-server\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t5\n"
	if kb, ok := parseStatusKB(status, "VmRSS"); !ok || kb != 10240 {
		t.Fatalf("VmRSS = %v, %v", kb, ok)
	}
	if kb, ok := parseStatusKB(status, "VmHWM"); !ok || kb != 20480 {
		t.Fatalf("VmHWM = %v, %v", kb, ok)
	}
	// A key that only starts like another is not it.
	if _, ok := parseStatusKB(strings.Replace(status, "VmRSS", "VmRSSx", 1), "VmRSS"); ok {
		t.Fatal("VmRSSx read as VmRSS")
	}
}

func TestBusyPercent(t *testing.T) {
	// user nice system idle iowait irq softirq: 30 busy + 10 iowait + 60 idle of 100.
	a := []int64{100, 0, 50, 1000, 10, 0, 0}
	b := []int64{120, 0, 60, 1060, 20, 0, 0}
	if got := busyPercent(a, b); got != 30 {
		t.Fatalf("busy = %d%%, want 30%%", got)
	}
	if got := busyPercent(a, a); got != 0 {
		t.Fatalf("no time passed: %d%%", got)
	}
	times, err := cpuTimes()
	if err != nil || len(times) < 5 {
		t.Fatalf("/proc/stat: %v, %v", times, err)
	}
}

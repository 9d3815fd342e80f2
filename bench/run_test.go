package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests of the benchmark driver (bench/cmd/run): it is built and run for real,
// with real servers, ghz and redis-server, for a short section. Its pure parts are tested
// beside it.

// driver builds the driver into a temporary directory.
func driver(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bench-run")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/run").CombinedOutput(); err != nil {
		t.Fatalf("go build ./bench/cmd/run: %v\n%s", err, out)
	}
	return bin
}

// freeBase is a port base none of whose listeners is taken now, below the ephemeral range.
func freeBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 12000 + rand.IntN(15000)
		if !anyListening(base) {
			return base
		}
	}
	t.Fatal("no free port base")
	return 0
}

// listeners are the offsets from the base that the short run below opens (demo, its AS, the
// no-ops, Redis, the stand-in ASes).
var listeners = []int{0, 1, 2, 100, 101, 102, 188, 89, 90}

func anyListening(base int) bool {
	for _, off := range listeners {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", base+off), 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// A port base that would put a listener outside 1024–65535 is refused before anything starts.
func TestDriverRefusesABadBase(t *testing.T) {
	bin := driver(t)
	for _, base := range []string{"80", "65500", "x"} {
		out, err := exec.Command(bin, "-P", base).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "-P "+base) {
			t.Errorf("-P %s: %v\n%s", base, err, out)
		}
	}
}

// A short main section, unpinned (CI machines may have one CPU): the table has every row with
// numbers, the cached scenarios allow everything, the results file holds what stdout showed, and
// every server is gone afterwards.
func TestDriverMainSection(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the end-to-end benchmark run takes about a minute")
	}
	bin := driver(t)
	base := freeBase(t)
	out := filepath.Join(t.TempDir(), "results.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-s", "main", "-o", "jwt-cached,opaque-L1", "-d", "1s", "-r", "1", "-c", "8",
		"-p", "unpinned", "-P", strconv.Itoa(base), "-out", out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("driver: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), tail(stderr.String()))
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, stdout.Bytes()) {
		t.Errorf("the results file differs from stdout:\n%s", file)
	}
	// scenario RPS p50 p99 vs_noop cpu_us/chk cpu/noop gen_us allow% | ...
	rowRE := regexp.MustCompile(`(?m)^(\S+) +([0-9]+) +[0-9.]+ +[0-9.]+ +([0-9.]+)x +([0-9.]+) +[0-9.]+x +([0-9.]+) +(-|[0-9.]+) \|`)
	rows := map[string][]string{}
	for _, m := range rowRE.FindAllStringSubmatch(stdout.String(), -1) {
		rows[m[1]] = m[2:]
	}
	for _, name := range []string{"noop", "noop-allow", "noop-401", "jwt-cached", "opaque-L1"} {
		r, ok := rows[name]
		if !ok {
			t.Errorf("no row for %s in:\n%s", name, stdout.String())
			continue
		}
		rps, _ := strconv.ParseFloat(r[0], 64)
		cpu, _ := strconv.ParseFloat(r[2], 64)
		gen, _ := strconv.ParseFloat(r[3], 64)
		if rps <= 0 || cpu <= 0 || gen <= 0 {
			t.Errorf("%s: RPS %v, cpu_us %v, gen_us %v: all must be measured", name, rps, cpu, gen)
		}
		wantAllow := "100.0"
		if strings.HasPrefix(name, "noop") {
			wantAllow = "-" // a no-op reports no decisions
		}
		if r[4] != wantAllow {
			t.Errorf("%s: allow%% %s, want %s", name, r[4], wantAllow)
		}
	}
	if rows["noop"] != nil && rows["noop"][1] != "1.00" {
		t.Errorf("noop against itself: %sx", rows["noop"][1])
	}
	for _, want := range []string{"The decision alone", "jwt-cached      noop-allow", "RSS MB", "# done "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("no %q in the output:\n%s", want, stdout.String())
		}
	}
	if strings.Contains(stdout.String(), "calls not OK") {
		t.Errorf("calls failed:\n%s", stdout.String())
	}
	if anyListening(base) {
		t.Error("a server still listens after the driver exited")
	}
}

// Ctrl-C while the servers run stops every one of them, and the driver exits 130.
func TestDriverStopsEverythingOnInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts the benchmark's servers")
	}
	bin := driver(t)
	base := freeBase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-s", "main", "-o", "jwt-cached", "-d", "30s", "-r", "3", "-c", "8",
		"-p", "unpinned", "-P", strconv.Itoa(base), "-out", "-")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdout)
	// Once the demo listens, the driver is starting the rest, warming up or in the rounds.
	up := false
	for deadline := time.Now().Add(5 * time.Minute); !up && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		up = anyListening(base)
	}
	if !up {
		t.Fatalf("nothing listens while the driver runs: the test would prove nothing\n%s", tail(stderr.String()))
	}
	time.Sleep(2 * time.Second)
	cmd.Process.Signal(os.Interrupt)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("after Ctrl-C: %v, want exit status 130\n%s", err, tail(stderr.String()))
	}
	if anyListening(base) {
		t.Fatal("a server still listens after Ctrl-C")
	}
}

func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

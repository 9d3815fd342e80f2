package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runGoTest runs a real `go test -json` on a scratch module holding src as its test file.
func runGoTest(t *testing.T, src string) []byte {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module scratch\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "x_test.go"), []byte(src), 0o644)
	// A package without tests beside it, which go test reports as skipped.
	os.MkdirAll(filepath.Join(dir, "notests"), 0o755)
	os.WriteFile(filepath.Join(dir, "notests", "n.go"), []byte("package notests\n"), 0o644)
	cmd := exec.Command("go", "test", "-count=1", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CI=")
	out, _ := cmd.Output() // a failing test exits 1: the events are what matters
	return out
}

func TestSkipsListedWithReasons(t *testing.T) {
	events := runGoTest(t, `package scratch
import "testing"
func TestRuns(t *testing.T) {}
func TestNeedsTool(t *testing.T) { t.Skip("frobctl is not on PATH: apt-get install frob") }
func TestTable(t *testing.T) {
	t.Run("a", func(t *testing.T) {})
	t.Run("b", func(t *testing.T) { t.Skipf("needs %s", "redis-server") })
}
`)
	var out bytes.Buffer
	if !summarize(bytes.NewReader(events), &out) {
		t.Fatalf("reported a failure:\n%s", out.String())
	}
	got := out.String()
	for _, want := range []string{
		"ok  \tscratch",
		"2 skipped",
		"scratch TestNeedsTool: x_test.go:4: frobctl is not on PATH: apt-get install frob",
		"scratch TestTable/b: x_test.go:7: needs redis-server",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "(no reason given)") {
		t.Errorf("a skip without a reason listed:\n%s", got)
	}
	if strings.Contains(got, "=== RUN") {
		t.Errorf("passing tests' output shown:\n%s", got)
	}
}

func TestFailureShownAndReported(t *testing.T) {
	events := runGoTest(t, `package scratch
import "testing"
func TestGood(t *testing.T) { t.Log("quiet") }
func TestBad(t *testing.T) { t.Error("the answer was 41") }
`)
	var out bytes.Buffer
	if summarize(bytes.NewReader(events), &out) {
		t.Fatalf("a failing package was reported as passing:\n%s", out.String())
	}
	got := out.String()
	if !strings.Contains(got, "the answer was 41") || !strings.Contains(got, "FAIL") {
		t.Errorf("the failure is not shown:\n%s", got)
	}
	if strings.Contains(got, "quiet") {
		t.Errorf("a passing test's log is shown:\n%s", got)
	}
}

func TestBuildFailureReported(t *testing.T) {
	events := runGoTest(t, "package scratch\nfunc TestX(t *testing.T) { undefined() }\n")
	var out bytes.Buffer
	if summarize(bytes.NewReader(events), &out) {
		t.Fatalf("a package that does not build was reported as passing:\n%s", out.String())
	}
}

func TestNothingOnStdin(t *testing.T) {
	var out bytes.Buffer
	if summarize(strings.NewReader(""), &out) {
		t.Error("no results at all counted as success")
	}
}

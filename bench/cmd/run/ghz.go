package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const ghzVersion = "v0.120.0"

// toolsDir is the tools cache shared with the build scripts: $MCP_AUTHZ_TOOLS, else
// ~/.cache/mcp-authz-tools.
func toolsDir() string {
	if d := os.Getenv("MCP_AUTHZ_TOOLS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "mcp-authz-tools")
}

// findGhz returns the tools cache's ghz, installed there with `go install` when missing.
func findGhz(ctx context.Context) (string, error) {
	dir := toolsDir()
	p := filepath.Join(dir, "ghz")
	if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/bojand/ghz/cmd/ghz@"+ghzVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("installing ghz %s into %s: %w", ghzVersion, dir, err)
	}
	return p, nil
}

// ghzReport is the part of ghz's JSON report (-O json) the tables use. Latencies are in ns.
type ghzReport struct {
	Count   int64   `json:"count"`
	RPS     float64 `json:"rps"`
	Latency []struct {
		Percentage int   `json:"percentage"`
		Latency    int64 `json:"latency"`
	} `json:"latencyDistribution"`
	Status map[string]int64 `json:"statusCodeDistribution"`
}

func parseGhzReport(b []byte) (ghzReport, error) {
	var r ghzReport
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("ghz report: %w", err)
	}
	if r.Status == nil {
		return r, fmt.Errorf("ghz report: no statusCodeDistribution (did ghz run at all?)")
	}
	return r, nil
}

// percentileMS is a latency percentile in ms; 0 when ghz did not report it.
func (r ghzReport) percentileMS(p int) float64 {
	for _, l := range r.Latency {
		if l.Percentage == p {
			return float64(l.Latency) / 1e6
		}
	}
	return 0
}

// ghzRun is one ghz invocation against the Check method of addr.
type ghzRun struct {
	addr string
	data string   // request payload file (-D)
	args []string // load shape: -c, -z or -n, --rps
	out  string   // where the JSON report goes; "" discards it
}

// ghz runs ghz (under the load generator's CPU prefix) and returns its own CPU time, user +
// system, from the process's rusage.
func (l *lab) ghz(ctx context.Context, r ghzRun) (time.Duration, error) {
	// --duration-stop=wait: calls in flight when -z ends finish and count (the default, close,
	// cancels them, and the server then answers those with an error nobody receives).
	args := append([]string{l.ghzPath, "--insecure", "--protoset", "proto/authz.protoset",
		"--call", "envoy.service.auth.v3.Authorization.Check", "--duration-stop=wait", "-D", r.data}, r.args...)
	if r.out != "" {
		args = append(args, "-O", "json")
	}
	args = append(args, r.addr)
	cmd := commandContext(ctx, l.gen, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if r.out != "" {
		f, err := os.Create(r.out)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		cmd.Stdout = f
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err != nil && r.out == "" {
		return 0, fmt.Errorf("ghz %s: %v: %s", r.addr, err, tail(stderr.String(), 5))
	}
	// With a report, ghz's exit status is not the verdict: the report is (run.sh read it the
	// same way), and a missing or broken one fails the caller's parse.
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

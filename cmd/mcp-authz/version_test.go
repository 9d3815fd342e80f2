package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// stampedBin is one stamped build shared by the tests that run the binary: a build costs
// seconds of CPU that timing-sensitive tests elsewhere in the suite would feel.
var (
	stampedOnce sync.Once
	stampedPath string
	stampedErr  string
)

const (
	stampVersion = "v9.8.7"
	stampCommit  = "0123abcd"
	stampDate    = "2026-12-02T06:00:00Z"
)

func stamped(t *testing.T) string {
	t.Helper()
	stampedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mcp-authz-stamped-")
		if err != nil {
			stampedErr = err.Error()
			return
		}
		stampedPath, stampedErr = buildStamped(dir, stampVersion, stampCommit, stampDate)
	})
	if stampedErr != "" {
		t.Fatal(stampedErr)
	}
	return stampedPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if stampedPath != "" {
		os.RemoveAll(filepath.Dir(stampedPath))
	}
	os.Exit(code)
}

// buildStamped builds the command into dir as a release would, with the version, commit and
// date stamped through -ldflags, and returns the binary's path or why it failed.
func buildStamped(dir, version, commit, date string) (string, string) {
	bin := filepath.Join(dir, "mcp-authz")
	const pkg = "github.com/mcp-authz/mcp-authz/buildinfo"
	ld := "-X " + pkg + ".version=" + version + " -X " + pkg + ".commit=" + commit + " -X " + pkg + ".date=" + date
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ld, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("go build: %v\n%s", err, out)
	}
	return bin, ""
}

// A stamped binary reports its stamps from `version` and `--version`, and serves them as
// mcp_authz_build_info on /metrics.
func TestVersionStamped(t *testing.T) {
	bin := stamped(t)
	var outs []string
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", arg, err, out)
		}
		for _, want := range []string{"mcp-authz v9.8.7", "commit  0123abcd", "built   2026-12-02T06:00:00Z", "go      " + runtime.Version()} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%s prints no %q:\n%s", arg, want, out)
			}
		}
		outs = append(outs, string(out))
	}
	if outs[0] != outs[1] {
		t.Errorf("version and --version differ:\n%s\n%s", outs[0], outs[1])
	}

	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	httpAddr := testenv.FreeAddr(t)
	os.WriteFile(cfg, []byte("listen:\n  grpc: 127.0.0.1:0\n  http: "+httpAddr+"\nshutdown: {drain: 0s}\nissuers:\n  - issuer: https://127.0.0.1:1\nresources:\n  - resource: https://mcp.example.com/mcp\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, bin, "serve", "--config", cfg)
	var logs syncBuffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer srv.Process.Signal(os.Interrupt)
	var metrics string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		break
	}
	want := `mcp_authz_build_info{commit="0123abcd",date="2026-12-02T06:00:00Z",goversion="` + runtime.Version() + `",version="v9.8.7"} 1`
	if !strings.Contains(metrics, want) {
		t.Errorf("/metrics lacks %s\n%s\nlogs:\n%s", want, grep(metrics, "build_info"), logs.String())
	}
}

// An unstamped build (go run, go test) still answers, with the toolchain's version.
func TestVersionUnstamped(t *testing.T) {
	out, _, err := runCmd("version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "mcp-authz ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: %q", out)
	}
}

func grep(s, sub string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

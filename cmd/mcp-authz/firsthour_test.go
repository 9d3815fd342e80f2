package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// startDemo runs `mcp-authz demo` in process on free loopback ports and returns its printout
// once complete, with the addresses it used.
func startDemo(t *testing.T) (printout, grpcAddr, httpAddr, asAddr string) {
	t.Helper()
	a := testenv.FreeAddrs(t, 3)
	grpcAddr, httpAddr, asAddr = a[0], a[1], a[2]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out, errb syncBuffer
	go func() {
		done <- run(ctx, []string{"demo", "-grpc", grpcAddr, "-http", httpAddr, "-as", asAddr}, func(string) string { return "" }, &out, &errb)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s := out.String(); strings.Contains(s, "Ctrl-C stops it.") {
			return s, grpcAddr, httpAddr, asAddr
		}
	}
	t.Fatalf("the demo printed no guide:\n%s\n%s", out.String(), errb.String())
	return
}

// The README's demo walk-through is the demo's own printout at the default addresses, taken
// from a running demo now, so neither can drift from the other.
func TestREADMEDemoIsTheDemosPrintout(t *testing.T) {
	printout, g, h, as := startDemo(t)
	atDefaults := strings.NewReplacer(g, "127.0.0.1:9191", h, "127.0.0.1:9192", as, "127.0.0.1:9193").Replace(printout)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```text\n(mcp-authz demo is running\\..*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md has no ```text block starting \"mcp-authz demo is running.\"; paste the demo's printout:\n%s", atDefaults)
	}
	if got := string(m[1]); strings.TrimSpace(got) != strings.TrimSpace(atDefaults) {
		t.Errorf("README's demo block differs from what `mcp-authz demo` prints; paste this into README.md:\n%s", atDefaults)
	}
}

// Every step of the printed walk-through does what its comment says, run as printed by a
// shell (with the built command in place of `go run ./cmd/mcp-authz`), exit statuses
// included.
func TestDemoWalkthroughRuns(t *testing.T) {
	testenv.Tool(t, "curl", "apt-get install -y curl (step 5 uses it)")
	bin := stamped(t)
	printout, _, _, _ := startDemo(t)
	steps := map[string]string{}
	var cur string
	for _, line := range strings.Split(printout, "\n") {
		line = strings.TrimSpace(line)
		if n, ok := strings.CutPrefix(line, "# "); ok && len(n) > 1 && n[1] == '.' {
			cur = n[:1]
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			cur = ""
			continue
		}
		if cur != "" {
			steps[cur] += strings.ReplaceAll(line, "go run ./cmd/mcp-authz", bin) + "\n"
		}
	}
	want := map[string]struct {
		exit int
		out  string
	}{
		"1": {exitDenied401, `"Unauthorized"`},
		"2": {exitAllowed, `"x-auth-scopes"`},
		"3": {exitDenied403, `insufficient_scope`},
		"4": {exitAllowed, `"x-auth-subject"`},
		"5": {0, `"authorization_servers"`},
		"6": {exitDenied403, `scope=\"mcp:tools payments:write\"`},
		"7": {exitDenied403, `access_denied`},
		"8": {exitAllowed, `"mcp_name": "refund"`},
	}
	for n, w := range want {
		script, ok := steps[n]
		if !ok {
			t.Errorf("the printout has no step %s", n)
			continue
		}
		cmd := exec.Command("bash", "-c", script)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != w.exit || !strings.Contains(stdout.String(), w.out) {
			t.Errorf("step %s exited %d (want %d), output without %q:\n%s\n%s%s", n, code, w.exit, w.out, script, stdout.String(), stderr.String())
		}
	}
}

// A failed token request fails visibly: the authorization server's error, a non-zero exit
// and nothing on stdout for $(…) to capture.
func TestTokenFailsVisibly(t *testing.T) {
	_, _, _, as := startDemo(t)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"token", "-token-url", "http://" + as + "/token", "-client", "demo", "-secret", "s3cr3t-xyzzy"}, func(string) string { return "" }, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("wrong secret: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("printed %q on a failure", out.String())
	}
	if strings.Contains(err.Error(), "s3cr3t-xyzzy") {
		t.Error("the error echoes the secret")
	}
	err = run(context.Background(), []string{"token", "-token-url", "http://" + testenv.FreeAddr(t) + "/token"}, func(string) string { return "" }, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("nothing listening: %v", err)
	}
	out.Reset()
	env := func(k string) string {
		if k == "DEMO_SECRET" {
			return "demo-secret"
		}
		return ""
	}
	if err := run(context.Background(), []string{"token", "-token-url", "http://" + as + "/token", "-secret", "x", "-secret-env", "DEMO_SECRET"}, env, &out, &errb); err != nil || strings.Count(out.String(), ".") != 2 {
		t.Errorf("-secret-env: %v %q", err, out.String())
	}
}

// `check --config FILE` checks against the file's first resource on its gRPC address, says
// which resource matched (or that none did), and exits with the outcome.
func TestCheckWithConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	grpcAddr := testenv.FreeAddr(t)
	os.WriteFile(cfg, []byte("listen:\n  grpc: "+grpcAddr+"\n  http: \"\"\nshutdown: {drain: 0s}\nissuers:\n  - issuer: https://127.0.0.1:1\nresources:\n  - resource: https://mcp.example.com/tools/mcp\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", cfg}, func(string) string { return "" }, &bytes.Buffer{}, &logs) // FILE alone, as check-config takes it
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, logs.String())
		}
	}()
	var out, errb bytes.Buffer
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out.Reset()
		errb.Reset()
		err = run(context.Background(), []string{"check", "--config", cfg}, func(string) string { return "" }, &out, &errb)
		if !strings.Contains(fmtErr(err), "connection refused") {
			break
		}
	}
	var code exitCode
	if !errors.As(err, &code) || code.code != exitDenied401 {
		t.Fatalf("no token: %v, want exit %d\n%s", err, exitDenied401, out.String())
	}
	if !strings.Contains(errb.String(), "mcp.example.com/tools/mcp matches resource https://mcp.example.com/tools/mcp") {
		t.Errorf("does not say which resource matched: %s", errb.String())
	}
	errb.Reset()
	err = run(context.Background(), []string{"check", "-path", "/elsewhere", cfg}, func(string) string { return "" }, &out, &errb)
	if !errors.As(err, &code) || code.code != exitDenied403 {
		t.Errorf("no route: %v, want exit %d", err, exitDenied403)
	}
	if !strings.Contains(errb.String(), "matches no resource") {
		t.Errorf("does not say that no resource matched: %s", errb.String())
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Every command takes the configuration file both ways.
func TestConfigFileForms(t *testing.T) {
	for _, args := range [][]string{
		{"check-config", "../../deploy/config.example.yaml"},
		{"check-config", "--config", "../../deploy/config.example.yaml"},
		{"check-config", "-config", "../../deploy/config.example.yaml", "../../deploy/config.example.yaml"},
	} {
		if out, _, err := runCmd(args...); err != nil || !strings.Contains(out, "valid") {
			t.Errorf("%v: %v", args, err)
		}
	}
	for _, args := range [][]string{
		{"check-config", "--config", "a.yaml", "b.yaml"},
		{"check-config", "a.yaml", "b.yaml"},
		{"serve", "a.yaml", "b.yaml"},
		{"check", "--config", "a.yaml", "b.yaml"},
	} {
		if _, _, err := runCmd(args...); err == nil || !strings.Contains(err.Error(), "configuration file") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

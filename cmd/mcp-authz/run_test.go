package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

func runCmd(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &out, &errb)
	return out.String(), errb.String(), err
}

func TestCheckConfigExample(t *testing.T) {
	out, _, err := runCmd("check-config", "../../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"valid", "resource: https://mcp.example.com/mcp", "path_prefix: /mcp", "subject: x-auth-subject"} {
		if !strings.Contains(out, want) {
			t.Errorf("resolved config lacks %q:\n%s", want, out)
		}
	}
}

func TestCheckConfigNamesTheKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("issuers:\n  - issuer: https://as.example.com\n    algorithms: [HS256]\nresources:\n  - resource: http://mcp.example.com/mcp\n"), 0o600)
	_, _, err := runCmd("check-config", bad)
	if err == nil {
		t.Fatal("accepted a bad config")
	}
	for _, key := range []string{"issuers[0].algorithms[0]", "resources[0].resource", "dev.allow_http"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not mention %s: %v", key, err)
		}
	}
	if _, _, err := runCmd("check-config", filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"serve"}, {"check-config"}, {"check", "-H", "no-colon"}} {
		if _, _, err := runCmd(args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if out, _, err := runCmd("help"); err != nil || !strings.Contains(out, "demo") {
		t.Errorf("help: %v %q", err, out)
	}
}

// serve with a real config file, stopped by cancelling its context (as SIGTERM does).
func TestServeStartsAndStops(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("listen:\n  grpc: 127.0.0.1:0\n  http: 127.0.0.1:0\nshutdown: {drain: 0s}\nissuers:\n  - issuer: https://127.0.0.1:1\nresources:\n  - resource: https://mcp.example.com/mcp\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var errb bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg}, func(string) string { return "" }, &bytes.Buffer{}, &errb)
	}()
	// The IdP is unreachable (a closed loopback port); startup must not wait for it.
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, errb.String())
	}
}

// check-config reads the secrets a config names (so a missing one is caught before deploy)
// but never contacts Redis.
func TestCheckConfigSecrets(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("cache:\n  secret: {env: CACHE_SECRET}\n  redis: {addrs: [\"127.0.0.1:1\"]}\nissuers:\n  - issuer: https://as.example.com\nresources:\n  - resource: https://mcp.example.com/mcp\n"), 0o600)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"check-config", cfg}, func(string) string { return "" }, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "cache.secret") || !strings.Contains(err.Error(), "CACHE_SECRET") {
		t.Errorf("unset secret: %v", err)
	}
	env := func(k string) string {
		if k == "CACHE_SECRET" {
			return strings.Repeat("x", 32)
		}
		return ""
	}
	if err := run(context.Background(), []string{"check-config", cfg}, env, &out, &errb); err != nil {
		t.Errorf("with the secret set: %v", err)
	}
	if strings.Contains(out.String(), strings.Repeat("x", 32)) {
		t.Error("check-config printed a secret")
	}
}

// SIGHUP reloads the file; an invalid file is refused, logged with its key, and the old
// configuration keeps serving.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.yaml")
	httpAddr := testenv.FreeAddr(t)
	level := "info"
	write := func(scope string) {
		os.WriteFile(cfgPath, []byte("listen:\n  grpc: 127.0.0.1:0\n  http: "+httpAddr+"\nshutdown: {drain: 0s}\nlog: {format: text, level: "+level+"}\nissuers:\n  - issuer: https://127.0.0.1:1\nresources:\n  - resource: https://mcp.example.com/mcp\n    scopes: {required: ["+scope+"]}\n"), 0o600)
	}
	write("mcp:tools")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errb := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgPath}, func(string) string { return "" }, &bytes.Buffer{}, errb)
	}()
	metadata := func() string {
		resp, err := http.Get("http://" + httpAddr + "/.well-known/oauth-protected-resource/mcp")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, errb.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("start", func() bool { return strings.Contains(metadata(), "mcp:tools") })
	if strings.Contains(errb.String(), "msg=decision") {
		t.Fatal("a debug line logged at level info")
	}
	level = "debug"
	write("mcp:admin")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor("reload", func() bool { return strings.Contains(metadata(), "mcp:admin") })
	// log.level applies on reload, without a restart: decisions are logged at debug.
	waitFor("debug logging after the reload", func() bool { metadata(); return strings.Contains(errb.String(), "msg=decision") })
	os.WriteFile(cfgPath, []byte("issuers:\n  - issuer: https://127.0.0.1:1\n    algorithms: [none]\nresources:\n  - resource: https://mcp.example.com/mcp\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitFor("refusal logged", func() bool { return strings.Contains(errb.String(), "issuers[0].algorithms[0]") })
	if !strings.Contains(metadata(), "mcp:admin") {
		t.Error("the refused reload changed what is served")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// An edit of the file reloads it without a signal.
func TestServeReloadsOnFileChange(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.yaml")
	httpAddr := testenv.FreeAddr(t)
	write := func(scope string) {
		os.WriteFile(cfgPath, []byte("listen:\n  grpc: 127.0.0.1:0\n  http: "+httpAddr+"\nshutdown: {drain: 0s}\nissuers:\n  - issuer: https://127.0.0.1:1\nresources:\n  - resource: https://mcp.example.com/mcp\n    scopes: {required: ["+scope+"]}\n"), 0o600)
	}
	write("mcp:tools")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	errb := &syncBuffer{}
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfgPath}, func(string) string { return "" }, &bytes.Buffer{}, errb)
	}()
	metadata := func() string {
		resp, err := http.Get("http://" + httpAddr + "/.well-known/oauth-protected-resource/mcp")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(metadata(), "mcp:tools") {
		if time.Now().After(deadline) {
			t.Fatalf("not started:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	write("mcp:files.write") // a different size, so the change shows even within one mtime tick
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(metadata(), "mcp:files.write") {
		if time.Now().After(deadline) {
			t.Fatalf("file change not picked up:\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// serve and demo raise GOGC for the heap floor, unless the operator set GOGC, and put it back
// when they return.
func TestHeapFloorUnlessGOGC(t *testing.T) {
	before := gogc()
	stop := startHeapFloor(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	})
	runtime.GC()
	if got := gogc(); got != before {
		t.Errorf("GOGC set by the operator, yet changed %d → %d", before, got)
	}
	stop()

	stop = startHeapFloor(func(string) string { return "" })
	// A test binary's small heap: the floor needs a GOGC well above the default.
	if got := gogc(); got <= 100 {
		t.Errorf("heap floor started, GOGC still %d", got)
	}
	stop()
	if got := gogc(); got != before {
		t.Errorf("GOGC %d after stop, want %d back", got, before)
	}
}

// check-config with per-operation rules says what the proxy must send, and with -envoy checks
// an Envoy file for it.
func TestCheckConfigPerOperationEnvoy(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "c.yaml")
	withRules := strings.Replace(string(src), "    scopes:\n", "    mcp:\n      tools:\n        delete_file: [files:write]\n    scopes:\n", 1)
	if withRules == string(src) {
		t.Fatal("fixture no longer has a resource scopes block")
	}
	os.WriteFile(cfg, []byte(withRules), 0o600)
	out, _, err := runCmd("check-config", cfg)
	if err != nil || !strings.Contains(out, "# note: resources[0].mcp read the MCP operation") {
		t.Fatalf("no per-operation note: %v\n%s", err, out)
	}
	if _, _, err := runCmd("check-config", "-envoy", "../../envoy/envoy.yaml", cfg); err != nil {
		t.Errorf("shipped envoy.yaml refused: %v", err)
	}
	e, _ := os.ReadFile("../../envoy/envoy.yaml")
	bad := filepath.Join(dir, "envoy.yaml")
	os.WriteFile(bad, []byte(strings.Replace(string(e), "with_request_body:", "x_with_request_body:", 1)), 0o600)
	_, _, err = runCmd("check-config", "-envoy", bad, cfg)
	if err == nil || !strings.Contains(err.Error(), "no with_request_body") || !strings.Contains(err.Error(), "resources[0].mcp") {
		t.Errorf("envoy file without the body accepted: %v", err)
	}
}

// The example's commented rule is valid as written once uncommented, and check-config names
// a broken condition by its key.
func TestCheckConfigExampleRule(t *testing.T) {
	src, err := os.ReadFile("../../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	i := strings.Index(s, "    # rules:")
	if i < 0 {
		t.Fatal("the example no longer has a commented rules block")
	}
	rules := strings.ReplaceAll(strings.Replace(s[i:], "    # rules:", "    rules:", 1), "    #   ", "      ")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(s[:i]+rules), 0o600)
	out, _, err := runCmd("check-config", good)
	if err != nil || !strings.Contains(out, "resources[0].rules read the MCP operation") || !strings.Contains(out, "name: refund-finance-only") {
		t.Fatalf("uncommented example rule: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(s[:i]+strings.Replace(rules, `in claims.groups'`, `in claims.groups &&'`, 1)), 0o600)
	if _, _, err := runCmd("check-config", bad); err == nil || !strings.Contains(err.Error(), "resources[0].rules[0].when: ERROR") {
		t.Errorf("broken condition: %v", err)
	}
}

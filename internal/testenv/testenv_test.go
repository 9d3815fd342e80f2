package testenv

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder catches what Missing does instead of ending the test that calls it.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()               {}
func (r *recorder) Skip(args ...any)      { r.skipped = args[0].(string) }
func (r *recorder) Fatal(args ...any)     { r.failed = args[0].(string) }
func (r *recorder) Fatalf(string, ...any) { r.failed = "fatalf" }

func TestMissingSkipsButFailsUnderCI(t *testing.T) {
	t.Setenv("CI", "")
	r := &recorder{TB: t}
	Tool(r, "mcp-authz-no-such-tool", "apt-get install -y nothing")
	if !strings.Contains(r.skipped, "mcp-authz-no-such-tool") || !strings.Contains(r.skipped, "apt-get install -y nothing") || r.failed != "" {
		t.Errorf("outside CI: skipped %q, failed %q", r.skipped, r.failed)
	}
	t.Setenv("CI", "true")
	r = &recorder{TB: t}
	CachedTool(r, "mcp-authz-no-such-tool", "deploy/x/build.sh")
	if !strings.Contains(r.failed, "deploy/x/build.sh") || r.skipped != "" {
		t.Errorf("under CI: skipped %q, failed %q", r.skipped, r.failed)
	}
}

func TestToolsDir(t *testing.T) {
	t.Setenv("MCP_AUTHZ_TOOLS", "/opt/tools")
	if d := ToolsDir(); d != "/opt/tools" {
		t.Errorf("ToolsDir = %q", d)
	}
	t.Setenv("MCP_AUTHZ_TOOLS", "")
	t.Setenv("HOME", "/home/x")
	if d := ToolsDir(); d != "/home/x/.cache/mcp-authz-tools" {
		t.Errorf("ToolsDir = %q", d)
	}
}

func TestFreeAddrsAreDistinctAndFree(t *testing.T) {
	addrs := FreeAddrs(t, 20)
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s twice", a)
		}
		seen[a] = true
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is not free: %v", a, err)
		}
		l.Close()
	}
}

func TestWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr := FreeAddr(t)
	go func() {
		time.Sleep(100 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		t.Cleanup(func() { l.Close() })
		http.Serve(l, http.NotFoundHandler())
	}()
	if err := WaitAddr(ctx, addr, nil); err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	if err := WaitURL(ctx, srv.URL, nil); err != nil || calls.Load() != 2 {
		t.Fatal(err, calls.Load())
	}

	exited := make(chan struct{})
	close(exited)
	if err := WaitAddr(ctx, FreeAddr(t), exited); err != errExited {
		t.Errorf("a process that exited: %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := WaitURL(short, "http://"+FreeAddr(t), nil); err == nil {
		t.Error("nothing listens, yet WaitURL returned nil")
	}
}

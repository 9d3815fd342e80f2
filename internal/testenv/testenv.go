// Package testenv holds what tests need from the machine in one place: free loopback
// addresses, the third-party tools they run (on PATH or built into the tools cache), and waiting
// for a started process to listen.
//
// A missing tool skips a test on a developer's machine, with the reason and the command that
// installs it; under CI (CI=true) .ci/run has installed every tool, so a missing one fails the
// test instead: CI must not skip what it is there to run.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// CI reports whether the tests run under CI (CI=true), where nothing may be skipped for a
// missing tool.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing ends a test that cannot run for want of something this machine lacks: a skip with
// msg, or under CI a failure (msg should say what installs it).
func Missing(t testing.TB, msg string) {
	t.Helper()
	if CI() {
		t.Fatal(msg + " (.ci/run should have installed it)")
		return
	}
	t.Skip(msg)
}

// ToolsDir is the tools cache that the build and install scripts under deploy/ and bench/ fill:
// $MCP_AUTHZ_TOOLS, else ~/.cache/mcp-authz-tools.
func ToolsDir() string {
	if d := os.Getenv("MCP_AUTHZ_TOOLS"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "mcp-authz-tools")
}

// CachedTool returns the path of name in the tools cache, or Missing with install (the
// command that builds it) when it is not there.
func CachedTool(t testing.TB, name, install string) string {
	t.Helper()
	p := filepath.Join(ToolsDir(), name)
	if Executable(p) {
		return p
	}
	Missing(t, fmt.Sprintf("%s is not in %s: run %s", name, ToolsDir(), install))
	return ""
}

// Tool finds a program on PATH, then at the other paths given (Debian puts nginx in
// /usr/sbin, which a user's PATH may lack), or calls Missing with install.
func Tool(t testing.TB, name, install string, elsewhere ...string) string {
	t.Helper()
	if p, ok := LookTool(name, elsewhere...); ok {
		return p
	}
	Missing(t, fmt.Sprintf("%s is not on PATH: %s", name, install))
	return ""
}

// LookTool is Tool without the test: for a test that needs one of several tools.
func LookTool(name string, elsewhere ...string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, p := range elsewhere {
		if Executable(p) {
			return p, true
		}
	}
	return "", false
}

// Executable reports whether p is a regular file with an execute bit.
func Executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// FreeAddr returns a loopback address that was free a moment ago ("127.0.0.1:port"), for a
// process that must be told its address before it starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrs(t, 1)[0]
}

// FreeAddrs returns n distinct free loopback addresses, held together while they are chosen
// so that no two are the same.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// WaitAddr waits until addr accepts TCP connections, ctx ends, or exited (if not nil) is
// closed because the process that should listen there has ended.
func WaitAddr(ctx context.Context, addr string, exited <-chan struct{}) error {
	return poll(ctx, exited, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// WaitURL waits until a GET of u answers 200, ctx ends, or exited (if not nil) is closed.
func WaitURL(ctx context.Context, u string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return poll(ctx, exited, func() error {
		resp, err := client.Get(u)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return nil
	})
}

// errExited: the process being waited for ended before it was ready.
var errExited = errors.New("the process exited before it was ready")

func poll(ctx context.Context, exited <-chan struct{}, ready func() error) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-exited:
			return errExited
		case <-tick.C:
		}
	}
}

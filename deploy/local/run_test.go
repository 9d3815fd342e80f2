package local

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// TestRunScript runs run.sh as a person would and requires every one of its checks to pass:
// one introspection for a token used on both replicas, the second replica answering from
// Redis, and /admin/revoke on one replica denying the token on the other.
func TestRunScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mcp-authz and starts six processes")
	}
	testenv.Tool(t, "redis-server", "apt-get install -y redis-server")
	testenv.Tool(t, "nginx", "apt-get install -y nginx", "/usr/sbin/nginx")
	testenv.Tool(t, "curl", "apt-get install -y curl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "run.sh")
	// Its own process group, so that a timeout stops what it started too (run.sh's trap
	// stops them on TERM; WaitDelay covers a process that ignores it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || !regexp.MustCompile(`(?m)^([1-9][0-9]*) passed, 0 failed$`).Match(out.Bytes()) {
		t.Fatalf("run.sh: %v\n%s", err, out.Bytes())
	}
	if testing.Verbose() {
		t.Logf("run.sh:\n%s", out.Bytes())
	}
}

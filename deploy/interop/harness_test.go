package interop

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-authz/mcp-authz/deploy/internal/nodeenv"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/service"
	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// The whole test, processes included, ends within this.
const testTimeout = 90 * time.Second

// harness is what each interop test runs in: Node.js and this folder's pinned npm packages
// (checked), a deadline for the whole test, a folder for its processes' logs, and the last lines
// of every log when the test fails. Processes started with it stop when the test ends.
type harness struct {
	ctx  context.Context
	t    *testing.T
	dir  string
	node string
	logs map[string]string // name → log file, shown when the test fails
}

// newHarness skips (fails under CI=true) without Node.js or the npm packages.
func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	node := nodeenv.Need(t, "node", "install Node.js >= 20")
	nodeenv.Node(t, node)
	nodeenv.Modules(t, "deploy/interop")
	h := &harness{ctx: ctx, t: t, dir: t.TempDir(), node: node, logs: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			for name, path := range h.logs {
				b, _ := os.ReadFile(path)
				t.Logf("--- %s (%s), last lines:\n%s", name, path, tail(string(b), 40))
			}
		}
	})
	return h
}

// start runs a program in this directory until the test ends, its output in a log file named
// after it, and waits until addr accepts connections. It returns the log file's path.
func (h *harness) start(name, addr, bin string, args ...string) string {
	t := h.t
	t.Helper()
	log := filepath.Join(h.dir, name+".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own copy
	h.logs[name] = log
	cmd := exec.CommandContext(h.ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	if err := testenv.WaitAddr(h.ctx, addr, exited); err != nil {
		b, _ := os.ReadFile(log)
		t.Fatalf("%s did not listen on %s: %v (%v)\n%s", name, addr, err, cmd.ProcessState, b)
	}
	return log
}

// mcpAuthz runs mcp-authz in process from a configuration (loaded as serve loads it), with
// secrets from env and a debug log among the test's logs, until the test ends.
func (h *harness) mcpAuthz(yml string, env map[string]string) *service.Service {
	t := h.t
	t.Helper()
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("mcp-authz's configuration: %v\n%s", err, yml)
	}
	log := filepath.Join(h.dir, "mcp-authz.log")
	lf, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	h.logs["mcp-authz"] = log
	svc, err := service.New(cfg, service.Options{
		Logger: slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Getenv: func(k string) string { return env[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		svc.Shutdown(sctx)
	})
	return svc
}

// checkClient is an ext_authz gRPC client of addr, as Envoy connects, closed when t ends.
func checkClient(t *testing.T, addr string) authv3.AuthorizationClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// runNode runs a program of this directory for at most 20 s and refuses output that looks
// like a token (the tests log what the programs print).
func runNode(ctx context.Context, t *testing.T, node, program string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	cmd := exec.CommandContext(cctx, node, append([]string{program}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	// Never a token in what the clients print: no JWT, no Bearer credential (a challenge's
	// "Bearer error=..." is not one).
	if tokenLike.MatchString(out.String() + errOut.String()) {
		t.Fatalf("%s printed something that looks like a token; not logged", program)
	}
	if err != nil && cctx.Err() != nil {
		err = errors.Join(err, cctx.Err())
	}
	return out.String(), errOut.String(), err
}

var tokenLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ|Bearer [A-Za-z0-9._~+/-]{20,}`)

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func lastJSONLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "{") {
			last = l
		}
	}
	return last
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

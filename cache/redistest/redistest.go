// Package redistest runs real redis-server processes on loopback for tests: a single node that
// can be killed and restarted (outage tests), or a small Redis Cluster.
//
// When redis-server is not installed the test is skipped, unless CI=true, where a missing
// binary is a failure: CI must not pass by testing nothing.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const startTimeout = 10 * time.Second

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
}

// Start runs a redis-server without persistence on a free loopback port and stops it when the
// test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := newServer(t, nil)
	s.start()
	return s
}

func newServer(t testing.TB, extra []string) *Server {
	t.Helper()
	bin := need(t, "redis-server")
	return &Server{t: t, bin: bin, dir: t.TempDir(), args: extra}
}

// need finds a binary or ends the test (skip, or fail under CI=true).
func need(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed (CI=true makes this a failure): apt-get install -y redis-server", name)
	}
	t.Skipf("%s not installed: apt-get install -y redis-server", name)
	return ""
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Kill stops the server at once (SIGKILL), as a crash or a partition would.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts a killed server again on the same port, empty (no persistence).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.launch()
	s.waitPing()
}

func (s *Server) start() {
	s.t.Helper()
	// The port is found by binding :0 and releasing it, so another process could take it
	// before redis-server binds: retry on a fresh port when that happens.
	var err error
	for range 5 {
		s.port, err = freePort(s.needsBusPort())
		if err != nil {
			continue
		}
		s.launch()
		if err = s.tryPing(startTimeout); err == nil {
			s.t.Cleanup(s.Kill)
			return
		}
		s.Kill()
	}
	s.t.Fatalf("redistest: redis-server did not start: %v\n%s", err, s.logTail())
}

func (s *Server) needsBusPort() bool {
	for _, a := range s.args {
		if a == "--cluster-enabled" {
			return true
		}
	}
	return false
}

func (s *Server) launch() {
	s.t.Helper()
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}, s.args...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
}

func (s *Server) waitPing() {
	s.t.Helper()
	if err := s.tryPing(startTimeout); err != nil {
		s.t.Fatalf("redistest: redis-server on %s: %v\n%s", s.Addr(), err, s.logTail())
	}
}

func (s *Server) tryPing(within time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if s.dead() || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) dead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return true
	}
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback port that is free now; with bus, port+10000 (the cluster bus
// port) is free too.
func freePort(bus bool) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		if !bus {
			l.Close()
			return p, nil
		}
		if p+10000 > 65535 {
			l.Close()
			continue
		}
		lb, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		l.Close()
		if err != nil {
			continue
		}
		lb.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free port pair for a cluster node")
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
}

// Addrs are the nodes' host:port, for a ClusterClient.
func (c *Cluster) Addrs() []string {
	a := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		a[i] = n.Addr()
	}
	return a
}

// StartCluster runs masters redis-servers in cluster mode, joins them with
// redis-cli --cluster create, and waits until every node reports cluster_state:ok.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: Redis Cluster needs at least 3 masters, got %d", masters)
	}
	cli := need(t, "redis-cli")
	c := &Cluster{}
	for range masters {
		s := newServer(t, []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000"})
		s.start()
		c.Nodes = append(c.Nodes, s)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		n.waitClusterOK()
	}
	return c
}

func (s *Server) waitClusterOK() {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		info, err := c.ClusterInfo(ctx).Result()
		cancel()
		if err == nil && clusterOK(info) {
			return
		}
		last = info
		if err != nil {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("redistest: node %s never reached cluster_state:ok: %s", s.Addr(), last)
}

func clusterOK(info string) bool {
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "cluster_state:ok" {
			return true
		}
	}
	return false
}

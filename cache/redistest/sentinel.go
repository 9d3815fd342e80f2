package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sentinel is a Redis master with one replica, watched by one sentinel (quorum 1): the
// smallest deployment that can fail over. Data nodes require DataPassword; the sentinel
// requires SentinelPassword.
type Sentinel struct {
	t                              testing.TB
	Name                           string
	DataPassword, SentinelPassword string
	Master, Replica                *Server
	sentinel                       *Server
}

// StartSentinel runs the master, its replica and the sentinel on loopback ports and waits
// until the sentinel knows the replica (so that a failover can pick it).
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	need(t, "redis-server")
	s := &Sentinel{t: t, Name: "mymaster", DataPassword: "data-pw", SentinelPassword: "sentinel-pw"}
	auth := []string{"--requirepass", s.DataPassword, "--masterauth", s.DataPassword}
	s.Master = newServer(t, auth)
	s.Master.start2(s.DataPassword)
	s.Replica = newServer(t, append(auth, "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.port)))
	s.Replica.start2(s.DataPassword)

	s.sentinel = newServer(t, nil)
	port, err := freePort(false)
	if err != nil {
		t.Fatal(err)
	}
	s.sentinel.port = port
	conf := filepath.Join(s.sentinel.dir, "sentinel.conf")
	// Sentinel rewrites its configuration file, so it lives in the test's own directory.
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
		"sentinel monitor %s 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 3000\n"+
		"sentinel auth-pass %s %s\nrequirepass %s\n",
		port, s.sentinel.dir, filepath.Join(s.sentinel.dir, "redis.log"),
		s.Name, s.Master.port, s.Name, s.Name, s.Name, s.DataPassword, s.SentinelPassword)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s.sentinel.bin, conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatalf("redistest: start sentinel: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.sentinel.mu.Lock()
	s.sentinel.cmd, s.sentinel.exited = cmd, exited
	s.sentinel.mu.Unlock()
	t.Cleanup(s.sentinel.Kill)

	c := s.client()
	defer c.Close()
	s.wait("the sentinel to see the replica", func(ctx context.Context) error {
		reps, err := c.Replicas(ctx, s.Name).Result()
		if err != nil {
			return err
		}
		for _, r := range reps {
			if r["port"] == strconv.Itoa(s.Replica.port) && r["flags"] == "slave" {
				return nil
			}
		}
		return fmt.Errorf("replicas %v", reps)
	})
	return s
}

// start2 is start for a server that requires password.
func (s *Server) start2(password string) {
	s.t.Helper()
	var err error
	for range 5 {
		if s.port, err = freePort(false); err != nil {
			continue
		}
		s.launch()
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), Password: password, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		deadline := time.Now().Add(startTimeout)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			err = c.Ping(ctx).Err()
			cancel()
			if err == nil || s.dead() || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		c.Close()
		if err == nil {
			s.t.Cleanup(s.Kill)
			return
		}
		s.Kill()
	}
	s.t.Fatalf("redistest: redis-server did not start: %v\n%s", err, s.logTail())
}

// Addrs are the sentinels' addresses, for a client in Sentinel mode.
func (s *Sentinel) Addrs() []string {
	return []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(s.sentinel.port))}
}

func (s *Sentinel) client() *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: s.Addrs()[0], Password: s.SentinelPassword, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
}

// MasterAddr is the master's address as the sentinel reports it now.
func (s *Sentinel) MasterAddr() string {
	s.t.Helper()
	c := s.client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	a, err := c.GetMasterAddrByName(ctx, s.Name).Result()
	if err != nil {
		s.t.Fatalf("redistest: sentinel get-master-addr-by-name: %v", err)
	}
	return net.JoinHostPort(a[0], a[1])
}

// Failover has the sentinel promote the replica (SENTINEL FAILOVER) and waits until it reports
// the new master and that master accepts writes.
func (s *Sentinel) Failover() {
	s.t.Helper()
	old := s.MasterAddr()
	c := s.client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := c.Failover(ctx, s.Name).Err()
	cancel()
	if err != nil {
		s.t.Fatalf("redistest: SENTINEL FAILOVER: %v", err)
	}
	s.waitNewMaster(old)
}

func (s *Sentinel) waitNewMaster(old string) {
	s.t.Helper()
	c := s.client()
	defer c.Close()
	s.wait("the new master", func(ctx context.Context) error {
		now, err := c.GetMasterAddrByName(ctx, s.Name).Result()
		if err != nil {
			return err
		}
		if a := net.JoinHostPort(now[0], now[1]); a == old {
			return fmt.Errorf("master still %s", a)
		}
		d := redis.NewClient(&redis.Options{Addr: net.JoinHostPort(now[0], now[1]), Password: s.DataPassword, MaxRetries: -1})
		defer d.Close()
		return d.Set(ctx, "redistest:failover", "1", time.Second).Err()
	})
}

// KillMaster kills the master process (a crash), waits for the sentinel to promote the replica
// and for it to accept writes, and restarts nothing.
func (s *Sentinel) KillMaster() {
	s.t.Helper()
	old := s.MasterAddr()
	for _, n := range []*Server{s.Master, s.Replica} {
		if n.Addr() == old {
			n.Kill()
		}
	}
	s.waitNewMaster(old)
}

// wait polls cond; the deadline only stops a broken test from hanging.
func (s *Sentinel) wait(what string, cond func(context.Context) error) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redistest: gave up waiting for %s: %v\nsentinel log:\n%s", what, err, s.sentinel.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

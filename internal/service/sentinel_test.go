package service

import (
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/config"
)

// Two replicas on a real Redis Sentinel deployment (a master, its replica, a sentinel that
// requires its own password) share verified tokens. A failover, planned (SENTINEL FAILOVER) or
// after a crash (the master killed), costs no Check (DESIGN.md: never deny because the cache
// is down), and afterwards the replicas share entries and revocations through the new master.
func TestSentinelFailover(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failover func(*redistest.Sentinel)
	}{
		// A planned failover leaves the demoted master running: a subscription that stayed on
		// it would hear revocations again only once the sentinel has made it a replica (its
		// INFO period, about 10s). The cache follows the sentinels' +switch-master instead.
		{"planned", (*redistest.Sentinel).Failover},
		{"master killed", (*redistest.Sentinel).KillMaster},
	} {
		t.Run(tc.name, func(t *testing.T) { sentinelFailover(t, tc.failover) })
	}
}

// revocationsFollowWithin bounds how long after a failover a revocation may take to reach
// another replica. Following the master takes one sentinel message and one subscription (well
// under a second); the bound leaves room for a loaded machine, and is shorter than the
// sentinel's 10s INFO period that demoting the old master waits for.
const revocationsFollowWithin = 5 * time.Second

func sentinelFailover(t *testing.T, failover func(*redistest.Sentinel)) {
	st := redistest.StartSentinel(t)
	a, srv := as(t)
	dir := t.TempDir()
	dataPW, sentinelPW := filepath.Join(dir, "redis-password"), filepath.Join(dir, "sentinel-password")
	os.WriteFile(dataPW, []byte(st.DataPassword+"\n"), 0o600)
	os.WriteFile(sentinelPW, []byte(st.SentinelPassword+"\n"), 0o600)
	mod := func(c *config.Config) {
		c.Cache.Redis = &config.Redis{Mode: "sentinel", MasterName: st.Name, Addrs: st.Addrs(),
			Password: config.Secret{File: dataPW}, SentinelPassword: config.Secret{File: sentinelPW},
			Timeout: config.Duration(200 * time.Millisecond)}
	}
	r1 := replica(t, srv.URL, nil, mod)
	r2 := replica(t, srv.URL, nil, mod)

	// shared: a token introspected by r1 reaches r2 through Redis, not through the IdP.
	shared := func() bool {
		tok := a.IssueOpaque("sam", "c", []string{"mcp:tools"}, resource, time.Hour)
		if !allowed(checkToken(t, r1, tok)) {
			t.Fatal("r1 denied a good token")
		}
		before := r2.cache.Stats().L2Hits
		if !allowed(checkToken(t, r2, tok)) {
			t.Fatal("r2 denied a good token")
		}
		return r2.cache.Stats().L2Hits > before
	}
	if !shared() {
		t.Fatalf("r2 did not find r1's entry through Sentinel; readyz: %v", func() any { _, b := readyz(t, r2); return b["cache"] }())
	}
	known := a.IssueOpaque("kim", "c", []string{"mcp:tools"}, resource, time.Hour)
	checkToken(t, r1, known)

	// Checks keep flowing on both replicas, known and new tokens, across the failover.
	var denied, checks atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, r := range []*Service{r1, r2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := known
				if i%4 == 0 {
					tok = a.IssueOpaque("new", "c", []string{"mcp:tools"}, resource, time.Hour)
				}
				if !allowed(checkToken(t, r, tok)) {
					denied.Add(1)
				}
				checks.Add(1)
			}
		}()
	}
	oldMaster := st.MasterAddr()
	failover(st)
	switched := time.Now()
	// A little traffic after the switch too, whatever the clients have noticed so far.
	for n := checks.Load(); checks.Load() < n+20; {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if st.MasterAddr() == oldMaster {
		t.Fatal("no failover happened")
	}
	if d := denied.Load(); d > 0 {
		t.Errorf("%d of %d Checks denied during the failover", d, checks.Load())
	}

	// A revocation on r1 reaches r2 soon after the switch. Revoked again every 200ms: one
	// sent before r2 has followed the master is lost (r2 re-verifies what it holds instead).
	before := r2.cache.Stats().EvictionsReceived
	var sent time.Time
	for r2.cache.Stats().EvictionsReceived == before {
		if since := time.Since(switched); since > revocationsFollowWithin {
			t.Fatalf("no revocation reached r2 within %s of the failover (r1 publishes on the new master; r2's subscription did not follow it)", since.Round(time.Millisecond))
		}
		if time.Since(sent) > 200*time.Millisecond {
			if code := revoke(t, r1, url.Values{"token": {known}}, "admin-token"); code != 200 {
				t.Fatalf("revoke: %d", code)
			}
			sent = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("a revocation reached r2 %s after the failover", time.Since(switched).Round(time.Millisecond))

	// Recovery: entries are shared again through the new master.
	waitUntil(t, "entries shared through the new master", shared)
}

package cache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
)

// After a planned failover (SENTINEL FAILOVER: the old master keeps running, and go-redis
// leaves a subscription on it) the revocation subscription moves to the new master:
// revocations announced there arrive, and L1 entries from before the move are re-verified,
// since announcements made between the switch and the move were lost.
func TestSubscriptionFollowsSentinelMaster(t *testing.T) {
	st := redistest.StartSentinel(t)
	rc := cache.RedisConfig{Mode: cache.ModeSentinel, Addrs: st.Addrs(), MasterName: st.Name,
		Password: st.DataPassword, SentinelPassword: st.SentinelPassword}
	client := func() redis.UniversalClient {
		c, err := cache.NewRedisClient(rc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	clk, logs := newClock(), &logBuf{}
	a := newTiered(t, cache.Config{L1Size: 100, Redis: client(), Deployment: rc, Now: clk.Now})
	b := newTiered(t, cache.Config{L1Size: 100, Redis: client(), Deployment: rc, Now: clk.Now, Logger: logs.logger()})
	ctx := t.Context()
	key := b.Key("verified-before-the-failover")
	b.Set(ctx, key, rfcIdentity(clk.Now()), time.Hour)
	if _, _, ok := b.Get(ctx, key); !ok || b.Stats().L1Hits != 1 {
		t.Fatal("no L1 hit before the failover")
	}

	st.Failover()
	eventually(t, "the subscription to move to the new master", func() bool {
		return strings.Contains(logs.String(), "moving the revocation subscription") &&
			strings.Contains(logs.String(), "resubscribed")
	})
	// From Redis or a miss (then the IdP), but not from L1.
	if _, _, tier, ok := b.GetTier(ctx, key); ok && tier == "l1" {
		t.Fatal("an L1 entry from before the move was a hit; it should be re-verified")
	}
	if _, ok := b.Stale(key); !ok {
		t.Error("the entry from before the move is not even available as a stand-in (Stale)")
	}

	// a publishes on the new master once its own client has followed the switch; revoke
	// until one arrives.
	revoked := a.Key("revoked-after-the-failover")
	before := b.Stats().EvictionsReceived
	eventually(t, "a revocation announced on the new master to reach b", func() bool {
		if err := a.Revoke(ctx, revoked); err != nil {
			t.Log(err)
		}
		for range 20 {
			if b.Stats().EvictionsReceived > before {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	})
}

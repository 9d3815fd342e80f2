package service

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/config"
)

// Issue 15 item 3: whoever can write to Redis saves a token's entry before /admin/revoke and
// writes it back afterwards with a day of Redis lifetime. The replicas that received the
// revocation refuse it: the next Check verifies again and the AS's answer (revoked) stands.
func TestRevokedValueWrittenBackIsRefused(t *testing.T) {
	rs := redistest.Start(t)
	a, srv := as(t)
	// Negative entries (the AS saying "revoked") leave L1 quickly, so that the next Check
	// looks in Redis, where the saved value waits.
	const negTTL = 100 * time.Millisecond
	short := func(c *config.Config) { c.Cache.NegativeTTL = config.Duration(negTTL) }
	r1 := replica(t, srv.URL, []string{rs.Addr()}, short)
	r2 := replica(t, srv.URL, []string{rs.Addr()}, short)

	tok := a.IssueOpaque("alice", "c", []string{"mcp:tools"}, resource, time.Hour)
	if !allowed(checkToken(t, r1, tok)) || !allowed(checkToken(t, r2, tok)) {
		t.Fatal("a valid token denied")
	}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	saved := map[string][]byte{}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("KEYS: %v %v", keys, err)
	}
	for _, k := range keys {
		if v, err := rdb.Get(ctx, k).Bytes(); err == nil {
			saved[k] = v
		}
	}

	a.Revoke(tok)
	if code := revoke(t, r1, url.Values{"token": {tok}}, "admin-token"); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	deadline := time.Now().Add(5 * time.Second)
	for allowed(checkToken(t, r2, tok)) {
		if time.Now().After(deadline) {
			t.Fatal("replica 2 still allows a revoked token")
		}
		time.Sleep(20 * time.Millisecond)
	}

	for k, v := range saved {
		if err := rdb.Set(ctx, k, v, 86400000*time.Millisecond).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * negTTL) // the replicas' own negative entries are gone from L1
	before := a.Counts().Introspect
	for i, r := range []*Service{r1, r2} {
		if allowed(checkToken(t, r, tok)) {
			t.Errorf("replica %d allows the revoked token from a value written back into Redis", i+1)
		}
	}
	if a.Counts().Introspect == before {
		t.Error("the token was not verified again")
	}
}

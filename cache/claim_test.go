package cache_test

import (
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
)

// One replica claims a new token; the other waits and gets the first one's result from Redis.
func TestClaimAndAwait(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	ctx := t.Context()
	key := a.Key("new-token")

	if !a.Claim(ctx, key, 10*time.Second) {
		t.Fatal("first claim refused")
	}
	if b.Claim(ctx, key, 10*time.Second) {
		t.Fatal("second replica got the claim too")
	}
	type got struct {
		sub string
		ok  bool
	}
	done := make(chan got, 1)
	go func() {
		id, _, ok := b.Await(ctx, key, 5*time.Second)
		done <- got{id.Subject, ok}
	}()
	time.Sleep(20 * time.Millisecond) // B is polling
	a.Set(ctx, key, rfcIdentity(clk.Now()), time.Hour)
	a.Unclaim(ctx, key)
	if g := <-done; !g.ok || g.sub != rfcIdentity(clk.Now()).Subject {
		t.Fatalf("Await = %+v, want the claimant's entry", g)
	}
	if _, _, tier, ok := b.GetTier(ctx, key); !ok || tier != "l1" {
		t.Fatalf("the awaited entry is not in B's L1: tier %q ok %v", tier, ok)
	}
	if st := b.Stats(); st.ClaimsWaited != 1 || st.L2Misses != 0 {
		t.Errorf("ClaimsWaited %d, L2Misses %d: want 1 and 0 (polls are not misses)", st.ClaimsWaited, st.L2Misses)
	}
}

// A claim released without an entry (the claimant could not verify) ends the wait at once; a
// claim that is never released (the claimant died) ends it at maxWait.
func TestAwaitEnds(t *testing.T) {
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	clk, logs := newClock(), &logBuf{}
	a, b := pair(t, rdb, clk, logs)
	ctx := t.Context()

	key := a.Key("unverifiable")
	a.Claim(ctx, key, 10*time.Second)
	go func() { time.Sleep(20 * time.Millisecond); a.Unclaim(ctx, key) }()
	start := time.Now()
	if _, _, ok := b.Await(ctx, key, 5*time.Second); ok {
		t.Fatal("an entry from nowhere")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("waited %v after the claim was released", d)
	}

	dead := a.Key("claimant-died")
	a.Claim(ctx, dead, 10*time.Second)
	start = time.Now()
	if _, _, ok := b.Await(ctx, dead, 50*time.Millisecond); ok {
		t.Fatal("an entry from nowhere")
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before maxWait", d)
	}
}

// Without Redis, or with Redis down, nobody coordinates and everybody verifies.
func TestClaimWithoutRedis(t *testing.T) {
	ctx := t.Context()
	l1 := newTiered(t, cache.Config{L1Size: 10})
	key := l1.Key("t")
	if !l1.Claim(ctx, key, time.Second) || !l1.Claim(ctx, key, time.Second) {
		t.Fatal("L1-only cache refused a claim")
	}
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	down := newTiered(t, cache.Config{L1Size: 10, Redis: rdb, RedisTimeout: 20 * time.Millisecond})
	down.Claim(ctx, key, time.Second)
	srv.Kill()
	if !down.Claim(ctx, key, time.Second) {
		t.Fatal("Redis down: a claim was refused, so a Check would wait for nobody")
	}
}

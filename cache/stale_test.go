package cache_test

import (
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/cache"
)

// An entry past its deadline is no longer a hit, but for StaleGrace after it, and never past
// its token's exp nor after a revocation, it still stands in for its token while the token is
// re-verified (issue 15 item 12: a black-holed IdP at entry expiry).
func TestStaleGracePastDeadline(t *testing.T) {
	clk := newClock()
	const maxTTL, grace = time.Minute, 5 * time.Minute
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now, MaxTTL: maxTTL, StaleGrace: grace})
	ctx := t.Context()

	id := rfcIdentity(clk.Now()) // exp in an hour
	key := c.Key("verified-before")
	c.Set(ctx, key, id, time.Hour) // lives maxTTL
	short := rfcIdentity(clk.Now())
	short.Expiry = clk.Now().Add(maxTTL + time.Minute) // exp inside the grace
	shortKey := c.Key("expires-inside-the-grace")
	c.Set(ctx, shortKey, short, time.Hour)
	revoked := c.Key("revoked-at-this-replica")
	c.Set(ctx, revoked, id, time.Hour)
	neg := c.Key("invalid")
	c.SetNegative(ctx, neg, time.Hour)

	clk.Advance(maxTTL)
	if _, _, ok := c.Get(ctx, key); ok {
		t.Fatal("an entry past its deadline is still a hit")
	}
	got, ok := c.Stale(key)
	if !ok {
		t.Fatal("Stale misses an entry just past its deadline, within the grace")
	}
	sameIdentity(t, got, id)
	if _, ok := c.Stale(shortKey); !ok {
		t.Error("Stale misses an entry within the grace and before its exp")
	}
	if err := c.Revoke(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Stale(revoked); ok {
		t.Error("Stale returned a revoked token's entry")
	}
	if _, ok := c.Stale(neg); ok {
		t.Error("Stale returned a negative entry")
	}

	clk.Advance(time.Minute) // short's exp
	if _, ok := c.Stale(shortKey); ok {
		t.Error("Stale returned an entry at its token's exp")
	}
	clk.Advance(grace - time.Minute - time.Nanosecond)
	if _, ok := c.Stale(key); !ok {
		t.Error("Stale misses an entry at the end of its grace")
	}
	if _, _, ok := c.Get(ctx, key); ok {
		t.Error("an entry in its grace is a hit")
	}
	clk.Advance(time.Nanosecond)
	if _, ok := c.Stale(key); ok {
		t.Error("Stale returned an entry past its grace")
	}
	if n := c.Stats().StaleUsed; n != 3 {
		t.Errorf("StaleUsed = %d, want 3", n)
	}
}

// Without a grace, an entry stands in for nothing past its deadline.
func TestNoStaleGrace(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now, MaxTTL: time.Minute})
	key := c.Key("verified-before")
	c.Set(t.Context(), key, rfcIdentity(clk.Now()), time.Hour)
	clk.Advance(time.Minute)
	if _, ok := c.Stale(key); ok {
		t.Error("Stale returned an entry past its deadline with no grace configured")
	}
	if _, err := cache.New(t.Context(), required(cache.Config{Secret: secret, StaleGrace: -time.Second})); err == nil {
		t.Error("a negative stale grace was accepted")
	}
}

package cache_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/cache"
)

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  cache.Config
		want string
	}{
		{"no secret", cache.Config{}, "secret"},
		{"short secret", cache.Config{Secret: make([]byte, 31)}, "secret"},
		{"negative l1", cache.Config{Secret: secret, L1Size: -1}, "l1 size"},
		{"negative timeout", cache.Config{Secret: secret, RedisTimeout: -time.Second}, "redis timeout"},
		{"negative breaker", cache.Config{Secret: secret, Breaker: cache.BreakerConfig{Failures: -1}}, "breaker"},
		{"negative max ttl", cache.Config{Secret: secret, MaxTTL: -time.Second}, "max ttl"},
		{"negative revocation limit", cache.Config{Secret: secret, RevocationLimit: -1}, "revocation limit"},
		// Defaults have one home, package config: what it sets is required here.
		{"no max ttl", cache.Config{Secret: secret, RevocationLimit: 1}, "max ttl"},
		{"no revocation limit", cache.Config{Secret: secret, MaxTTL: time.Minute}, "revocation limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cache.New(t.Context(), tc.cfg)
			if err == nil {
				c.Close()
				t.Fatal("New accepted a bad config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	a := newTiered(t, cache.Config{})
	b := newTiered(t, cache.Config{Secret: []byte(strings.Repeat("another secret! ", 2))})
	k1, k2 := a.Key("token-one"), a.Key("token-two")
	if k1 == k2 {
		t.Fatal("two tokens share a key")
	}
	if a.Key("token-one") != k1 {
		t.Fatal("key is not deterministic")
	}
	if b.Key("token-one") == k1 {
		t.Fatal("key does not depend on the secret")
	}
	if strings.Contains(string(k1[:]), "token-one") {
		t.Fatal("key contains the token")
	}
	if a.Key("") == a.Key(" ") {
		t.Fatal("empty token collides")
	}
}

func TestL1Only(t *testing.T) {
	clk := newClock()
	logs := &logBuf{}
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now, Logger: logs.logger()})
	ctx := t.Context()
	key := c.Key("opaque-token-l1")
	if _, _, ok := c.Get(ctx, key); ok {
		t.Fatal("hit on an empty cache")
	}
	want := rfcIdentity(clk.Now())
	want.Claims = map[string]string{"username": "jdoe"}
	c.Set(ctx, key, want, time.Minute)
	got, neg, ok := c.Get(ctx, key)
	if !ok || neg {
		t.Fatalf("Get after Set: ok=%v negative=%v", ok, neg)
	}
	sameIdentity(t, got, want)

	clk.Advance(time.Minute - time.Nanosecond)
	if _, _, ok := c.Get(ctx, key); !ok {
		t.Fatal("entry gone before its TTL")
	}
	clk.Advance(time.Nanosecond)
	if _, _, ok := c.Get(ctx, key); ok {
		t.Fatal("entry returned at its TTL")
	}
	st := c.Stats()
	if st.L1Hits != 2 || st.L1Misses != 2 || st.Sets != 1 || st.L2Hits+st.L2Misses+st.L2Errors != 0 {
		t.Fatalf("stats %+v", st)
	}
	if h := c.Health(); h.RedisConfigured || h.BreakerState != "" {
		t.Fatalf("health without redis: %+v", h)
	}
	if err := c.Revoke(ctx, key); err != nil {
		t.Fatalf("Revoke without redis: %v", err)
	}
}

func TestNeverPastExpiry(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now})
	ctx := t.Context()
	id := rfcIdentity(clk.Now())
	id.Expiry = clk.Now().Add(10 * time.Second)
	key := c.Key("short-lived")
	c.Set(ctx, key, id, time.Hour)
	clk.Advance(10*time.Second - time.Nanosecond)
	if _, _, ok := c.Get(ctx, key); !ok {
		t.Fatal("entry gone before exp")
	}
	clk.Advance(time.Nanosecond)
	if _, _, ok := c.Get(ctx, key); ok {
		t.Fatal("entry returned at exp although the TTL was longer")
	}

	// Already expired, or no lifetime at all: nothing is stored.
	id.Expiry = clk.Now().Add(-time.Second)
	c.Set(ctx, c.Key("expired"), id, time.Hour)
	c.Set(ctx, c.Key("zero-ttl"), rfcIdentity(clk.Now()), 0)
	c.SetNegative(ctx, c.Key("negative-ttl"), -time.Second)
	for _, tok := range []string{"expired", "zero-ttl", "negative-ttl"} {
		if _, _, ok := c.Get(ctx, c.Key(tok)); ok {
			t.Errorf("%s: stored", tok)
		}
	}
	if s := c.Stats().Sets; s != 1 {
		t.Errorf("sets = %d, want 1", s)
	}

	// No exp (an API key): the TTL alone bounds it.
	apiKey := identity.Identity{Subject: "svc", Source: identity.SourceAPIKey}
	c.Set(ctx, c.Key("api-key"), apiKey, time.Minute)
	clk.Advance(time.Minute)
	if _, _, ok := c.Get(ctx, c.Key("api-key")); ok {
		t.Fatal("identity without exp outlived its TTL")
	}
}

func TestNegativeL1(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now})
	ctx := t.Context()
	key := c.Key("garbage")
	c.SetNegative(ctx, key, 10*time.Second)
	id, neg, ok := c.Get(ctx, key)
	if !ok || !neg || id.Subject != "" {
		t.Fatalf("negative entry: ok=%v negative=%v id=%+v", ok, neg, id)
	}
	// A later verification result replaces it.
	c.Set(ctx, key, rfcIdentity(clk.Now()), time.Minute)
	if _, neg, ok := c.Get(ctx, key); !ok || neg {
		t.Fatalf("positive after negative: ok=%v negative=%v", ok, neg)
	}
	c.SetNegative(ctx, c.Key("other"), 10*time.Second)
	clk.Advance(10 * time.Second)
	if _, _, ok := c.Get(ctx, c.Key("other")); ok {
		t.Fatal("negative entry outlived its TTL")
	}
}

func TestSetCopiesIdentity(t *testing.T) {
	clk := newClock()
	c := newTiered(t, cache.Config{L1Size: 100, Now: clk.Now})
	id := rfcIdentity(clk.Now())
	id.Claims = map[string]string{"username": "jdoe"}
	key := c.Key("copied")
	c.Set(t.Context(), key, id, time.Minute)
	id.Scopes[0] = "admin"
	id.Audience[0] = "https://evil.example/"
	id.Claims["username"] = "root"
	got, _, _ := c.Get(t.Context(), key)
	if got.Scopes[0] != "read" || got.Audience[0] != rfcResource || got.Claims["username"] != "jdoe" {
		t.Fatalf("caller's later changes reached the cache: %+v", got)
	}
}

func TestDisabled(t *testing.T) {
	c := newTiered(t, cache.Config{})
	key := c.Key("t")
	c.Set(t.Context(), key, rfcIdentity(time.Now()), time.Minute)
	if _, _, ok := c.Get(t.Context(), key); ok {
		t.Fatal("hit with L1 disabled and no Redis")
	}
	if st := c.Stats(); st.L1Misses != 0 || st.L1Hits != 0 {
		t.Fatalf("disabled L1 counted: %+v", st)
	}
}

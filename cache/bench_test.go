package cache_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/cache"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
)

// A 697-byte JWT-sized token, like the one in performance.md: Key hashes all of it.
var benchToken = func() string {
	b := make([]byte, 697)
	for i := range b {
		b[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."[i%65]
	}
	return string(b)
}()

func BenchmarkKey(b *testing.B) {
	c := newTiered(b, cache.Config{})
	b.ReportAllocs()
	for b.Loop() {
		if k := c.Key(benchToken); k == ([32]byte{}) {
			b.Fatal("zero key")
		}
	}
}

// BenchmarkL1Hit is the hot path of a cached token: Key + Get from L1 (target ≤ 1 µs, ≤ 5 allocs).
// Key hashes the whole token, so the JWT-sized case costs more.
func BenchmarkL1Hit(b *testing.B) {
	for _, tc := range []struct{ name, token string }{
		{"jwt697", benchToken},
		{"opaque46", benchToken[:46]},
	} {
		b.Run(tc.name, func(b *testing.B) {
			clk := newClock()
			c := newTiered(b, cache.Config{L1Size: 100_000, Now: clk.Now})
			c.Set(b.Context(), c.Key(tc.token), rfcIdentity(clk.Now()), time.Hour)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if id, neg, ok := c.Get(ctx, c.Key(tc.token)); !ok || neg || id.Subject == "" {
					b.Fatal("miss")
				}
			}
		})
	}
}

func BenchmarkL1HitParallel(b *testing.B) {
	clk := newClock()
	c := newTiered(b, cache.Config{L1Size: 100_000, Now: clk.Now})
	c.Set(b.Context(), c.Key(benchToken), rfcIdentity(clk.Now()), time.Hour)
	ctx := b.Context()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, ok := c.Get(ctx, c.Key(benchToken)); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

// BenchmarkL2Hit: Key + Get answered by a real redis-server on loopback (L1 disabled so every
// iteration goes there): one round trip, MAC check, decode.
func BenchmarkL2Hit(b *testing.B) {
	srv := redistest.Start(b)
	rdb := newClient(b, srv.Addr())
	clk := newClock()
	c := newTiered(b, cache.Config{Redis: rdb, Now: clk.Now, Intern: []string{rfcIssuer, rfcResource}})
	ctx := b.Context()
	c.Set(ctx, c.Key(benchToken), rfcIdentity(clk.Now()), time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if id, _, ok := c.Get(ctx, c.Key(benchToken)); !ok || id.Subject == "" {
			b.Fatal("miss")
		}
	}
}

// BenchmarkMiss: a token nobody has seen, through both tiers (L1 miss, Redis GET nil), and
// L1 only.
func BenchmarkMiss(b *testing.B) {
	tokens := make([]string, 1024)
	for i := range tokens {
		tokens[i] = benchToken[:600] + strconv.Itoa(i)
	}
	run := func(b *testing.B, c *cache.Tiered) {
		ctx := b.Context()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, _, ok := c.Get(ctx, c.Key(tokens[i%len(tokens)])); ok {
				b.Fatal("hit")
			}
			i++
		}
	}
	b.Run("l1", func(b *testing.B) {
		run(b, newTiered(b, cache.Config{L1Size: 100_000}))
	})
	b.Run("l1+redis", func(b *testing.B) {
		srv := redistest.Start(b)
		run(b, newTiered(b, cache.Config{L1Size: 100_000, Redis: newClient(b, srv.Addr())}))
	})
}

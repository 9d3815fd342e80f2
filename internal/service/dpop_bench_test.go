package service

import (
	"context"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/dpop/dpoptest"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/config"
)

// benchDPoP: a DPoP-bound JWT, cached after the first Check, and b.N fresh ES256 proofs made
// before the timer starts (each proof is good once). What a Check adds to
// BenchmarkCheckCachedJWT is one proof signature verification and the replay record: this
// replica's memory, or with redis one SET NX round trip on loopback.
func benchDPoP(b *testing.B, redisAddr string) {
	a, issuer := asServer(b)
	cfg := benchConfig(issuer, 1000)
	cfg.Resources[0].DPoP = config.BindingRequired
	if redisAddr != "" {
		cfg.Cache.Redis = &config.Redis{Addrs: []string{redisAddr}, Timeout: config.Duration(200 * time.Millisecond)}
		cfg.Cache.Secret = config.Secret{Env: "BENCH_CACHE_SECRET"}
		b.Setenv("BENCH_CACHE_SECRET", "bench-cache-secret-bench-cache-secret")
	}
	s := startBench(b, cfg)
	key := dpoptest.NewKey()
	tok := benchToken(b, a, issuer, map[string]any{"cnf": map[string]any{"jkt": key.JKT()}})
	const htu = "http://localhost:8080/mcp"
	proofs := make([]string, b.N+1)
	for i := range proofs {
		proofs[i] = key.Proof("POST", htu, tok, time.Now(), nil)
	}
	req := benchReq("")
	h := req.Attributes.Request.Http.Headers
	h["authorization"] = "DPoP " + tok
	h["dpop"] = proofs[b.N]
	ctx := context.Background()
	if r, _ := s.ext.Check(ctx, req); r.GetOkResponse() == nil {
		b.Fatal(r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h["dpop"] = proofs[i]
		if r, _ := s.ext.Check(ctx, req); r.GetOkResponse() == nil {
			b.Fatal(r)
		}
	}
}

func BenchmarkCheckCachedDPoP(b *testing.B) { benchDPoP(b, "") }

func BenchmarkCheckCachedDPoPRedis(b *testing.B) {
	rd := redistest.Start(b)
	benchDPoP(b, rd.Addr())
}

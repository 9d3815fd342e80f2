package service

import (
	"context"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// benchServiceIntrospect is benchServiceWith's service (one issuer, one resource, L1 of 1000)
// with the issuer also configured for RFC 7662 introspection, and two tokens the same demo AS
// issued for the same subject, client, audience and scopes: a JWT (about 800 characters) and
// an opaque token (43).
func benchServiceIntrospect(b *testing.B) (s *Service, jwt, opaque string, a *demoas.Server) {
	a, srv := asServer(b)
	cfg := benchConfig(srv, 1000)
	cfg.Issuers[0].Introspection = &config.Introspection{ClientID: "rs", ClientSecret: config.Secret{Env: "BENCH_RS_SECRET"}}
	b.Setenv("BENCH_RS_SECRET", "rs-secret") // asServer's introspection client
	s = startBench(b, cfg)
	jwt = benchToken(b, a, srv, nil)
	opaque = a.IssueOpaque("bench-user", "bench-client", []string{"mcp:tools", "mcp:read"}, resource, time.Hour)
	if strings.Count(opaque, ".") == 2 || strings.Count(jwt, ".") != 2 {
		b.Fatal("token kinds mixed up")
	}
	return s, jwt, opaque, a
}

// benchCached runs cached Checks of req and reports, beside ns/op, the process's CPU time per
// Check (cpu-ns/op: user and system, all threads, GC included), which a loaded machine
// distorts far less than wall time. It fails if the loop ever reached the IdP.
func benchCached(b *testing.B, s *Service, a *demoas.Server, req *authv3.CheckRequest) {
	ctx := context.Background()
	checkAllowed(ctx, b, s.ext, req)
	before := a.Counts()
	b.ReportAllocs()
	cpu0 := processCPU(b)
	for b.Loop() {
		checkAllowed(ctx, b, s.ext, req)
	}
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	if after := a.Counts(); after.Introspect != before.Introspect || after.JWKS != before.JWKS {
		b.Fatal("the loop reached the IdP: the token was not answered from the cache")
	}
}

// BenchmarkCheckCachedOpaque is BenchmarkCheckCachedJWT with an opaque token, answered from L1
// through the introspection verifier's cache entry.
func BenchmarkCheckCachedOpaque(b *testing.B) {
	s, _, opaque, a := benchServiceIntrospect(b)
	benchCached(b, s, a, benchReq(opaque))
}

// BenchmarkCheckCachedToken: a cached JWT and a cached opaque token for the same identity,
// through the same service in the same process. What jwt costs more than opaque is what a
// cached Check pays per byte of token (its HMAC cache key, its syntax check).
func BenchmarkCheckCachedToken(b *testing.B) {
	b.Run("jwt", func(b *testing.B) {
		s, jwt, _, a := benchServiceIntrospect(b)
		benchCached(b, s, a, benchReq(jwt))
	})
	b.Run("opaque", func(b *testing.B) {
		s, _, opaque, a := benchServiceIntrospect(b)
		benchCached(b, s, a, benchReq(opaque))
	})
}

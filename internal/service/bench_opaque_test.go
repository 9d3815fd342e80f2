package service

import (
	"context"
	"strings"
	"syscall"
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
	cfg := &config.Config{
		Listen: config.Listen{GRPC: "127.0.0.1:0"},
		Dev:    config.Dev{AllowHTTP: true},
		Cache:  config.Cache{L1Size: 1000},
		Issuers: []config.Issuer{{Issuer: srv, Introspection: &config.Introspection{
			ClientID: "rs", ClientSecret: config.Secret{Env: "RS_SECRET"}}}},
		Resources: []config.Resource{{Resource: resource, Scopes: config.Scopes{Required: []string{"mcp:tools"}}}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	s = startService(b, cfg, Options{Getenv: func(k string) string {
		if k == "RS_SECRET" {
			return "rs-secret" // asServer's introspection client
		}
		return ""
	}})
	jwt, err := a.Mint(map[string]any{"iss": srv, "sub": "bench-user", "aud": resource, "client_id": "bench-client",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "jti": "j", "scope": "mcp:tools mcp:read"},
		demoas.MintOptions{})
	if err != nil {
		b.Fatal(err)
	}
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
	if r, _ := s.ext.Check(ctx, req); r.GetOkResponse() == nil {
		b.Fatal(r)
	}
	before := a.Counts()
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if r, _ := s.ext.Check(ctx, req); r.GetOkResponse() == nil {
			b.Fatal(r)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if after := a.Counts(); after.Introspect != before.Introspect || after.JWKS != before.JWKS {
		b.Fatal("the loop reached the IdP: the token was not answered from the cache")
	}
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
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

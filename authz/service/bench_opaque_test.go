package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/config"
)

// BenchmarkCheckCachedOpaque is BenchmarkCheckCachedJWT with an opaque token: the same
// service (one issuer, one resource, L1 of 1000; the issuer also configured for RFC 7662
// introspection) and a token the same demo AS issued for the same subject, client, audience
// and scopes, 43 characters long instead of about 800. Run beside BenchmarkCheckCachedJWT:
// what the JWT costs more is what a cached Check pays per byte of token.
func BenchmarkCheckCachedOpaque(b *testing.B) {
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
	s := startService(b, cfg, Options{Getenv: func(k string) string {
		if k == "RS_SECRET" {
			return "rs-secret" // asServer's introspection client
		}
		return ""
	}})
	tok := a.IssueOpaque("bench-user", "bench-client", []string{"mcp:tools", "mcp:read"}, resource, time.Hour)
	if strings.Count(tok, ".") == 2 {
		b.Fatal("not an opaque token")
	}
	req := benchReq(tok)
	ctx := context.Background()
	if r, _ := s.ext.Check(ctx, req); r.GetOkResponse() == nil {
		b.Fatal(r)
	}
	before := a.Counts().Introspect
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := s.ext.Check(ctx, req); r.GetOkResponse() == nil {
			b.Fatal(r)
		}
	}
	if n := a.Counts().Introspect - before; n != 0 {
		b.Fatalf("%d introspection calls: the token was not answered from the cache", n)
	}
}

package service

import (
	"context"
	"fmt"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcp-authz/mcp-authz/authz/extauthz"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// benchService builds the real service (real JWT verifier against a real demoas issuer, real
// L1 cache) and returns its ext_authz server for in-process calls: CheckRequest in,
// CheckResponse out, no network on the measured path.
func benchService(b *testing.B, l1 int) (*extauthz.Server, string) {
	s, tok := benchServiceFull(b, l1)
	return s.ext, tok
}

// benchServiceFull is benchService's Service, started (listening on loopback).
func benchServiceFull(b *testing.B, l1 int) (*Service, string) {
	return benchServiceWith(b, l1, nil)
}

func benchServiceWith(b testing.TB, l1 int, mod func(*config.Config)) (*Service, string) {
	b.Helper()
	a, srv := asServer(b)
	cfg := benchConfig(srv, l1)
	if mod != nil {
		mod(cfg)
	}
	return startBench(b, cfg), benchToken(b, a, srv, nil)
}

// benchConfig is every in-process benchmark's configuration: one issuer, one resource that
// requires mcp:tools, L1 only (l1 entries).
func benchConfig(issuer string, l1 int) *config.Config {
	return &config.Config{
		Listen:    config.Listen{GRPC: "127.0.0.1:0"},
		Dev:       config.Dev{AllowHTTP: true},
		Cache:     config.Cache{L1Size: l1},
		Issuers:   []config.Issuer{{Issuer: issuer}},
		Resources: []config.Resource{{Resource: resource, Scopes: config.Scopes{Required: []string{"mcp:tools"}}}},
	}
}

// startBench validates cfg as a loaded file would be and starts the service on it.
func startBench(b testing.TB, cfg *config.Config) *Service {
	b.Helper()
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	return startService(b, cfg, Options{})
}

// benchToken mints the benchmarks' JWT for the resource, valid for an hour, with extra claims
// added.
func benchToken(b testing.TB, a *demoas.Server, issuer string, extra map[string]any) string {
	b.Helper()
	claims := map[string]any{"iss": issuer, "sub": "bench-user", "aud": resource, "client_id": "bench-client",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "jti": "j", "scope": "mcp:tools mcp:read",
		"groups": []string{"staff", "finance"}}
	for k, v := range extra {
		claims[k] = v
	}
	tok, err := a.Mint(claims, demoas.MintOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// loopAllowed is the shape of most benchmarks here: req once (its token is then cached),
// then b.N times in the measured loop, every answer an allow.
func loopAllowed(b *testing.B, ext *extauthz.Server, req *authv3.CheckRequest) {
	ctx := context.Background()
	checkAllowed(ctx, b, ext, req)
	b.ReportAllocs()
	for b.Loop() {
		checkAllowed(ctx, b, ext, req)
	}
}

// checkAllowed sends req and fails the benchmark unless it is allowed. A plain call, not a
// closure, so that the measured loop pays nothing for it.
func checkAllowed(ctx context.Context, b testing.TB, ext *extauthz.Server, req *authv3.CheckRequest) {
	if r, _ := ext.Check(ctx, req); r.GetOkResponse() == nil {
		b.Fatal(r)
	}
}

// toolCallReq is benchReq carrying a typical tools/call body (SEP-2243 headers absent, as
// from a 2025 client).
func toolCallReq(tok string) *authv3.CheckRequest {
	req := benchReq(tok)
	req.Attributes.Request.Http.Headers["content-type"] = "application/json"
	req.Attributes.Request.Http.RawBody = []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_documents","arguments":{"query":"quarterly revenue by region","limit":20,"filters":{"year":2026,"tags":["finance","report"]}},"_meta":{"progressToken":"p-42"}}}`)
	return req
}

func benchReq(tok string) *authv3.CheckRequest {
	h := map[string]string{}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	return extauthz.NewCheckRequest("POST", "localhost:8080", "/mcp", h)
}

// A JWT seen before: answered from L1 without signature verification.
func BenchmarkCheckCachedJWT(b *testing.B) {
	ext, tok := benchService(b, 1000)
	req := benchReq(tok)
	loopAllowed(b, ext, req)
}

// The cached JWT with a per-tool rule: the strict reader reads a typical tools/call body
// (SEP-2243 headers absent, as from a 2025 client) on every Check. Compare with
// BenchmarkCheckCachedJWT in the same run: the difference is the cost of reading the body.
func BenchmarkCheckCachedJWTToolCall(b *testing.B) {
	s, tok := benchServiceWith(b, 1000, func(c *config.Config) {
		c.Resources[0].MCP = &config.MCP{Tools: map[string][]string{"delete_file": {"files:write"}, "*": {"mcp:tools"}}}
	})
	req := toolCallReq(tok)
	loopAllowed(b, s.ext, req)
}

// The tool call above on a resource with ten rules (issue 17's target: at most 2 µs more than
// BenchmarkCheckCachedJWTToolCall in the same run): nine name other tools, one matches and
// evaluates a CEL condition over a claim and a tool argument.
func BenchmarkCheckCachedJWTToolCallRules10(b *testing.B) {
	s, tok := benchServiceWith(b, 1000, func(c *config.Config) {
		c.Resources[0].MCP = &config.MCP{Tools: map[string][]string{"delete_file": {"files:write"}, "*": {"mcp:tools"}}}
		for i := range 9 {
			c.Resources[0].Rules = append(c.Resources[0].Rules, config.Rule{
				Name: fmt.Sprintf("other-%d", i), Match: config.RuleMatch{Tools: []string{fmt.Sprintf("admin_%d_*", i)}},
				When: `claims.role == "admin"`,
			})
		}
		c.Resources[0].Rules = append(c.Resources[0].Rules, config.Rule{
			Name: "search", Match: config.RuleMatch{Tools: []string{"search_*"}},
			When: `"finance" in claims.groups && mcp.arguments.limit <= 50`,
		})
	})
	req := toolCallReq(tok)
	loopAllowed(b, s.ext, req)
}

// The same JWT verified every time (RS256-2048): the crypto bound.
func BenchmarkCheckUncachedJWT(b *testing.B) {
	ext, tok := benchService(b, -1)
	req := benchReq(tok)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := ext.Check(ctx, req); r.GetOkResponse() == nil {
			b.Fatal(r)
		}
	}
}

func BenchmarkCheckNoToken(b *testing.B) {
	ext, _ := benchService(b, 1000)
	req := benchReq("")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := ext.Check(ctx, req); r.GetDeniedResponse().GetStatus().GetCode() != 401 {
			b.Fatal(r)
		}
	}
}

func BenchmarkCheckMalformed(b *testing.B) {
	ext, _ := benchService(b, 1000)
	req := benchReq("not a token")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := ext.Check(ctx, req); r.GetDeniedResponse().GetStatus().GetCode() != 401 {
			b.Fatal(r)
		}
	}
}

package authz

import (
	"context"
	"testing"
)

// Issue 15 item 11: 401/403 carried Access-Control-Expose-Headers but no
// Access-Control-Allow-Origin, so a browser MCP client could not read the challenge.
func TestCORSOnDenials(t *testing.T) {
	acao := func(d *Decision) (string, bool) {
		for _, h := range d.Headers {
			if h.Name == "access-control-allow-origin" {
				return h.Value, true
			}
		}
		return "", false
	}
	any := testAuthorizer(t, nil)
	for _, r := range []*Request{
		req("POST", "/mcp", "origin", "https://app.example"),
		req("POST", "/mcp", "origin", "https://app.example", "authorization", "Bearer nope"),
		req("POST", "/mcp", "origin", "https://app.example", "authorization", "Bearer readonly"),
	} {
		d := any.Check(context.Background(), r)
		if v, ok := acao(d); d.Allow || !ok || v != "*" {
			t.Errorf("default: %d %s: access-control-allow-origin %q %v, want *", d.Status, d.Reason, v, ok)
		}
	}
	list := testAuthorizer(t, func(o *Options) { o.CORSAllowedOrigins = []string{"https://app.example"} })
	d := list.Check(context.Background(), req("POST", "/mcp", "origin", "https://app.example"))
	if v, _ := acao(d); v != "https://app.example" || headerOf(d, "vary") != "Origin" {
		t.Errorf("allowed origin: %q vary %q", v, headerOf(d, "vary"))
	}
	d = list.Check(context.Background(), req("POST", "/mcp", "origin", "https://evil.example"))
	if v, ok := acao(d); ok {
		t.Errorf("origin not in the list got %q", v)
	}
	// The shared denial is not changed by the per-request copy.
	d = list.Check(context.Background(), req("POST", "/mcp"))
	if _, ok := acao(d); ok {
		t.Error("the precomputed denial kept a request's origin")
	}
	// Metadata stays readable from anywhere.
	d = list.Check(context.Background(), req("GET", "/.well-known/oauth-protected-resource/mcp", "origin", "https://evil.example"))
	if v, _ := acao(d); v != "*" {
		t.Errorf("metadata: %q", v)
	}
}

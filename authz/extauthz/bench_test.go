package extauthz

import (
	"context"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz"
)

// The adapter's own cost, in process: translation both ways around a prebuilt decision.
func BenchmarkAdapterAllow(b *testing.B) {
	d := &authz.Decision{Allow: true, Headers: []authz.Header{{Name: "x-auth-subject", Value: "u"}, {Name: "x-auth-client-id", Value: "c"}, {Name: "x-auth-scopes", Value: "mcp:tools"}}, Remove: []string{"authorization"}}
	s := New(&recorder{d: d}, Options{})
	in := NewCheckRequest("POST", "mcp.example.com", "/mcp", map[string]string{"authorization": "Bearer x"})
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := s.Check(context.Background(), in); r.GetOkResponse() == nil {
			b.Fatal(r)
		}
	}
}

func BenchmarkAdapterDenyPrecomputed(b *testing.B) {
	d := &authz.Decision{Status: 401, Headers: []authz.Header{{Name: "www-authenticate", Value: "Bearer x"}}, Body: []byte("{}")}
	s := New(&recorder{d: d}, Options{})
	in := NewCheckRequest("POST", "mcp.example.com", "/mcp", nil)
	b.ReportAllocs()
	for b.Loop() {
		if r, _ := s.Check(context.Background(), in); r.GetDeniedResponse() == nil {
			b.Fatal(r)
		}
	}
}

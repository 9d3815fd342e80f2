package introspect

import (
	"context"
	"slices"
	"testing"
)

// TestAudienceStringIsOneAudience: aud as a string is one audience (RFC 7519 §4.1.3), as
// the JWT verifier reads it. Split on spaces, "https://other.example https://mcp…" named
// this resource, and an answer about a token for another API passed the audience check.
func TestAudienceStringIsOneAudience(t *testing.T) {
	a := newAS(t)
	a.answers = map[string]string{
		"tok": `{"active":true,"aud":"https://other.example https://mcp.example.com/mcp","scope":"a b"}`,
	}
	v, _ := newV(t, a, nil)
	id, err := v.Verify(context.Background(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://other.example https://mcp.example.com/mcp"}; !slices.Equal(id.Audience, want) {
		t.Errorf("audience %q, want %q", id.Audience, want)
	}
	if want := []string{"a", "b"}; !slices.Equal(id.Scopes, want) {
		t.Errorf("scopes %q, want %q (scope stays space-separated)", id.Scopes, want)
	}
}

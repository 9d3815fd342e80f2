package jwt

import (
	"errors"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// TestConfirmation: cnf.jkt and cnf.x5t#S256 are kept for the decision core; a cnf this
// service cannot check makes the token invalid, never a bearer token.
func TestConfirmation(t *testing.T) {
	f := setup(t, discoveryNone, nil)
	good := map[string]map[string]any{
		"dpop": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
		"mtls": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
	}
	for name, cnf := range good {
		cl := f.claims()
		cl["cnf"] = cnf
		id, err := f.v.Verify(t.Context(), mint(t, keyEC(), cl, nil))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		jkt, _ := cnf["jkt"].(string)
		x5t, _ := cnf["x5t#S256"].(string)
		if id.Confirmation != (identity.Confirmation{JKT: jkt, X5TS256: x5t}) {
			t.Errorf("%s: confirmation lost: %+v", name, id.Confirmation)
		}
	}
	for name, cnf := range map[string]any{
		"jwk method":   map[string]any{"jwk": map[string]any{"kty": "EC"}},
		"kid method":   map[string]any{"kid": "k1"},
		"jkt and jwk":  map[string]any{"jkt": "x", "jwk": map[string]any{}},
		"JKT variant":  map[string]any{"JKT": "x"},
		"empty object": map[string]any{},
		"empty jkt":    map[string]any{"jkt": ""},
		"numeric jkt":  map[string]any{"jkt": 5},
		"string":       "jkt",
	} {
		cl := f.claims()
		cl["cnf"] = cnf
		_, err := f.v.Verify(t.Context(), mint(t, keyEC(), cl, nil))
		var c identity.Classed
		if !errors.Is(err, identity.ErrInvalid) || !errors.As(err, &c) || c.DenialClass() != identity.ClassBinding {
			t.Errorf("%s: %v, want invalid (binding)", name, err)
		}
	}
}

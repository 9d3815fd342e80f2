package introspect

import (
	"context"
	"errors"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// TestConfirmation: an introspected DPoP token (RFC 9449 §6.2) keeps its cnf.jkt for the
// decision core; token_type DPoP without one, or a cnf this service cannot check, is invalid.
func TestConfirmation(t *testing.T) {
	a := newAS(t)
	a.answers = map[string]string{
		"tok-dpop":       `{"active":true,"token_type":"DPoP","cnf":{"jkt":"abc"}}`,
		"tok-dpop-case":  `{"active":true,"token_type":"dpop","cnf":{"jkt":"abc"}}`,
		"tok-mtls":       `{"active":true,"token_type":"Bearer","cnf":{"x5t#S256":"def"}}`,
		"tok-jkt-bearer": `{"active":true,"cnf":{"jkt":"abc"}}`,

		"tok-dpop-nocnf":  `{"active":true,"token_type":"DPoP"}`,
		"tok-dpop-x5t":    `{"active":true,"token_type":"DPoP","cnf":{"x5t#S256":"def"}}`,
		"tok-cnf-jwk":     `{"active":true,"cnf":{"jwk":{"kty":"EC"}}}`,
		"tok-cnf-variant": `{"active":true,"cnf":{"Jkt":"abc"}}`,
		"tok-cnf-dup":     `{"active":true,"cnf":{"jkt":"abc","jkt":"xyz"}}`,
	}
	v, _ := newV(t, a, nil)
	for tok, want := range map[string]identity.Confirmation{
		"tok-dpop": {JKT: "abc"}, "tok-dpop-case": {JKT: "abc"}, "tok-mtls": {X5TS256: "def"}, "tok-jkt-bearer": {JKT: "abc"},
	} {
		id, err := v.Verify(context.Background(), tok)
		if err != nil || id.Confirmation != want {
			t.Errorf("%s: %+v %v, want %+v", tok, id.Confirmation, err, want)
		}
	}
	for _, tok := range []string{"tok-dpop-nocnf", "tok-dpop-x5t", "tok-cnf-jwk", "tok-cnf-variant", "tok-cnf-dup"} {
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, identity.ErrInvalid) && !errors.Is(err, identity.ErrUnavailable) {
			t.Errorf("%s: %v, want refused", tok, err)
		}
	}
}

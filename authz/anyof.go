package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// AnyOf asks each verifier in turn and returns the first identity. An opaque token names no
// issuer, so with several introspection endpoints the only way to know whose it is, is to ask.
// The result is unavailable when no verifier accepted it and at least one could not answer:
// calling the token invalid then would be a guess.
func AnyOf(vs ...Verifier) Verifier {
	if len(vs) == 1 {
		return vs[0]
	}
	return anyOf(vs)
}

type anyOf []Verifier

func (a anyOf) Verify(ctx context.Context, token string) (identity.Identity, error) {
	var unavailable error
	for _, v := range a {
		id, err := v.Verify(ctx, token)
		if err == nil {
			return id, nil
		}
		if errors.Is(err, identity.ErrUnavailable) && unavailable == nil {
			unavailable = err
		}
	}
	if unavailable != nil {
		return identity.Identity{}, unavailable
	}
	return identity.Identity{}, fmt.Errorf("%w: no verifier accepted the token", identity.ErrInvalid)
}

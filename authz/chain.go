package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Chain is the verifier chain of DESIGN.md step 4, built by New from Options.Verifiers: a JWT
// goes to its issuer's verifier (then, when that is unavailable, to the issuer's own
// introspection), every other token to the opaque verifier. API keys are not part of it: the
// core checks them itself, uncached. A cache wraps it (Options.Cache).
type Chain struct {
	v   Verifiers
	log *slog.Logger
}

// Verify runs the chain for a token that is not a Bearer-scheme API key.
func (c *Chain) Verify(ctx context.Context, token string) (identity.Identity, error) {
	iss, v, ok := c.jwtVerifier(token)
	if ok {
		id, err := v.Verify(ctx, token)
		fb := c.v.Fallback[iss]
		if err == nil || !errors.Is(err, identity.ErrUnavailable) || errors.Is(err, identity.ErrKeyNotYetKnown) || fb == nil {
			return id, withIssuer(iss, err)
		}
		c.log.Debug("jwt verifier unavailable; trying the issuer's introspection", "issuer", iss, "error", err)
		id, err = fb.Verify(ctx, token)
		return id, withIssuer(iss, err)
	}
	if iss != "" {
		// A JWT naming no configured issuer: a near miss is worth saying so (only the denial's
		// log line pays for this comparison, and only when the token goes no further).
		if conf, how := c.nearIssuer(iss); conf != "" && c.v.Opaque == nil {
			return identity.Identity{}, &issuerError{issuer: conf, cls: identity.ClassIssuer, err: errNoVerifier,
				fix: "the token's iss differs from issuers[].issuer " + conf + " " + how + ": copy the issuer from the AS metadata byte for byte"}
		}
	}
	if c.v.Opaque == nil {
		if iss != "" {
			return identity.Identity{}, errUnknownIssuer
		}
		return identity.Identity{}, errNoVerifier
	}
	id, err := c.v.Opaque.Verify(ctx, token)
	if err != nil {
		if o, ok := c.v.Opaque.(interface{ Issuer() string }); ok {
			return id, withIssuer(o.Issuer(), err)
		}
	}
	return id, err
}

// Introspects says whether Verify would send token to introspection: the verification worth
// sharing between replicas (cache.VerifierOptions.Shared).
func (c *Chain) Introspects(token string) bool {
	if c.v.Opaque == nil {
		return false
	}
	_, _, isJWT := c.jwtVerifier(token)
	return !isJWT
}

// jwtVerifier is the verifier of the configured issuer a JWT's (unverified) iss names.
func (c *Chain) jwtVerifier(token string) (string, Verifier, bool) {
	iss, ok := peekIssuer(token)
	if !ok {
		return "", nil, false
	}
	v, ok := c.v.JWT[iss]
	return iss, v, ok
}

// nearIssuer is the configured issuer that iss differs from only by a trailing slash or by
// scheme, the mistakes that cost operators hours; "" when none. iss is unverified and is only
// compared, never logged.
func (c *Chain) nearIssuer(iss string) (string, string) {
	norm := func(s string) string {
		s = strings.TrimSuffix(s, "/")
		if _, rest, ok := strings.Cut(s, "://"); ok {
			s = rest
		}
		return strings.ToLower(s)
	}
	n := norm(iss)
	for conf := range c.v.JWT {
		if norm(conf) != n {
			continue
		}
		how := "by a trailing slash"
		if strings.HasSuffix(iss, "/") == strings.HasSuffix(conf, "/") {
			how = "by scheme or case"
		}
		return conf, how
	}
	return "", ""
}

var (
	errNoVerifier    = fmt.Errorf("%w: no verifier accepts this token", identity.ErrInvalid)
	errUnknownIssuer = &issuerError{cls: identity.ClassUnknownIssuer, err: errNoVerifier,
		fix: "a JWT whose iss is no configured issuer: add the issuer under issuers (mcp-authz doctor --token shows its iss)"}
)

// withIssuer ties a verifier's error to its issuer for Explain. Only the failure path pays.
func withIssuer(iss string, err error) error {
	if err == nil {
		return nil
	}
	return &issuerError{issuer: iss, err: err}
}

// uncached is the chain with no cache in front: every token is verified every time.
type uncached struct{ c *Chain }

func (uncached) Key(string) ([32]byte, bool) { return [32]byte{}, false }

func (u uncached) Verify(ctx context.Context, token string, _ [32]byte) (identity.Identity, string, error) {
	id, err := u.c.Verify(ctx, token)
	return id, TierIdP, err
}

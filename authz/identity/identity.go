// Package identity holds what a verified access token says about its caller, and the two ways
// verification can fail. It is a leaf: verifiers (authz/jwt, authz/introspect), the cache and the
// decision core all speak it, so none of them has to import another.
package identity

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Identity is a verified access token reduced to what decisions and identity headers need.
// It is independent of the resource being called: audience and scope are checked per request
// by the decision core, so one verification (and one cache entry) serves every resource.
type Identity struct {
	Issuer    string
	Subject   string
	ClientID  string
	Audience  []string
	Scopes    []string
	Expiry    time.Time // zero only for credentials that never expire (static API keys)
	NotBefore time.Time // zero when the token has none
	// Claims holds the extra claims chosen for identity headers, stringified.
	Claims map[string]string
	Source Source
}

// Source says which verifier produced an Identity.
type Source uint8

const (
	SourceJWT Source = iota + 1
	SourceIntrospection
	SourceAPIKey
)

func (s Source) String() string {
	switch s {
	case SourceJWT:
		return "jwt"
	case SourceIntrospection:
		return "introspection"
	case SourceAPIKey:
		return "apikey"
	}
	return "unknown"
}

// Verification errors fall in exactly two classes, because callers branch on nothing else:
// a bad token gets a 401 invalid_token; an unreachable IdP may fall back to another verifier.
// Verifiers wrap one of these with private detail (for logs), never with the token itself.
var (
	ErrInvalid     = errors.New("invalid token")
	ErrUnavailable = errors.New("verifier unavailable")
	// ErrKeyNotYetKnown is the one unavailable case that falls back to nothing: a JWT whose
	// key is not in keys fetched within the refresh interval may carry a key just rotated in
	// (retried, never cached as invalid), but anyone can make up a kid, and sending each such
	// token to introspection instead would turn forged JWTs into IdP calls.
	ErrKeyNotYetKnown = fmt.Errorf("%w: signing key not yet known", ErrUnavailable)
)

// Token is a credential that cannot leak through fmt or slog by accident.
type Token string

func (Token) String() string       { return "[REDACTED]" }
func (Token) GoString() string     { return "[REDACTED]" }
func (Token) LogValue() slog.Value { return slog.StringValue("[REDACTED]") }

// HasScope reports whether the identity was granted scope s exactly.
func (id *Identity) HasScope(s string) bool {
	for _, g := range id.Scopes {
		if g == s {
			return true
		}
	}
	return false
}

// Package identity holds what a verified access token says about its caller, and the two ways
// verification can fail. It is a leaf: verifiers (authz/jwt, authz/introspect), the cache and the
// decision core all speak it, so none of them has to import another.
package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	// Claims holds the extra claims that identity headers and policy rules name, each as its
	// JSON text (at most MaxClaimLen bytes; longer ones are left out). ClaimText renders one
	// for a header.
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

// MaxClaimLen bounds the JSON text of a kept claim: a group list of a few hundred entries fits;
// a claim past it is left out, and a rule reading it fails (denies).
const MaxClaimLen = 4096

// ClaimText renders a claim's JSON text for a header: strings as they are, numbers as written,
// booleans as true/false, arrays of strings joined with ","; objects, null and mixed arrays
// have no unambiguous header spelling (false).
func ClaimText(raw string) (string, bool) {
	if raw == "" {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal([]byte(raw), &s)
		return s, err == nil
	case 't', 'f':
		return raw, true
	case '[':
		var l []string
		if json.Unmarshal([]byte(raw), &l) != nil {
			return "", false
		}
		return strings.Join(l, ","), true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if !json.Valid([]byte(raw)) {
			return "", false
		}
		return raw, true // a JSON number, spelt as the issuer wrote it
	}
	return "", false // an object, null, or not JSON
}

// HasScope reports whether the identity was granted scope s exactly.
func (id *Identity) HasScope(s string) bool { return slices.Contains(id.Scopes, s) }

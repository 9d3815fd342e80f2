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

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
	// Confirmation is the token's cnf claim (RFC 7800): the key (RFC 9449 §6) or certificate
	// (RFC 8705 §3.1) it is bound to. A bound token is good only with proof of that key or
	// certificate; the decision core refuses it otherwise, on every resource.
	Confirmation Confirmation
}

// Confirmation holds the members of cnf this service can enforce. Both empty: a bearer token.
type Confirmation struct {
	JKT     string // cnf.jkt: base64url SHA-256 JWK thumbprint of the DPoP key (RFC 9449 §6.1)
	X5TS256 string // cnf["x5t#S256"]: base64url SHA-256 of the client certificate's DER (RFC 8705 §3.1)
}

// Bound reports whether the token is sender-constrained.
func (c Confirmation) Bound() bool { return c.JKT != "" || c.X5TS256 != "" }

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

// ErrUnsupportedConfirmation: a cnf claim binds the token in a way this service cannot check
// (cnf.jwk, cnf.kid, …); treating such a token as a bearer token would defeat the binding.
var ErrUnsupportedConfirmation = errors.New("cnf names no confirmation method this service checks")

// ParseConfirmation reads a cnf claim or introspection member (RFC 7800 §3.1): nil or absent is
// no binding; otherwise an object whose jkt and x5t#S256 members, matched exactly, are
// non-empty strings. Any other member binds the token to something unchecked: an error, as is
// a cnf without jkt or x5t#S256. raw has passed the strict JSON reader (no duplicates).
func ParseConfirmation(raw []byte) (Confirmation, error) {
	var c Confirmation
	if len(raw) == 0 || string(raw) == "null" {
		return c, nil
	}
	var m map[string]jsontext.Value
	if err := jsonv2.Unmarshal(raw, &m); err != nil {
		return c, fmt.Errorf("cnf is not a JSON object: %w", err)
	}
	for k, v := range m {
		var s string
		switch k {
		case "jkt", "x5t#S256":
			if err := jsonv2.Unmarshal(v, &s); err != nil || s == "" || len(s) > 128 {
				return Confirmation{}, fmt.Errorf("cnf.%s is not a thumbprint string", k)
			}
		default:
			return Confirmation{}, ErrUnsupportedConfirmation
		}
		if k == "jkt" {
			c.JKT = s
		} else {
			c.X5TS256 = s
		}
	}
	if !c.Bound() {
		return Confirmation{}, ErrUnsupportedConfirmation
	}
	return c, nil
}

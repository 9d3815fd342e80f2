// Package tokencheck is what the JWT verifier (authz/jwt) and the introspection verifier
// (authz/introspect) check alike, written once so that it means one thing in both: the token
// length limit, RFC 7519 NumericDates and the time checks, the aud and scope members, and the
// verification error with its private reason and public class.
package tokencheck

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// MaxTokenLen bounds what is parsed or sent to an IdP. Real access tokens are 1–4 KiB.
const MaxTokenLen = 16 << 10

// maxNumericDate is 9999-12-31T23:59:59Z: later dates are nonsense, and bounding them keeps
// time arithmetic away from overflow.
const maxNumericDate = 253402300799

// NumericDate converts an RFC 7519 §2 NumericDate, which may have a fraction.
func NumericDate(f float64) (time.Time, bool) {
	if !(f >= 0 && f <= maxNumericDate) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// Times are the time members of a token or an introspection answer, nil when absent.
type Times struct{ Exp, Nbf, Iat *float64 }

// TimeErrors are the errors Check returns, each verifier's own (with its prefix and class).
type TimeErrors struct {
	Malformed, Expired, NotYet, IssuedFuture error
}

// Check applies exp (expired once exp ≤ now − skew), nbf and iat (not after now + skew) and
// returns exp and nbf (zero when absent). iat is checked only when e.IssuedFuture is set.
func (t Times) Check(now time.Time, skew time.Duration, e TimeErrors) (exp, nbf time.Time, err error) {
	if t.Exp != nil {
		var ok bool
		if exp, ok = NumericDate(*t.Exp); !ok {
			return time.Time{}, time.Time{}, e.Malformed
		}
		if !now.Before(exp.Add(skew)) {
			return time.Time{}, time.Time{}, e.Expired
		}
	}
	if t.Nbf != nil {
		var ok bool
		if nbf, ok = NumericDate(*t.Nbf); !ok {
			return time.Time{}, time.Time{}, e.Malformed
		}
		if nbf.After(now.Add(skew)) {
			return time.Time{}, time.Time{}, e.NotYet
		}
	}
	if t.Iat != nil && e.IssuedFuture != nil {
		iat, ok := NumericDate(*t.Iat)
		if !ok {
			return time.Time{}, time.Time{}, e.Malformed
		}
		if iat.After(now.Add(skew)) {
			return time.Time{}, time.Time{}, e.IssuedFuture
		}
	}
	return exp, nbf, nil
}

// Audience is aud: a string is ONE audience (RFC 7519 §4.1.3, which RFC 7662 §2.2 refers to),
// never split on spaces: "https://evil https://mcp.example.com/mcp" is not two audiences.
type Audience []string

func (l *Audience) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '[':
		return json.Unmarshal(b, (*[]string)(l))
	case bytes.Equal(b, []byte("null")):
		*l = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*l = Audience{s}
	return nil
}

// Scope is scope (and scp): a string is space-separated (RFC 6749 §3.3, RFC 7662 §2.2,
// RFC 9068 §2.2.3); an array (Entra ID, Okta) has one scope per element, each split the same
// way so that the two spellings mean the same.
type Scope []string

func (l *Scope) UnmarshalJSON(b []byte) error {
	var raw []string
	switch {
	case len(b) > 0 && b[0] == '[':
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
	case bytes.Equal(b, []byte("null")):
		*l = nil
		return nil
	default:
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return errors.New("scope is neither a string nor an array of strings")
		}
		raw = []string{s}
	}
	*l = Merge(raw)
	return nil
}

// Merge splits each list's entries on spaces and keeps first occurrences in order; nil when
// nothing is left.
func Merge(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		for _, s := range l {
			for _, f := range strings.Fields(s) {
				if !slices.Contains(out, f) {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// Error is a verification failure: a fixed private reason (logs only), the kind callers branch
// on (identity.ErrInvalid or identity.ErrUnavailable), an optional cause (our own errors,
// never a token or secret), an optional marker for errors.Is, and the class operators see.
type Error struct {
	Reason string
	Kind   error
	Cause  error
	Also   error
	Class  identity.Class
}

// Invalid is a refusal of the token.
func Invalid(cls identity.Class, reason string) *Error {
	return &Error{Reason: reason, Kind: identity.ErrInvalid, Class: cls}
}

// Unavailable is a failure to decide.
func Unavailable(reason string, cause error) *Error {
	return &Error{Reason: reason, Kind: identity.ErrUnavailable, Cause: cause}
}

// WithClass sets the class of an unavailability and returns e.
func (e *Error) WithClass(cls identity.Class) *Error { e.Class = cls; return e }

func (e *Error) DenialClass() identity.Class {
	if e.Class == "" && e.Kind == identity.ErrUnavailable {
		return identity.ClassUnavailable
	}
	return e.Class
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Reason + ": " + e.Cause.Error()
	}
	return e.Reason
}

func (e *Error) Unwrap() []error {
	out := make([]error, 0, 3)
	out = append(out, e.Kind)
	if e.Cause != nil {
		out = append(out, e.Cause)
	}
	if e.Also != nil {
		out = append(out, e.Also)
	}
	return out
}

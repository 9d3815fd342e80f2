package authz

import "strings"

// maxTokenLen bounds what we are willing to hash, parse or send to an IdP. Real access tokens
// are a few KiB at most; Envoy's own header limit is 60 KiB by default.
const maxTokenLen = 16 << 10

// credentialResult is what extraction found.
type credentialResult uint8

const (
	credNone      credentialResult = iota // no credential in a supported place: bare challenge
	credToken                             // one well-formed Bearer token
	credMalformed                         // a Bearer credential that is not a b64token: invalid_token
	credMultiple                          // more than one credential: invalid_request
	credInQuery                           // access_token in the query string: invalid_request
)

// scheme is the authentication scheme a credential came in.
type scheme uint8

const (
	schemeBearer scheme = iota // RFC 6750
	schemeDPoP                 // RFC 9449 §7.1
	schemeBoth                 // a request with both: 400 in both challenges (RFC 9449 §7.2)
	schemeNone                 // no credentials: every accepted scheme's bare challenge
)

// extractCredential is extractBearer, and with dpop (the resource accepts DPoP) also the
// DPoP scheme, whose token has the same syntax (RFC 9449 §7.1). Where DPoP is not accepted,
// "Authorization: DPoP …" is a scheme we do not support: no credentials.
func extractCredential(authz string, present bool, query string, dpop bool) (string, credentialResult, scheme) {
	if !dpop {
		tok, c := extractBearer(authz, present, query)
		return tok, c, schemeBearer
	}
	if queryHasToken(query) {
		return "", credInQuery, schemeBearer
	}
	if !present {
		return "", credNone, schemeNone
	}
	v := strings.Trim(authz, " \t")
	if strings.IndexByte(v, ',') >= 0 {
		nb, nd := 0, 0
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimLeft(part, " \t")
			if hasBearerScheme(part) {
				nb++
			} else if hasDPoPScheme(part) {
				nd++
			}
		}
		switch {
		case nb > 0 && nd > 0:
			return "", credMultiple, schemeBoth
		case nb > 1:
			return "", credMultiple, schemeBearer
		case nd > 1:
			return "", credMultiple, schemeDPoP
		case hasBearerScheme(v):
			return "", credMalformed, schemeBearer
		case hasDPoPScheme(v):
			return "", credMalformed, schemeDPoP
		}
		return "", credNone, schemeNone
	}
	sc, n := schemeBearer, len("bearer")
	switch {
	case hasBearerScheme(v):
	case hasDPoPScheme(v):
		sc, n = schemeDPoP, len("dpop")
	default:
		return "", credNone, schemeNone
	}
	tok := strings.TrimLeft(v[n:], " ")
	if tok == "" || len(tok) > maxTokenLen || !isB64Token(tok) {
		return "", credMalformed, sc
	}
	return tok, credToken, sc
}

func hasDPoPScheme(v string) bool {
	return len(v) >= 4 && strings.EqualFold(v[:4], "dpop") && (len(v) == 4 || v[4] == ' ')
}

// extractBearer finds the access token per RFC 6750 §2.1. The scheme is case-insensitive
// (RFC 9110 §11.1) and separated from the token by one or more spaces. An Authorization header
// with another scheme (Basic, DPoP, ...) counts as no Bearer credential, so the client gets the
// bare challenge of RFC 6750 §3.1. Tokens in the query string are refused outright: the MCP
// specification forbids them and RFC 6750 §3.1 makes "more than one method" invalid_request.
func extractBearer(authz string, present bool, query string) (string, credentialResult) {
	if queryHasToken(query) {
		return "", credInQuery
	}
	if !present {
		return "", credNone
	}
	v := strings.Trim(authz, " \t")
	// Envoy joins repeated headers with ","; a comma can never appear in a b64token, so any
	// comma means a second credential (or a header we will not try to guess at).
	if strings.IndexByte(v, ',') >= 0 {
		if countBearer(v) > 1 {
			return "", credMultiple
		}
		if hasBearerScheme(v) {
			return "", credMalformed
		}
		return "", credNone
	}
	if !hasBearerScheme(v) {
		return "", credNone
	}
	tok := strings.TrimLeft(v[len("bearer"):], " ")
	if tok == "" || len(tok) > maxTokenLen || !isB64Token(tok) {
		return "", credMalformed
	}
	return tok, credToken
}

// hasBearerScheme: "Bearerabc" is another scheme's name, not Bearer.
func hasBearerScheme(v string) bool {
	return len(v) >= 6 && strings.EqualFold(v[:6], "bearer") && (len(v) == 6 || v[6] == ' ')
}

func countBearer(v string) int {
	n := 0
	for _, part := range strings.Split(v, ",") {
		if hasBearerScheme(strings.TrimLeft(part, " \t")) {
			n++
		}
	}
	return n
}

// b64tokenChar is 1 for the token68 characters of RFC 6750 §2.1, 0 for every other byte:
// ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/". A table because this runs over every byte
// of every token on the hot path; bytes rather than bools so that eight lookups AND together.
var b64tokenChar = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = 1, 1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	for _, c := range "-._~+/" {
		t[c] = 1
	}
	return t
}()

// isB64Token checks the RFC 6750 §2.1 grammar: 1*b64tokenChar *"=". It runs over every byte of
// every token on every Check, cached or not, so the bulk of a JWT is read eight bytes per
// step, with one test per step instead of one per byte; the byte-wise loop finishes what is
// left, and decides wherever a step found anything else (the padding, a bad byte).
func isB64Token(t string) bool {
	i := 0
	for ; len(t)-i >= 8; i += 8 {
		s := t[i : i+8]
		if b64tokenChar[s[0]]&b64tokenChar[s[1]]&b64tokenChar[s[2]]&b64tokenChar[s[3]]&
			b64tokenChar[s[4]]&b64tokenChar[s[5]]&b64tokenChar[s[6]]&b64tokenChar[s[7]] == 0 {
			break
		}
	}
	for i < len(t) && b64tokenChar[t[i]] != 0 {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return false
		}
	}
	return true
}

// queryHasToken reports an access_token parameter (RFC 6750 §2.3) in a raw query string,
// percent-encoded name included.
func queryHasToken(q string) bool {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		name, _, _ := strings.Cut(kv, "=")
		if name == "access_token" || strings.EqualFold(unescapeName(name), "access_token") {
			return true
		}
	}
	return false
}

// unescapeName undoes percent-encoding well enough to catch "access%5Ftoken"; anything it cannot
// decode is returned as is.
func unescapeName(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// schemeCredential returns the credential of an Authorization header in the given
// (lower-case) scheme, which is matched case-insensitively.
func schemeCredential(v, scheme string) (string, bool) {
	v = strings.Trim(v, " \t")
	if len(v) <= len(scheme) || v[len(scheme)] != ' ' || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimLeft(v[len(scheme):], " "), true
}

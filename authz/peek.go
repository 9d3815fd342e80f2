package authz

import (
	"encoding/base64"
	"strings"

	"github.com/mcp-authz/mcp-authz/authz/internal/strictjson"
)

// peekIssuer reads the iss claim of a compact JWS without verifying anything, only to choose
// which issuer's verifier (and keys) may look at the token. Trusting it for more than that
// would be a bug: the chosen verifier checks iss again after the signature. It reads as
// strictly as the verifier does, so that a payload with "iss" and "ISS" is not routed by one
// of them (it is no JWT any verifier would accept).
func peekIssuer(token string) (string, bool) {
	first := strings.IndexByte(token, '.')
	if first <= 0 {
		return "", false
	}
	rest := token[first+1:]
	second := strings.IndexByte(rest, '.')
	if second <= 0 || strings.IndexByte(rest[second+1:], '.') >= 0 {
		return "", false // not three segments (JWE has five)
	}
	payload, err := base64.RawURLEncoding.DecodeString(rest[:second])
	if err != nil {
		return "", false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if strictjson.Unmarshal(payload, &c) != nil || c.Iss == "" {
		return "", false
	}
	return c.Iss, true
}

package config

import "regexp"

// maxOpaqueTokenLength is the longest token mcp-authz sends anywhere (16 KiB).
const maxOpaqueTokenLength = 16 << 10

// validateOpaqueShape checks an issuer's opaque-token shape rules (key is its introspection
// block).
func validateOpaqueShape(bad func(key, format string, args ...any), key string, in *Introspection) {
	if p := in.OpaqueTokenPattern; p != "" {
		if _, err := regexp.Compile(p); err != nil {
			bad(key+".opaque_token_pattern", "not a valid regexp (Go RE2 syntax; it must match the whole token): %v", err)
		}
	}
	lo, hi := in.OpaqueTokenMinLength, in.OpaqueTokenMaxLength
	if lo < 0 {
		bad(key+".opaque_token_min_length", "%d: must be 0 (no minimum) or more", lo)
	}
	if hi < 0 || hi > maxOpaqueTokenLength {
		bad(key+".opaque_token_max_length", "%d: must be between 1 and %d, or 0 for no maximum", hi, maxOpaqueTokenLength)
	}
	if hi > 0 && lo > hi {
		bad(key+".opaque_token_min_length", "%d is above opaque_token_max_length %d", lo, hi)
	}
}

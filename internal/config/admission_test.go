package config

import (
	"strings"
	"testing"
	"time"
)

// The introspection admission and breaker keys: errors name the key and say what to write.
func TestIntrospectionAdmissionKeys(t *testing.T) {
	with := func(extra string) string {
		return strings.Replace(good, "- issuer: https://as.example.com",
			"- issuer: https://as.example.com\n    introspection: {client_id: rs, client_secret: {env: X}"+extra+"}", 1)
	}
	c, err := Parse([]byte(with(", opaque_token_pattern: '[A-Za-z0-9]+', opaque_token_prefix: at_, opaque_token_min_length: 20, opaque_token_max_length: 200")))
	if err != nil {
		t.Fatal(err)
	}
	in := c.Issuers[0].Introspection
	if in.OpaqueTokenPrefix != "at_" || in.OpaqueTokenMaxLength != 200 || in.CircuitBreaker.Failures != 5 || in.CircuitBreaker.OpenFor.D() != 5*time.Second {
		t.Errorf("parsed %+v", in)
	}
	for _, tc := range []struct{ extra, key, fix string }{
		{", opaque_token_pattern: '(['", "issuers[0].introspection.opaque_token_pattern", "regexp"},
		{", opaque_token_min_length: -1", "issuers[0].introspection.opaque_token_min_length", "0 (no minimum)"},
		{", opaque_token_max_length: 100000", "issuers[0].introspection.opaque_token_max_length", "between 1 and 16384"},
		{", opaque_token_min_length: 50, opaque_token_max_length: 40", "issuers[0].introspection.opaque_token_min_length", "above"},
		{", circuit_breaker: {failures: -1}", "issuers[0].introspection.circuit_breaker.failures", "at least 1"},
	} {
		_, err := Parse([]byte(with(tc.extra)))
		if err == nil || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.fix) {
			t.Errorf("%s: %v; want an error naming %s and saying %q", tc.extra, err, tc.key, tc.fix)
		}
	}
}

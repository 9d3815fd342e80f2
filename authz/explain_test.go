package authz

import (
	"context"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Explain names the class, the configured issuer and the fix; for a JWT whose iss misses a
// configured issuer by a trailing slash or by scheme it says which, without ever returning
// the token's own (unverified) iss as the issuer.
func TestExplain(t *testing.T) {
	a := testAuthorizer(t, func(o *Options) {
		o.Verifiers = Verifiers{JWT: map[string]Verifier{iss: tableVerifier{}}}
	})
	jwtWith := func(tokIss string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + b64(`{"iss":"`+tokIss+`"}`) + ".c2ln"
	}
	cases := []struct {
		tok, issuer string
		class       identity.Class
		fix         string
	}{
		{jwtWith(iss + "/"), iss, identity.ClassIssuer, "by a trailing slash"},
		{jwtWith(strings.Replace(iss, "https", "http", 1)), iss, identity.ClassIssuer, "by scheme"},
		{jwtWith("https://evil.example"), "", identity.ClassUnknownIssuer, "add the issuer under issuers"},
		{jwtWith(iss), iss, identity.ClassOther, ""}, // the table verifier's own error has no class
	}
	for _, tc := range cases {
		d := a.Check(context.Background(), req("POST", "/mcp", "authorization", "Bearer "+tc.tok))
		e := Explain(d.Err)
		if e.Issuer != tc.issuer || e.Class != tc.class || !strings.Contains(e.Fix, tc.fix) {
			t.Errorf("Explain = %+v, want issuer %q class %s fix ~%q (err %v)", e, tc.issuer, tc.class, tc.fix, d.Err)
		}
	}
}

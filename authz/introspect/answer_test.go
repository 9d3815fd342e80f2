package introspect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// Issue 14 item 3: an answer two JSON readers could read differently is invalid: never
// allowed (encoding/json took the last of "active":false,"Active":true) and never
// "unavailable" either (the server did answer, and a retry would get the same answer).
func TestAmbiguousAnswerInvalid(t *testing.T) {
	a := newAS(t)
	const aud = `"aud":"https://mcp.example/mcp"`
	a.answers = map[string]string{
		"tok-active-case":    `{"active":false,"Active":true,` + aud + `}`,
		"tok-active-dup":     `{"active":false,"active":true,` + aud + `}`,
		"tok-active-dup-rev": `{"active":true,"active":false,` + aud + `}`,
		"tok-aud-case":       `{"active":true,"aud":"https://other.example","AUD":"https://mcp.example/mcp"}`,
		"tok-scope-case":     `{"active":true,` + aud + `,"scope":"mcp:read","Scope":"mcp:tools"}`,
		"tok-sub-long-s":     `{"active":true,` + aud + `,"sub":"alice","\u017fub":"admin"}`,
		"tok-exp-case":       fmt.Sprintf(`{"active":true,`+aud+`,"exp":1,"EXP":%d}`, at(time.Hour)),
		"tok-token-use-case": `{"active":true,` + aud + `,"token_use":"refresh_token","Token_Use":"access_token"}`,
		"tok-nested-dup":     `{"active":true,` + aud + `,"ext":{"role":"user","role":"admin"}}`,
		"tok-invalid-utf8":   "{\"active\":true," + aud + ",\"sub\":\"al\xffice\"}",
		"tok-lone-surrogate": `{"active":true,` + aud + `,"sub":"\ud800"}`,
	}
	v, _ := newV(t, a, nil)
	for tok := range a.answers {
		id, err := v.Verify(context.Background(), tok)
		if err == nil {
			t.Errorf("%s: ALLOWED as %q, scopes %q, audience %q", tok, id.Subject, id.Scopes, id.Audience)
			continue
		}
		if !errors.Is(err, identity.ErrInvalid) || errors.Is(err, identity.ErrUnavailable) || !strings.Contains(err.Error(), "ambiguous") {
			t.Errorf("%s: %v, want invalid (ambiguous)", tok, err)
		}
	}
}

// Names match exactly: an answer with only "Active" has no active member, and "AUD" is no
// audience. Neither is allowed.
func TestAnswerNamesExact(t *testing.T) {
	a := newAS(t)
	a.answers = map[string]string{
		"tok-Active": `{"Active":true,"aud":"https://mcp.example/mcp"}`,
		"tok-AUD":    `{"active":true,"AUD":"https://mcp.example/mcp","SCOPE":"mcp:tools"}`,
	}
	v, _ := newV(t, a, nil)
	if _, err := v.Verify(context.Background(), "tok-Active"); !errors.Is(err, identity.ErrUnavailable) {
		t.Errorf("only Active: %v, want unavailable (no boolean active)", err)
	}
	id, err := v.Verify(context.Background(), "tok-AUD")
	if err != nil || id.Audience != nil || id.Scopes != nil {
		t.Errorf("AUD and SCOPE read as aud and scope: %+v, %v", id, err)
	}
}

// Issue 14 item 6: only access tokens pass. The answers are those real servers give for a
// refresh token (or an ID token) presented as a Bearer token, shaped after their source:
// Ory Hydra v2.3.0 (oauth2/handler.go: token_use from fosite, token_type always "Bearer",
// whatever token_type_hint says), Keycloak 26 (AccessTokenIntrospectionProvider: the token's
// claims, typ among them, and token_type = typ), node-oidc-provider.
func TestOnlyAccessTokensPass(t *testing.T) {
	a := newAS(t)
	const res = "https://mcp.example/mcp"
	exp, iat := at(time.Hour), at(-time.Minute)
	hydra := func(use string) string {
		return fmt.Sprintf(`{"active":true,"scope":"openid offline mcp:tools","client_id":"mcp-client","sub":"alice",`+
			`"exp":%d,"iat":%d,"nbf":%d,"aud":[%q],"iss":%q,"token_type":"Bearer","token_use":%q}`, exp, iat, iat, res, a.URL, use)
	}
	keycloak := func(typ, aud string) string {
		return fmt.Sprintf(`{"exp":%d,"iat":%d,"jti":"0f6f3b6e","iss":%q,"aud":%q,"sub":"5b7c","typ":%q,"azp":"mcp-client",`+
			`"sid":"9a1e","scope":"openid profile email mcp:tools","client_id":"mcp-client","username":"alice",`+
			`"token_type":%q,"active":true}`, exp, iat, a.URL, aud, typ, typ)
	}
	a.answers = map[string]string{
		"hydra-refresh":            hydra("refresh_token"),
		"keycloak-refresh":         keycloak("Refresh", a.URL),
		"keycloak-offline":         keycloak("Offline", a.URL),
		"keycloak-id-token":        keycloak("ID", "mcp-client"),
		"oidc-provider-6-refresh":  fmt.Sprintf(`{"active":true,"token_type":"refresh_token","sub":"alice","client_id":"mcp-client","exp":%d,"iat":%d,"iss":%q,"scope":"openid offline_access","aud":%q}`, exp, iat, a.URL, res),
		"rfc8693-refresh-type":     fmt.Sprintf(`{"active":true,"token_type":"urn:ietf:params:oauth:token-type:refresh_token","aud":%q}`, res),
		"rfc8693-id-token-type":    fmt.Sprintf(`{"active":true,"token_type":"urn:ietf:params:oauth:token-type:id_token","aud":%q}`, res),
		"token-use-id-token":       fmt.Sprintf(`{"active":true,"token_use":"id_token","aud":%q}`, res),
		"token-use-unknown":        fmt.Sprintf(`{"active":true,"token_use":"authorization_code","aud":%q}`, res),
		"token-use-not-a-string":   fmt.Sprintf(`{"active":true,"token_use":1,"aud":%q}`, res),
		"hint-echoed-refresh":      fmt.Sprintf(`{"active":true,"token_type_hint":"refresh_token","token_type":"Bearer","aud":%q}`, res),
		"typ-application-id-token": fmt.Sprintf(`{"active":true,"typ":"application/id_token+jwt","aud":%q}`, res),
		// Allowed: the same servers' access tokens.
		"hydra-access":    hydra("access_token"),
		"keycloak-access": strings.Replace(keycloak("Bearer", res), `"sid"`, `"nonce":"n-1","sid"`, 1), // Keycloak copies nonce into the answer
		"oidc-provider-9-refresh": fmt.Sprintf(`{"active":true,"sub":"alice","client_id":"mcp-client","exp":%d,"iat":%d,"sid":"s","iss":%q,"scope":"openid offline_access"}`,
			exp, iat, a.URL),
	}
	v, _ := newV(t, a, nil)
	for _, tok := range []string{"hydra-refresh", "keycloak-refresh", "keycloak-offline", "keycloak-id-token",
		"oidc-provider-6-refresh", "rfc8693-refresh-type", "rfc8693-id-token-type", "token-use-id-token",
		"token-use-unknown", "token-use-not-a-string", "hint-echoed-refresh", "typ-application-id-token"} {
		id, err := v.Verify(context.Background(), tok)
		if err == nil {
			t.Errorf("%s: ALLOWED as %q with audience %q", tok, id.Subject, id.Audience)
			continue
		}
		if !errors.Is(err, identity.ErrInvalid) || errors.Is(err, identity.ErrUnavailable) || !strings.Contains(err.Error(), "not an access token") {
			t.Errorf("%s: %v, want invalid (not an access token)", tok, err)
		}
	}
	for _, tok := range []string{"hydra-access", "keycloak-access"} {
		id, err := v.Verify(context.Background(), tok)
		if err != nil || id.Subject == "" || len(id.Audience) == 0 {
			t.Errorf("%s: %+v, %v; want allowed", tok, id, err)
		}
	}
	// node-oidc-provider v7+ marks a refresh token by leaving out token_type and aud: the
	// answer carries no audience, which no resource accepts (the decision core's aud check).
	id, err := v.Verify(context.Background(), "oidc-provider-9-refresh")
	if err != nil || id.Audience != nil {
		t.Errorf("oidc-provider v9 refresh token: %+v, %v; want an identity without audience", id, err)
	}
}

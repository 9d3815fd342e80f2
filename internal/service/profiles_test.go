package service

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// The documented token shapes of the products whose profiles cannot be tested live here
// (Keycloak, Entra ID, Auth0, Okta, Cognito), signed by the demo AS's real keys: each
// profile's access token passes with the profile and is refused without it where the product
// departs from RFC 9068, and each product's other tokens (ID, refresh) are refused either way.
// iss is the test server's (the products' issuer forms are in the profiles' documentation).
func TestProfileFixtures(t *testing.T) {
	a, srv := as(t)
	now := time.Now()
	base := func(extra map[string]any) map[string]any {
		c := map[string]any{"iss": srv.URL, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		maps.Copy(c, extra)
		return c
	}
	cases := []struct {
		name, profile, typ string // typ "-": no typ header
		claims             map[string]any
		audiences          []string // resources[0].audiences; default the resource
		withProfile        bool     // allowed with the profile
		without            bool     // allowed with the generic defaults
	}{
		// Keycloak: header typ JWT; payload typ Bearer, azp, scope string; aud from an
		// Audience mapper plus account.
		{"keycloak access token", "keycloak", "JWT", base(map[string]any{"typ": "Bearer", "azp": "mcp-client", "sub": "f1c5…",
			"aud": []string{resource, "account"}, "scope": "openid email mcp:tools", "sid": "s", "jti": "j1"}), nil, true, false},
		{"keycloak ID token", "keycloak", "JWT", base(map[string]any{"typ": "ID", "azp": "mcp-client", "aud": "mcp-client",
			"sub": "u", "nonce": "n", "at_hash": "h", "scope": "mcp:tools"}), nil, false, false},
		// Entra ID v2: typ JWT; delegated scp is a space-separated string; app-only tokens
		// carry roles instead and no scp; aud the API's application ID URI.
		{"entra delegated", "entra", "JWT", base(map[string]any{"aud": "api://mcp-api", "azp": "app-client", "tid": "t", "oid": "o",
			"scp": "mcp:tools User.Read", "ver": "2.0", "sub": "s", "nbf": now.Unix()}), []string{"api://mcp-api"}, true, false},
		{"entra app-only (roles)", "entra", "JWT", base(map[string]any{"aud": "api://mcp-api", "azp": "daemon", "tid": "t", "oid": "o",
			"roles": []string{"mcp:tools"}, "ver": "2.0", "sub": "o"}), []string{"api://mcp-api"}, true, false},
		// Auth0 (default token profile): typ JWT; aud the API identifier plus userinfo.
		{"auth0 access token", "auth0", "JWT", base(map[string]any{"sub": "auth0|123", "azp": "spa",
			"aud": []string{resource, srv.URL + "/userinfo"}, "scope": "openid mcp:tools", "permissions": []string{"mcp:tools"}}), nil, true, false},
		{"auth0 client credentials", "auth0", "JWT", base(map[string]any{"sub": "m2m@clients", "azp": "m2m", "gty": "client-credentials",
			"aud": resource, "scope": "mcp:tools"}), nil, true, false},
		// Auth0's RFC 9068 token profile types them at+jwt: allowed with or without.
		{"auth0 RFC 9068 profile", "auth0", "", base(map[string]any{"sub": "auth0|123", "client_id": "spa", "aud": resource, "scope": "mcp:tools"}), nil, true, true},
		// Okta: no typ; scp an array; cid the client; aud the authorization server's.
		{"okta access token", "okta", "-", base(map[string]any{"ver": 1, "jti": "AT.x", "aud": "api://default", "cid": "0oa1",
			"uid": "00u1", "scp": []string{"mcp:tools"}, "sub": "user@example.com"}), []string{"api://default"}, true, false},
		{"okta ID token", "okta", "-", base(map[string]any{"ver": 1, "aud": "0oa1", "sub": "00u1", "amr": []string{"pwd"},
			"nonce": "n"}), []string{"api://default"}, false, false},
		// Cognito: no typ; token_use; client_id and no aud, so no resource can be checked.
		{"cognito access token (no aud)", "cognito", "-", base(map[string]any{"sub": "u", "client_id": "c1", "token_use": "access",
			"scope": "mcp:tools", "username": "u"}), nil, false, false},
		{"cognito ID token", "cognito", "-", base(map[string]any{"sub": "u", "aud": "c1", "token_use": "id"}), nil, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := a.Mint(tc.claims, demoas.MintOptions{Typ: tc.typ})
			if err != nil {
				t.Fatal(err)
			}
			for _, withProfile := range []bool{true, false} {
				r := replicaWith(t, srv.URL, nil, func(c *config.Config) {
					c.Issuers[0].Introspection = nil
					if withProfile {
						c.Issuers[0].Profile = tc.profile
					}
					c.Resources[0].Audiences = tc.audiences
				}, Options{})
				want := tc.without
				if withProfile {
					want = tc.withProfile
				}
				if got := allowed(checkToken(t, r, tok)); got != want {
					t.Errorf("profile %v: allowed %v, want %v", withProfile, got, want)
				}
			}
		})
	}
}

// The introspection answers Keycloak and Okta document, served by an httptest endpoint that
// checks our credentials like theirs: an active access token passes, Keycloak's refresh token
// (its typ Refresh, even with the resource in aud) is refused.
func TestProfileIntrospectionFixtures(t *testing.T) {
	_, srv := as(t)
	now := time.Now().Unix()
	answers := map[string]map[string]any{
		"kc-access": {"active": true, "exp": now + 300, "iat": now, "jti": "j", "iss": srv.URL, "aud": []string{resource, "account"},
			"sub": "u", "typ": "Bearer", "azp": "mcp-client", "scope": "openid mcp:tools", "client_id": "mcp-client", "username": "alice"},
		"kc-refresh": {"active": true, "exp": now + 1800, "iat": now, "jti": "r", "iss": srv.URL, "aud": []string{resource, srv.URL},
			"sub": "u", "typ": "Refresh", "azp": "mcp-client", "scope": "openid mcp:tools", "client_id": "mcp-client"},
		"okta-access": {"active": true, "scope": "mcp:tools", "username": "alice@example.com", "exp": now + 300, "iat": now,
			"sub": "alice@example.com", "aud": resource, "iss": srv.URL, "jti": "AT.x", "token_type": "Bearer", "client_id": "0oa1", "uid": "00u1"},
	}
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, secret, ok := r.BasicAuth(); !ok || id != "rs" || secret != "rs-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		ans, ok := answers[r.PostFormValue("token")]
		if !ok {
			ans = map[string]any{"active": false}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(ep.Close)
	for _, p := range []string{"keycloak", "okta"} {
		r := replicaWith(t, srv.URL, nil, func(c *config.Config) {
			c.Issuers[0].Profile = p
			c.Issuers[0].Introspection.Endpoint = ep.URL
		}, Options{})
		for tok, want := range map[string]bool{"kc-access": true, "kc-refresh": false, "okta-access": true, "unknown": false} {
			if got := allowed(checkToken(t, r, tok)); got != want {
				t.Errorf("profile %s, %s: allowed %v, want %v", p, tok, got, want)
			}
		}
	}
}

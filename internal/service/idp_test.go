package service

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// A Bearer-scheme API key removed by a reload is refused at the next Check: it was never
// cached, neither in L1 nor in Redis (issue 15 item 4).
func TestRemovedAPIKeyRefusedAfterReload(t *testing.T) {
	_, srv := as(t)
	rd := redistest.Start(t)
	const key = "legacy-key-0123456789abcdef"
	sum := sha256.Sum256([]byte(key))
	r := replica(t, srv.URL, []string{rd.Addr()}, func(c *config.Config) {
		c.APIKeys.Keys = []config.APIKey{{SHA256: hex.EncodeToString(sum[:]), Subject: "legacy", Scopes: []string{"mcp:tools"}}}
		c.Resources[0].AllowAPIKeys = true
	})
	for range 2 { // the second one would come from the cache, if there were an entry
		if !allowed(checkToken(t, r, key)) {
			t.Fatal("the configured API key was refused")
		}
	}
	next := *r.live.Load().cfg
	next.APIKeys.Keys = nil
	if err := r.Reload(&next); err != nil {
		t.Fatal(err)
	}
	resp := checkToken(t, r, key)
	if allowed(resp) {
		t.Fatal("an API key removed by a reload was still allowed")
	}
	if code := resp.GetDeniedResponse().GetStatus().GetCode(); code != 401 {
		t.Errorf("removed API key: status %d, want 401", code)
	}
	// Another replica sharing the Redis never learnt the key either.
	other := replica(t, srv.URL, []string{rd.Addr()}, func(c *config.Config) { c.Resources[0].AllowAPIKeys = true })
	if allowed(checkToken(t, other, key)) {
		t.Error("a replica without the key allowed it from Redis")
	}
}

// countingIntrospection counts the tokens an introspection endpoint receives, answering
// inactive to all of them.
func countingIntrospection(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"active":false}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// fallback_to_introspection is per issuer: a JWT whose issuer's keys cannot be fetched goes to
// that issuer's own introspection endpoint when it has fallback, and to no other issuer's
// (issue 15 item 5). Another issuer's "inactive" would deny it, and be cached.
func TestFallbackIsPerIssuer(t *testing.T) {
	aAS, aSrv := as(t) // issuer A: its JWTs; JWKS down during the test
	_, bSrv := as(t)   // issuer B: introspection with fallback
	bIntro, bCalls := countingIntrospection(t)
	aIntro, aCalls := countingIntrospection(t)
	mintA := func(sub string) string {
		tok, err := aAS.Mint(map[string]any{"iss": aSrv.URL, "sub": sub, "aud": resource, "client_id": "c",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "scope": "mcp:tools"}, demoas.MintOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	issuerB := config.Issuer{Issuer: bSrv.URL, FallbackToIntrospection: true, Introspection: &config.Introspection{
		Endpoint: bIntro.URL, ClientID: "rs", ClientSecret: config.Secret{Env: "RS_SECRET"}}}

	t.Run("issuer without fallback", func(t *testing.T) {
		// Down before the replica starts: its start-up key fetch must not get A's keys.
		aAS.SetDown(true)
		defer aAS.SetDown(false)
		r := replica(t, aSrv.URL, nil, func(c *config.Config) {
			c.Issuers[0].Introspection = nil
			c.Issuers = append(c.Issuers, issuerB)
			c.Resources[0].AuthorizationServers = []string{aSrv.URL, bSrv.URL}
			c.Resources[0].Issuers = nil
		})
		tok := mintA("alice")
		// Twice: a second answer from the cache would say invalid.
		for range 2 {
			resp := checkToken(t, r, tok)
			if allowed(resp) || !strings.Contains(respHeader(resp.GetDeniedResponse().GetHeaders(), "www-authenticate"), "could not be verified right now") {
				t.Errorf("A's JWKS down: want the unavailable challenge, got %v", resp)
			}
		}
		if n := bCalls.Load(); n != 0 {
			t.Errorf("A's JWT was sent to B's introspection endpoint %d times", n)
		}
	})

	t.Run("issuer with fallback", func(t *testing.T) {
		bCalls.Store(0)
		aAS.SetDown(true)
		defer aAS.SetDown(false)
		r := replica(t, aSrv.URL, nil, func(c *config.Config) {
			c.Issuers[0].Introspection.Endpoint = aIntro.URL
			c.Issuers[0].FallbackToIntrospection = true
			c.Issuers = append(c.Issuers, issuerB)
			c.Resources[0].AuthorizationServers = []string{aSrv.URL, bSrv.URL}
			c.Resources[0].Issuers = nil
		})
		checkToken(t, r, mintA("bob"))
		if a, b := aCalls.Load(), bCalls.Load(); a != 1 || b != 0 {
			t.Errorf("A's JWT with A's keys down: introspected %d times by A, %d by B; want 1, 0", a, b)
		}
	})
}

// A JWT whose kid is not in the issuer's freshly fetched keys is "not verifiable yet" (a key
// may have just been rotated in), but it never falls back to introspection: anyone can make up
// a kid, and each forged token would otherwise cost the authorization server a call.
func TestMadeUpKidDoesNotFallBack(t *testing.T) {
	aAS, aSrv := as(t)
	aIntro, aCalls := countingIntrospection(t)
	r := replica(t, aSrv.URL, nil, func(c *config.Config) {
		c.Issuers[0].Introspection.Endpoint = aIntro.URL
		c.Issuers[0].FallbackToIntrospection = true
	})
	for i := range 5 {
		tok, err := aAS.Mint(map[string]any{"iss": aSrv.URL, "sub": "mallory", "aud": resource, "client_id": "c",
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(), "scope": "mcp:tools"},
			demoas.MintOptions{KID: fmt.Sprintf("made-up-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		if resp := checkToken(t, r, tok); allowed(resp) {
			t.Fatalf("a JWT with a made-up kid was allowed: %v", resp)
		}
	}
	if n := aCalls.Load(); n != 0 {
		t.Errorf("%d introspection calls for JWTs with made-up kids; want none", n)
	}
}

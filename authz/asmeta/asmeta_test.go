package asmeta

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/identity"
)

// as is an httptest authorization server that serves fixed documents by path and records
// every path it was asked for.
type as struct {
	*httptest.Server
	mu   sync.Mutex
	docs map[string]string // path → body; "{{ISSUER}}" is replaced by the server's base URL + tenant
	hits []string
}

func newAS(t *testing.T) *as {
	t.Helper()
	a := &as{docs: map[string]string{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hits = append(a.hits, r.URL.Path)
		body, ok := a.docs[r.URL.Path]
		a.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(strings.ReplaceAll(body, "{{BASE}}", a.URL)))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *as) serve(path, body string) {
	a.mu.Lock()
	a.docs[path] = body
	a.mu.Unlock()
}

func (a *as) requested() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.hits...)
}

const goodDoc = `{"issuer":"{{BASE}}%s","jwks_uri":"{{BASE}}/jwks","introspection_endpoint":"{{BASE}}/introspect","token_endpoint":"{{BASE}}/token","response_types_supported":["code"]}`

func doc(tenant string) string { return strings.Replace(goodDoc, "%s", tenant, 1) }

func TestDiscoverRFC8414Only(t *testing.T) {
	a := newAS(t)
	a.serve("/.well-known/oauth-authorization-server", doc(""))
	md, err := Discover(t.Context(), a.Client(), a.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := Metadata{Issuer: a.URL, JWKSURI: a.URL + "/jwks", IntrospectionEndpoint: a.URL + "/introspect", TokenEndpoint: a.URL + "/token"}
	if md != want {
		t.Errorf("got %+v, want %+v", md, want)
	}
	if got := a.requested(); len(got) != 1 {
		t.Errorf("requests %v: RFC 8414 answered, OIDC discovery should not be asked", got)
	}
}

func TestDiscoverOIDCOnly(t *testing.T) {
	a := newAS(t)
	a.serve("/.well-known/openid-configuration", doc(""))
	md, err := Discover(t.Context(), a.Client(), a.URL)
	if err != nil {
		t.Fatal(err)
	}
	if md.JWKSURI != a.URL+"/jwks" || md.Issuer != a.URL {
		t.Errorf("got %+v", md)
	}
	want := []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}
	if got := a.requested(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("requests %v, want %v", got, want)
	}
}

func TestDiscoverIssuerWithPath(t *testing.T) {
	for _, tc := range []struct {
		name, path string
	}{
		// RFC 8414 §3.1: the well-known segment goes between host and path.
		{"rfc8414", "/.well-known/oauth-authorization-server/tenant1"},
		// OIDC Discovery §4: it is appended to the issuer.
		{"oidc", "/tenant1/.well-known/openid-configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAS(t)
			a.serve(tc.path, doc("/tenant1"))
			// A document for the host's root issuer must not be taken for the tenant's.
			a.serve("/.well-known/oauth-authorization-server", doc(""))
			md, err := Discover(t.Context(), a.Client(), a.URL+"/tenant1")
			if err != nil {
				t.Fatal(err)
			}
			if md.Issuer != a.URL+"/tenant1" {
				t.Errorf("issuer %q", md.Issuer)
			}
		})
	}
}

func TestDiscoverIssuerTrailingSlashRemovedForPathInsertion(t *testing.T) {
	a := newAS(t)
	a.serve("/.well-known/oauth-authorization-server/tenant1", doc("/tenant1/"))
	md, err := Discover(t.Context(), a.Client(), a.URL+"/tenant1/")
	if err != nil {
		t.Fatal(err)
	}
	if md.Issuer != a.URL+"/tenant1/" {
		t.Errorf("issuer %q", md.Issuer)
	}
}

func TestDiscoverErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		issuer string // appended to the server URL
		docs   map[string]string
		status int // when non-zero, every request gets this status
		want   string
	}{
		{name: "404 both", want: "no metadata published (GET {{BASE}}/.well-known/oauth-authorization-server: status 404; GET {{BASE}}/.well-known/openid-configuration: status 404)"},
		{name: "issuer mismatch", docs: map[string]string{
			"/.well-known/oauth-authorization-server": `{"issuer":"https://elsewhere.example","jwks_uri":"x"}`,
		}, want: `issuer mismatch: metadata says "https://elsewhere.example", configured`},
		{name: "trailing slash is a different issuer", docs: map[string]string{
			"/.well-known/openid-configuration": `{"issuer":"{{BASE}}/","jwks_uri":"x"}`,
		}, want: "issuer mismatch"},
		{name: "tenant doc names another tenant", issuer: "/t1", docs: map[string]string{
			"/.well-known/oauth-authorization-server/t1": `{"issuer":"{{BASE}}/t2"}`,
		}, want: "issuer mismatch"},
		{name: "mismatch reported over a 404", docs: map[string]string{
			"/.well-known/oauth-authorization-server": `{"issuer":"https://elsewhere.example"}`,
		}, want: "issuer mismatch"},
		{name: "garbage", docs: map[string]string{
			"/.well-known/oauth-authorization-server": `<html>hello</html>`,
		}, want: "not a JSON metadata object"},
		{name: "truncated JSON", docs: map[string]string{
			"/.well-known/openid-configuration": `{"issuer":"{{BASE}}"`,
		}, want: "not a JSON metadata object"},
		{name: "null", docs: map[string]string{
			"/.well-known/openid-configuration": `null`,
		}, want: "not a JSON metadata object"},
		{name: "array", docs: map[string]string{
			"/.well-known/openid-configuration": `[{"issuer":"{{BASE}}"}]`,
		}, want: "not a JSON metadata object"},
		{name: "wrong type", docs: map[string]string{
			"/.well-known/openid-configuration": `{"issuer":42}`,
		}, want: "not a JSON metadata object"},
		{name: "huge", docs: map[string]string{
			"/.well-known/oauth-authorization-server": `{"issuer":"{{BASE}}","pad":"` + strings.Repeat("a", maxBody) + `"}`,
		}, want: "larger than"},
		{name: "5xx", status: http.StatusServiceUnavailable, want: "status 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAS(t)
			for p, d := range tc.docs {
				a.serve(p, d)
			}
			base := a.URL
			if tc.status != 0 {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(tc.status)
				}))
				defer srv.Close()
				base = srv.URL
			}
			md, err := Discover(t.Context(), a.Client(), base+tc.issuer)
			if err == nil {
				t.Fatalf("got %+v, want an error", md)
			}
			if !errors.Is(err, identity.ErrUnavailable) {
				t.Errorf("%v does not wrap ErrUnavailable", err)
			}
			if want := strings.ReplaceAll(tc.want, "{{BASE}}", base); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if md != (Metadata{}) {
				t.Errorf("metadata returned with an error: %+v", md)
			}
		})
	}
}

func TestDiscoverBadIssuer(t *testing.T) {
	for _, iss := range []string{"", "not a url", "ftp://as.example", "https://", "https://as.example/?q=1", "https://as.example/#f", "https://u:p@as.example", "://x"} {
		_, err := Discover(t.Context(), nil, iss)
		if err == nil || !errors.Is(err, identity.ErrUnavailable) {
			t.Errorf("Discover(%q) = %v, want an error wrapping ErrUnavailable", iss, err)
		}
	}
}

func TestDiscoverSlowServerPastDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := Discover(ctx, srv.Client(), srv.URL)
	if !errors.Is(err, identity.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("error %q does not say the deadline passed", err)
	}
}

func TestWellKnownURLs(t *testing.T) {
	for _, tc := range []struct{ issuer, rfc8414, oidc string }{
		{"https://as.example", "https://as.example/.well-known/oauth-authorization-server", "https://as.example/.well-known/openid-configuration"},
		{"https://as.example/", "https://as.example/.well-known/oauth-authorization-server", "https://as.example/.well-known/openid-configuration"},
		{"https://as.example/realms/a b", "https://as.example/.well-known/oauth-authorization-server/realms/a%20b", "https://as.example/realms/a%20b/.well-known/openid-configuration"},
		{"https://as.example:8443/t/", "https://as.example:8443/.well-known/oauth-authorization-server/t", "https://as.example:8443/t/.well-known/openid-configuration"},
	} {
		got, err := wellKnownURLs(tc.issuer)
		if err != nil {
			t.Errorf("%q: %v", tc.issuer, err)
			continue
		}
		if got[0] != tc.rfc8414 || got[1] != tc.oidc {
			t.Errorf("%q: got %q, want [%q %q]", tc.issuer, got, tc.rfc8414, tc.oidc)
		}
	}
}

// Issue 14: the metadata document is read strictly. A jwks_uri that one JSON reader takes from
// "jwks_uri" and another from "JWKS_URI" (or the last of two duplicates) is no jwks_uri at all.
func TestDiscoverAmbiguousDocumentRefused(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"jwks_uri and JWKS_URI", `{"issuer":"{{BASE}}","jwks_uri":"{{BASE}}/jwks","JWKS_URI":"https://attacker.example/jwks"}`},
		{"duplicate jwks_uri", `{"issuer":"{{BASE}}","jwks_uri":"https://attacker.example/jwks","jwks_uri":"{{BASE}}/jwks"}`},
		{"issuer and Issuer", `{"Issuer":"https://attacker.example","issuer":"{{BASE}}","jwks_uri":"{{BASE}}/jwks"}`},
		{"introspection_endpoint with a Kelvin sign", "{\"issuer\":\"{{BASE}}\",\"introspection_endpoint\":\"{{BASE}}/i\",\"introspection_endpoint\u212a\":1,\"\u212a\":1,\"k\":2}"},
		{"invalid UTF-8", "{\"issuer\":\"{{BASE}}\",\"jwks_uri\":\"{{BASE}}/jwks\",\"x\":\"\xff\"}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAS(t)
			a.serve("/.well-known/oauth-authorization-server", tc.doc)
			md, err := Discover(t.Context(), a.Client(), a.URL)
			if err == nil {
				t.Fatalf("ambiguous metadata used: %+v", md)
			}
			if !errors.Is(err, identity.ErrUnavailable) || !strings.Contains(err.Error(), "not a JSON metadata object") {
				t.Errorf("error %v", err)
			}
		})
	}
}

// Names match exactly: "JWKS_URI" alone is not jwks_uri (encoding/json would have taken it).
func TestDiscoverExactNames(t *testing.T) {
	a := newAS(t)
	a.serve("/.well-known/oauth-authorization-server", `{"issuer":"{{BASE}}","JWKS_URI":"{{BASE}}/jwks"}`)
	md, err := Discover(t.Context(), a.Client(), a.URL)
	if err != nil {
		t.Fatal(err)
	}
	if md.JWKSURI != "" {
		t.Errorf("jwks_uri %q read from JWKS_URI", md.JWKSURI)
	}
}

// An https issuer's metadata redirected to plain http is not fetched in clear: anyone on the
// path could then name their own jwks_uri.
func TestDiscoverRefusesHTTPSDowngradeRedirect(t *testing.T) {
	plain := newAS(t)
	tlsAS := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusFound)
	}))
	defer tlsAS.Close()
	plain.serve("/.well-known/oauth-authorization-server", `{"issuer":"`+tlsAS.URL+`","jwks_uri":"`+tlsAS.URL+`/jwks"}`)
	plain.serve("/.well-known/openid-configuration", `{"issuer":"`+tlsAS.URL+`","jwks_uri":"`+tlsAS.URL+`/jwks"}`)
	md, err := Discover(t.Context(), tlsAS.Client(), tlsAS.URL)
	if err == nil {
		t.Fatalf("metadata fetched over http after a redirect: %+v", md)
	}
	if !strings.Contains(err.Error(), "redirect from https to http refused") {
		t.Errorf("error %v", err)
	}
	if got := plain.requested(); len(got) != 0 {
		t.Errorf("the plain-http server was asked for %v", got)
	}
	// An http → http redirect (local testing) is still followed.
	hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusFound)
	}))
	defer hop.Close()
	plain.serve("/.well-known/oauth-authorization-server", `{"issuer":"`+hop.URL+`"}`)
	if _, err := Discover(t.Context(), hop.Client(), hop.URL); err != nil {
		t.Errorf("http → http redirect: %v", err)
	}
}

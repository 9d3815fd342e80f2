package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/deploy/hydra/hydratest"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

const doctorResource = "http://mcp.test/mcp"

// runDoctor writes yml to a file and runs `mcp-authz doctor` (or check-config --online) on it.
func runDoctor(t *testing.T, yml string, extra ...string) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	env := map[string]string{"RS_SECRET": "rs-secret", "WRONG_SECRET": "not-the-secret"}
	args := append(append([]string{"doctor"}, extra...), path)
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	code := 0
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case err != nil:
		t.Fatalf("doctor: %v\n%s", err, out.String())
	}
	return out.String(), code
}

func demoDoctorAS(t *testing.T, strip string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	a, err := demoas.New(demoas.Config{Issuer: srv.URL, Resources: []string{doctorResource}, DefaultResource: doctorResource,
		IntrospectionClients: map[string]string{"rs": "rs-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	h := a.Handler()
	if strip == "" {
		srv.Config.Handler = h
		return srv
	}
	// The same AS with one member taken out of its metadata (a real AS without a JWKS).
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/.well-known/") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var md map[string]any
		json.Unmarshal(rec.Body.Bytes(), &md)
		delete(md, strip)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(md)
	})
	return srv
}

func doctorYAML(issuer, issuerExtra string) string {
	return `
dev: {allow_http: true}
issuers:
  - issuer: ` + issuer + `
` + issuerExtra + `
resources:
  - resource: ` + doctorResource + `
    authorization_servers: [` + issuer + `]
`
}

const goodIntrospection = "    introspection: {client_id: rs, client_secret: {env: RS_SECRET}}\n"

// Each mistake the doctor knows is caught against the demo authorization server, named by key,
// with its fix, and makes it exit 2; a good configuration passes with 0.
func TestDoctorDemoAS(t *testing.T) {
	srv := demoDoctorAS(t, "")
	noJWKS := demoDoctorAS(t, "jwks_uri")
	https := "https://" + strings.TrimPrefix(srv.URL, "http://")
	cases := []struct {
		name, yml string
		code      int
		want      []string
	}{
		{"good", doctorYAML(srv.URL, goodIntrospection), 0, []string{"ok    issuers[0].issuer", "accepts our credentials", "all checks passed"}},
		{"good via check-config --online", "", 0, []string{"all checks passed"}},
		{"issuer with a trailing slash", doctorYAML(srv.URL+"/", ""), 2, []string{"FAIL  issuers[0].issuer", "differ by a trailing slash", "set issuer: " + srv.URL}},
		{"issuer with the wrong scheme", doctorYAML(https, ""), 2, []string{"FAIL  issuers[0].issuer", "differ by scheme", "set issuer: " + srv.URL}},
		{"no JWKS", doctorYAML(noJWKS.URL, ""), 2, []string{"FAIL  issuers[0].jwks_uri", "names no jwks_uri", "verify_jwt: false"}},
		{"credentials refused", doctorYAML(srv.URL, "    introspection: {client_id: rs, client_secret: {env: WRONG_SECRET}}\n"), 2, []string{"FAIL  issuers[0].introspection", "refused our credentials", "check client_id, client_secret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out string
			var code int
			if tc.yml == "" {
				out, code = runOnline(t, doctorYAML(srv.URL, goodIntrospection))
			} else {
				out, code = runDoctor(t, tc.yml)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("unreachable exits 3", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		out, code := runDoctor(t, doctorYAML(down.URL, ""))
		if code != exitDoctorUnreachable || !strings.Contains(out, "DOWN  issuers[0]") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
}

func runOnline(t *testing.T, yml string) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(yml), 0o600)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"check-config", "--online", path}, func(k string) string { return map[string]string{"RS_SECRET": "rs-secret"}[k] }, &out, &errb)
	if err != nil {
		t.Fatalf("check-config --online: %v\n%s", err, out.String())
	}
	return out.String(), 0
}

// Against a real Ory Hydra: its introspection is not in discovery, its JWTs are typed JWT, and
// a client that sends only resource= gets a token without aud. The doctor names each, and with
// profile: hydra and the admin endpoint everything passes. The sample token is never printed.
func TestDoctorHydra(t *testing.T) {
	h := hydratest.Start(t, "")
	c := hydratest.Client{ID: "agent", Secret: "agent-secret", Strategy: "jwt", Scope: "mcp:tools", Audience: []string{doctorResource}}
	h.Register(c)
	good := h.ClientCredentials(c, url.Values{"scope": {"mcp:tools"}, "audience": {doctorResource}}).AccessToken
	noAud := h.ClientCredentials(c, url.Values{"scope": {"mcp:tools"}, "resource": {doctorResource}}).AccessToken
	other := hydratest.Client{ID: "other", Secret: "other-secret", Strategy: "opaque", Scope: "mcp:tools", Audience: []string{"http://other.test/mcp"}}
	h.Register(other)
	otherAud := h.ClientCredentials(other, url.Values{"scope": {"mcp:tools"}, "audience": {"http://other.test/mcp"}}).AccessToken
	tokenFile := func(tok string) string {
		p := filepath.Join(t.TempDir(), "token")
		os.WriteFile(p, []byte(tok+"\n"), 0o600)
		return p
	}
	hydraGood := "    profile: hydra\n    introspection: {endpoint: " + h.Admin + "/admin/oauth2/introspect}\n"
	cases := []struct {
		name, extra, token string
		code               int
		want               []string
	}{
		{"introspection not advertised", "    introspection: {auth_method: none}\n", "", 2,
			[]string{"FAIL  issuers[0].introspection.endpoint", "advertises no introspection_endpoint", "/admin/oauth2/introspect"}},
		{"typ JWT without the profile", "", good, 2,
			[]string{`a JWT: typ "JWT"`, "FAIL  -token: refused (typ)", "set issuers[].profile"}},
		{"no aud: the client sent resource= only", hydraGood, noAud, 2,
			[]string{"FAIL  resources[0].audiences", "no aud", "audience= for Hydra"}},
		{"an opaque token for another resource", hydraGood, otherAud, 2,
			[]string{"introspected: iss", "FAIL  resources[0].audiences", `the token has aud ["http://other.test/mcp"]`}},
		{"good", hydraGood, good, 0,
			[]string{"issuers[0]: profile hydra", "introspection.auth_method: none", "ok    issuers[0].introspection", "ok    resources[0]", "all checks passed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			if tc.token != "" {
				extra = []string{"-token-file", tokenFile(tc.token)}
			}
			out, code := runDoctor(t, doctorYAML(h.Issuer, tc.extra), extra...)
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.token != "" && strings.Contains(out, tc.token[strings.LastIndexByte(tc.token, '.')+1:]) { // the signature, or the whole opaque token
				t.Error("the doctor printed the token")
			}
		})
	}
}

// Hydra's issuer is URLS_SELF_ISSUER as written: one configured with a trailing slash and
// an mcp-authz configured without it is the mistake behind a day of generic 401s.
func TestDoctorHydraIssuerSlash(t *testing.T) {
	h := hydratest.Start(t, "/")
	out, code := runDoctor(t, doctorYAML(strings.TrimSuffix(h.Issuer, "/"), "    profile: hydra\n"))
	for _, w := range []string{"FAIL  issuers[0].issuer", "differ by a trailing slash", "set issuer: " + h.Issuer} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if code != exitDoctorMismatch {
		t.Errorf("exit %d, want %d", code, exitDoctorMismatch)
	}
}

// check-config prints what a profile set, as comments.
func TestCheckConfigPrintsProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(doctorYAML("http://hydra.test", "    profile: hydra\n")), 0o600)
	out, _, err := runCmd("check-config", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"# issuers[0]: profile hydra", "#   set: allow_typ: [JWT]", "#   audience: only what the client asks for with audience="} {
		if !strings.Contains(out, w) {
			t.Errorf("check-config output lacks %q:\n%s", w, out)
		}
	}
}

// The doctor compares the resources' sender-constrained tokens with what the AS's metadata
// says it issues.
func TestDoctorSenderConstrained(t *testing.T) {
	srv := demoDoctorAS(t, "")
	noDPoP := demoDoctorAS(t, "dpop_signing_alg_values_supported")
	noMTLS := demoDoctorAS(t, "tls_client_certificate_bound_access_tokens")
	// An AS that takes ES256 proofs only (oidc-provider's default list is ES256, Ed25519, EdDSA).
	es256 := httptest.NewServer(nil)
	t.Cleanup(es256.Close)
	a, err := demoas.New(demoas.Config{Issuer: es256.URL, Resources: []string{doctorResource}})
	if err != nil {
		t.Fatal(err)
	}
	es256.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, r)
		var md map[string]any
		if !strings.Contains(r.URL.Path, "/.well-known/") || json.Unmarshal(rec.Body.Bytes(), &md) != nil {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		md["dpop_signing_alg_values_supported"] = []string{"ES256"}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(md)
	})
	with := func(issuer, global, resource string) string {
		return global + doctorYAML(issuer, "") + resource
	}
	cases := []struct {
		name, yml string
		code      int
		want, not []string
	}{
		{"DPoP, algs in common", with(srv.URL, "", "    dpop: required\n"), 0, []string{"ok    issuers[0]: issues DPoP-bound tokens; proof algorithms both accept: ES256 ES384"}, nil},
		{"DPoP, AS advertises none", with(noDPoP.URL, "", "    dpop: allowed\n"), 0, []string{"note  issuers[0]: the metadata has no dpop_signing_alg_values_supported", "resources[0].dpop: allowed"}, nil},
		{"DPoP, no alg in common", with(es256.URL, "dpop: {algs: [EdDSA, PS256]}\n", "    dpop: required\n"), 2, []string{"FAIL  dpop.algs: [EdDSA PS256], and " + es256.URL + " takes DPoP proofs in [ES256] only", "add one of [ES256] to dpop.algs"}, nil},
		{"DPoP off: nothing said", with(noDPoP.URL, "", ""), 0, nil, []string{"dpop"}},
		{"mtls_bound required, AS silent", with(noMTLS.URL, "", "    mtls_bound: required\n"), 0, []string{"note  issuers[0]: the metadata does not say tls_client_certificate_bound_access_tokens", "resources[0].mtls_bound: required"}, nil},
		{"mtls_bound required, AS says so", with(srv.URL, "", "    mtls_bound: required\n"), 0, nil, []string{"tls_client_certificate_bound_access_tokens"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runDoctor(t, tc.yml)
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("no %q in:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("%q in:\n%s", n, out)
				}
			}
		})
	}
}

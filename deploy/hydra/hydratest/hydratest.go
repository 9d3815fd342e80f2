// Package hydratest runs a real Ory Hydra v2.3.0 (built by deploy/hydra/build.sh into the
// tools cache) in memory on loopback ports for tests, with a login and consent helper that
// accepts every login as a fixed user and grants what the client asked for.
package hydratest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// Binary finds the Hydra build.sh made. Without it the test is skipped, except under CI
// (CI=true), where .ci/run builds it and its absence is a failure.
func Binary(t testing.TB) string {
	return testenv.CachedTool(t, "hydra-v2.3.0", "deploy/hydra/build.sh (several minutes, once)")
}

// Hydra is one running Hydra.
type Hydra struct {
	Public, Admin string // base URLs
	Issuer        string // what it puts in iss: Public, as configured (no trailing slash)
	Log           string // its log file
	login         *httptest.Server
	t             testing.TB
}

// Start runs Hydra with in-memory storage until the test ends. issuerSuffix is appended to
// the issuer URL it is configured with ("/" to reproduce a trailing-slash mismatch).
func Start(t testing.TB, issuerSuffix string) *Hydra {
	t.Helper()
	bin := Binary(t)
	h := &Hydra{t: t}
	h.login = httptest.NewServer(http.HandlerFunc(h.serveLoginConsent))
	t.Cleanup(h.login.Close)
	a := testenv.FreeAddrs(t, 2)
	pub, adm := a[0], a[1]
	h.Public, h.Admin = "http://"+pub, "http://"+adm
	h.Issuer = h.Public + issuerSuffix
	_, pubPort, _ := net.SplitHostPort(pub)
	_, admPort, _ := net.SplitHostPort(adm)
	h.Log = filepath.Join(t.TempDir(), "hydra.log")
	lf, err := os.Create(h.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command(bin, "serve", "all", "--dev")
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		"SECRETS_SYSTEM="+strings.Repeat("s", 32),
		"URLS_SELF_ISSUER="+h.Issuer,
		"URLS_LOGIN="+h.login.URL+"/login",
		"URLS_CONSENT="+h.login.URL+"/consent",
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+pubPort,
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+admPort,
		"LOG_LEVEL=warn", "SQA_OPT_OUT=true",
	)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(h.Log)
			t.Logf("--- hydra log:\n%s", b)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testenv.WaitURL(ctx, h.Admin+"/health/ready", exited); err != nil {
		b, _ := os.ReadFile(h.Log)
		t.Fatalf("hydra not ready: %v (%v)\n%s", err, cmd.ProcessState, b)
	}
	return h
}

// Client is an OAuth client registered at Hydra.
type Client struct {
	ID, Secret string
	// Strategy is the access token format: "jwt" or "opaque".
	Strategy string
	Scope    string   // space-separated scopes it may ask for
	Audience []string // audiences it may ask for (audience=)
	// Code: an authorization_code client (with refresh_token) rather than client_credentials.
	Code bool
}

// Register creates c at Hydra through its admin API.
func (h *Hydra) Register(c Client) {
	h.t.Helper()
	body := map[string]any{
		"client_id": c.ID, "client_secret": c.Secret, "scope": c.Scope, "audience": c.Audience,
		"access_token_strategy": c.Strategy, "token_endpoint_auth_method": "client_secret_basic",
		"grant_types": []string{"client_credentials"},
	}
	if c.Code {
		body["grant_types"] = []string{"authorization_code", "refresh_token"}
		body["response_types"] = []string{"code"}
		body["redirect_uris"] = []string{callback}
	}
	var out map[string]any
	if code := h.call(http.MethodPost, h.Admin+"/admin/clients", body, &out); code != http.StatusCreated {
		h.t.Fatalf("register client %s: status %d %v", c.ID, code, out)
	}
}

// callback is where codes are sent; it is never fetched (the redirect is read instead).
const callback = "http://127.0.0.1:1/callback"

// Tokens is a token endpoint answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// ClientCredentials gets a token for c with form (scope, audience, resource …).
func (h *Hydra) ClientCredentials(c Client, form url.Values) Tokens {
	h.t.Helper()
	form.Set("grant_type", "client_credentials")
	return h.token(c, form)
}

func (h *Hydra) token(c Client, form url.Values) Tokens {
	req, _ := http.NewRequest(http.MethodPost, h.Public+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tk Tokens
	if err := json.NewDecoder(resp.Body).Decode(&tk); err != nil || tk.AccessToken == "" {
		h.t.Fatalf("token for %s: status %d, %s %s (%v)", c.ID, resp.StatusCode, tk.Error, tk.Description, err)
	}
	return tk
}

// AuthorizationCode runs the authorization code flow with PKCE (S256) for c: the browser is
// an http.Client with a cookie jar, the login and consent helper accepts user "alice" and
// grants the scopes and audience asked for.
func (h *Hydra) AuthorizationCode(c Client, scope string, audience string) Tokens {
	h.t.Helper()
	verifier := random()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {callback}, "scope": {scope},
		"state": {random()}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	if audience != "" {
		q.Set("audience", audience)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(r.URL.String(), callback) {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	resp, err := browser.Get(h.Public + "/oauth2/auth?" + q.Encode())
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), callback) || loc.Query().Get("code") == "" {
		h.t.Fatalf("authorization: status %d, redirect %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return h.token(c, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {callback}, "code_verifier": {verifier}})
}

// serveLoginConsent is the login and consent app Hydra redirects the browser to.
func (h *Hydra) serveLoginConsent(w http.ResponseWriter, r *http.Request) {
	var redirect struct {
		To string `json:"redirect_to"`
	}
	switch r.URL.Path {
	case "/login":
		ch := url.QueryEscape(r.URL.Query().Get("login_challenge"))
		h.call(http.MethodPut, h.Admin+"/admin/oauth2/auth/requests/login/accept?login_challenge="+ch,
			map[string]any{"subject": "alice"}, &redirect)
	case "/consent":
		ch := url.QueryEscape(r.URL.Query().Get("consent_challenge"))
		var req struct {
			Scope    []string `json:"requested_scope"`
			Audience []string `json:"requested_access_token_audience"`
		}
		h.call(http.MethodGet, h.Admin+"/admin/oauth2/auth/requests/consent?consent_challenge="+ch, nil, &req)
		h.call(http.MethodPut, h.Admin+"/admin/oauth2/auth/requests/consent/accept?consent_challenge="+ch,
			map[string]any{"grant_scope": req.Scope, "grant_access_token_audience": req.Audience}, &redirect)
	}
	if redirect.To == "" {
		http.Error(w, "hydratest: no redirect from hydra", http.StatusBadGateway)
		return
	}
	http.Redirect(w, r, redirect.To, http.StatusFound)
}

// Revoke revokes a token the RFC 7009 way, at Hydra's public /oauth2/revoke, as client c.
// (Hydra v2.3.0 has no admin revoke by token; its admin API deletes a client's tokens.)
func (h *Hydra) Revoke(c Client, token string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.Public+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("revoke: status %d", resp.StatusCode)
	}
}

// RevokeClientTokens is the admin side's revocation: DELETE /admin/oauth2/tokens deletes
// every access and refresh token of the client.
func (h *Hydra) RevokeClientTokens(clientID string) {
	h.t.Helper()
	var out map[string]any
	if code := h.call(http.MethodDelete, h.Admin+"/admin/oauth2/tokens?client_id="+url.QueryEscape(clientID), nil, &out); code != http.StatusNoContent {
		h.t.Fatalf("delete tokens of %s: status %d %v", clientID, code, out)
	}
}

// Introspect asks Hydra's admin endpoint about token.
func (h *Hydra) Introspect(token string) map[string]any {
	h.t.Helper()
	resp, err := http.PostForm(h.Admin+"/admin/oauth2/introspect", url.Values{"token": {token}})
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func (h *Hydra) call(method, u string, body, out any) int {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, u, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Errorf("hydra %s %s: %v", method, u, err)
		return 0
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil && !errors.Is(err, io.EOF) {
		h.t.Errorf("hydra %s %s: status %d, %v", method, u, resp.StatusCode, err)
	}
	return resp.StatusCode
}

// random is 43 characters, the shortest PKCE code verifier RFC 7636 §4.1 allows.
func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// String helps failure messages.
func (h *Hydra) String() string { return fmt.Sprintf("hydra public %s admin %s", h.Public, h.Admin) }

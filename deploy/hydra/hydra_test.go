package hydra

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-authz/mcp-authz/authz/extauthz"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/deploy/hydra/hydratest"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/service"
)

const (
	resource = "http://mcp.test/mcp"
	host     = "mcp.test"
	// revalidateAfter is what the revocation measurement runs with.
	revalidateAfter = 2 * time.Second
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type edge struct {
	svc  *service.Service
	conn authv3.AuthorizationClient
	logs *logBuf
}

func startEdge(t *testing.T, h *hydratest.Hydra, redisAddr string, verifyJWT bool) *edge {
	t.Helper()
	// The configuration an operator would write for Hydra, from the template run.sh uses.
	tmpl, err := os.ReadFile("mcp-authz.yaml.in")
	if err != nil {
		t.Fatal(err)
	}
	yml := strings.NewReplacer("@GRPC@", "127.0.0.1:0", "@HTTP@", "127.0.0.1:0", "@REDIS@", redisAddr,
		"@ISSUER@", h.Issuer, "@ADMIN@", h.Admin, "@VERIFY_JWT@", fmt.Sprint(verifyJWT),
		"@REVALIDATE@", revalidateAfter.String()).Replace(string(tmpl))
	if regexp.MustCompile(`@[A-Z_]+@`).MatchString(yml) {
		t.Fatalf("a placeholder of mcp-authz.yaml.in was not filled in:\n%s", yml)
	}
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yml)
	}
	e := &edge{logs: &logBuf{}}
	env := map[string]string{"CACHE_SECRET": strings.Repeat("k", 32)}
	e.svc, err = service.New(cfg, service.Options{
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Getenv: func(k string) string { return env[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		e.svc.Shutdown(ctx)
		if t.Failed() {
			t.Logf("--- mcp-authz log:\n%s", e.logs)
		}
	})
	cc, err := grpc.NewClient(e.svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	e.conn = authv3.NewAuthorizationClient(cc)
	return e
}

// check sends one Check as Envoy would for POST /mcp with the token, returning the HTTP status
// the client would get (200 for allowed) and the WWW-Authenticate challenge.
func (e *edge) check(t *testing.T, token string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.conn.Check(ctx, extauthz.NewCheckRequest("POST", host, "/mcp", map[string]string{"authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOkResponse() != nil {
		return 200, ""
	}
	d := resp.GetDeniedResponse()
	var challenge string
	for _, h := range d.GetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), "www-authenticate") {
			challenge = h.GetHeader().GetValue()
		}
	}
	return int(d.GetStatus().GetCode()), challenge
}

func TestHydraInterop(t *testing.T) {
	h := hydratest.Start(t, "")
	rd := redistest.Start(t) // skips (fails under CI=true) without redis-server

	jwtC := hydratest.Client{ID: "agent-jwt", Secret: "agent-jwt-secret", Strategy: "jwt", Scope: "mcp:tools mcp:read", Audience: []string{resource}}
	opaqueC := hydratest.Client{ID: "agent-opaque", Secret: "agent-opaque-secret", Strategy: "opaque", Scope: "mcp:tools mcp:read", Audience: []string{resource}}
	codeJWT := hydratest.Client{ID: "app-jwt", Secret: "app-jwt-secret", Strategy: "jwt", Scope: "openid offline_access mcp:tools mcp:read", Audience: []string{resource}, Code: true}
	codeOpaque := hydratest.Client{ID: "app-opaque", Secret: "app-opaque-secret", Strategy: "opaque", Scope: "openid offline_access mcp:tools mcp:read", Audience: []string{resource}, Code: true}
	for _, c := range []hydratest.Client{jwtC, opaqueC, codeJWT, codeOpaque} {
		h.Register(c)
	}
	cc := func(c hydratest.Client, scope string) string {
		return h.ClientCredentials(c, url.Values{"scope": {scope}, "audience": {resource}}).AccessToken
	}
	// A fresh Hydra creates its access-token signing key on first use, and two first uses at
	// once (the JWKS fetch, a token) can each create one: the key a token is signed with may
	// then be missing from the keys mcp-authz fetched, until jwks_refresh_interval passes.
	// A Hydra in service has its key; so does this one once it has signed a token.
	cc(jwtC, "mcp:tools")
	e := startEdge(t, h, rd.Addr(), true)

	t.Run("client_credentials JWT (typ JWT, scp) allowed", func(t *testing.T) {
		tok := cc(jwtC, "mcp:tools")
		if strings.Count(tok, ".") != 2 {
			t.Fatalf("not a JWT: the client's access_token_strategy was ignored")
		}
		if code, ch := e.check(t, tok); code != 200 {
			t.Errorf("status %d %s", code, ch)
		}
	})
	t.Run("client_credentials opaque via admin introspection allowed", func(t *testing.T) {
		tok := cc(opaqueC, "mcp:tools")
		if !strings.HasPrefix(tok, "ory_at_") {
			t.Fatalf("not a Hydra opaque token")
		}
		if code, ch := e.check(t, tok); code != 200 {
			t.Errorf("status %d %s", code, ch)
		}
	})
	t.Run("authorization_code JWT and opaque allowed", func(t *testing.T) {
		for _, c := range []hydratest.Client{codeJWT, codeOpaque} {
			tk := h.AuthorizationCode(c, "openid offline_access mcp:tools", resource)
			if code, ch := e.check(t, tk.AccessToken); code != 200 {
				t.Errorf("%s: status %d %s", c.ID, code, ch)
			}
		}
	})
	t.Run("scope step-up: mcp:read gets 403 insufficient_scope, then mcp:tools passes", func(t *testing.T) {
		for _, c := range []hydratest.Client{jwtC, opaqueC} {
			code, ch := e.check(t, cc(c, "mcp:read"))
			if code != 403 || !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="mcp:tools"`) {
				t.Errorf("%s with mcp:read: %d %s", c.ID, code, ch)
			}
			if code, ch := e.check(t, cc(c, "mcp:read mcp:tools")); code != 200 {
				t.Errorf("%s after step-up: %d %s", c.ID, code, ch)
			}
		}
	})
	t.Run("refresh token refused", func(t *testing.T) {
		tk := h.AuthorizationCode(codeOpaque, "openid offline_access mcp:tools", resource)
		if tk.RefreshToken == "" {
			t.Fatal("no refresh token issued (offline_access)")
		}
		if in := h.Introspect(tk.RefreshToken); in["active"] != true || in["token_use"] != "refresh_token" {
			t.Fatalf("premise: Hydra's introspection of the refresh token says %v", in)
		}
		if code, ch := e.check(t, tk.RefreshToken); code != 401 || !strings.Contains(ch, `error="invalid_token"`) {
			t.Errorf("refresh token as bearer: %d %s", code, ch)
		}
		waitLog(t, e.logs, "class=not_access_token")
	})
	t.Run("resource= only: empty audience refused, the log says audience=", func(t *testing.T) {
		tok := h.ClientCredentials(jwtC, url.Values{"scope": {"mcp:tools"}, "resource": {resource}}).AccessToken
		if code, _ := e.check(t, tok); code != 401 {
			t.Errorf("a token without aud: status %d", code)
		}
		waitLog(t, e.logs, "audience= for Hydra")
	})
	t.Run("revocation reaches a cached opaque token within revalidate_after", func(t *testing.T) {
		tok := cc(opaqueC, "mcp:tools")
		if code, _ := e.check(t, tok); code != 200 {
			t.Fatalf("before revocation: %d", code)
		}
		h.Revoke(opaqueC, tok)
		took := untilDenied(t, e, tok)
		t.Logf("opaque token: revoked at Hydra, refused by mcp-authz %s later (revalidate_after %s, cache.max_ttl 5m)", took.Round(10*time.Millisecond), revalidateAfter)
	})
	t.Run("admin revocation (DELETE /admin/oauth2/tokens) reaches a cached opaque token", func(t *testing.T) {
		c := hydratest.Client{ID: "agent-admin-revoked", Secret: "agent-admin-revoked-secret", Strategy: "opaque", Scope: "mcp:tools", Audience: []string{resource}}
		h.Register(c)
		tok := cc(c, "mcp:tools")
		if code, _ := e.check(t, tok); code != 200 {
			t.Fatalf("before revocation: %d", code)
		}
		h.RevokeClientTokens(c.ID)
		took := untilDenied(t, e, tok)
		t.Logf("opaque token: its client's tokens deleted at Hydra's admin API, refused %s later", took.Round(10*time.Millisecond))
	})
	t.Run("a locally verified JWT outlives its revocation (documented trade-off)", func(t *testing.T) {
		tok := cc(jwtC, "mcp:tools")
		e.check(t, tok)
		h.Revoke(jwtC, tok)
		if in := h.Introspect(tok); in["active"] != false {
			t.Fatalf("premise: Hydra still calls the revoked JWT active: %v", in)
		}
		time.Sleep(revalidateAfter + 200*time.Millisecond)
		if code, _ := e.check(t, tok); code != 200 {
			t.Errorf("status %d: a JWT verified locally is valid until exp; if this changed, update the README", code)
		}
	})
}

// With verify_jwt: false, Hydra's JWTs are introspected like opaque tokens (Hydra supports it),
// so revalidate_after applies to them and a revocation reaches them too.
func TestHydraJWTIntrospectedOnSchedule(t *testing.T) {
	h := hydratest.Start(t, "")
	rd := redistest.Start(t)
	e := startEdge(t, h, rd.Addr(), false)
	c := hydratest.Client{ID: "agent-jwt", Secret: "agent-jwt-secret", Strategy: "jwt", Scope: "mcp:tools", Audience: []string{resource}}
	h.Register(c)
	tok := h.ClientCredentials(c, url.Values{"scope": {"mcp:tools"}, "audience": {resource}}).AccessToken
	if code, ch := e.check(t, tok); code != 200 {
		t.Fatalf("status %d %s", code, ch)
	}
	h.Revoke(c, tok)
	took := untilDenied(t, e, tok)
	t.Logf("JWT introspected on schedule: refused %s after its revocation (revalidate_after %s)", took.Round(10*time.Millisecond), revalidateAfter)
}

// untilDenied polls Check until the token is refused, and returns how long that took. The
// bound is generous; what matters is that it ends well before cache.max_ttl (5m).
func untilDenied(t *testing.T, e *edge, tok string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		code, _ := e.check(t, tok)
		if code == 401 {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the revoked token was still allowed after 30s (revalidate_after %s)", revalidateAfter)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitLog(t *testing.T, l *logBuf, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(l.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

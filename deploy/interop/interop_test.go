package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/deploy/internal/nodeenv"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// TestInterop: the SDK's MCP client, starting with no token, discovers everything from our
// 401 through nginx and reaches the SDK's MCP server with a JWT and with an opaque token; a
// client that may only hold mcp:read gets the 403 insufficient_scope step-up challenge.
// Then the SDK 2.x client (MCP 2026-07-28, Mcp-Method/Mcp-Name headers) on the payments
// resource, whose rule lets only the finance group call refund: allowed for one identity,
// refused for the other, and a header/body mismatch refused by the 2.x server behind nginx
// (headers only) and by mcp-authz itself on the ext_authz gRPC path (body).
func TestInterop(t *testing.T) {
	ngx := nodeenv.Need(t, "nginx", "apt-get install -y nginx", "/usr/sbin/nginx")
	h := newHarness(t)
	ctx, node, dir := h.ctx, h.node, h.dir
	rd := redistest.Start(t) // skips (fails under CI=true) without redis-server

	addr := testenv.FreeAddrs(t, 4)
	front, asAddr, upstream, authzHTTP := addr[0], addr[1], addr[2], addr[3]
	resource := "http://" + front + "/mcp" // the SDK requires the PRM resource to be the URL it calls
	payments := resource + "/payments"     // the SDK 2.x server, with the refund rule
	issuer := "http://" + asAddr

	asTLS := setupASTLS(t, dir) // oidc-provider's https listener, for certificate-bound tokens (mtls_test.go)
	h.start("oidc-provider", asAddr, node, "as.mjs", port(asAddr), resource, payments)
	serverLog := h.start("mcp-server", upstream, node, "server.mjs", port(upstream))

	// mcp-authz, in-process, from the configuration template run.sh uses, loaded as serve does.
	tmpl, err := os.ReadFile("mcp-authz.yaml.in")
	if err != nil {
		t.Fatal(err)
	}
	yml := strings.NewReplacer("@AUTHZ_HTTP@", authzHTTP, "@REDIS@", rd.Addr(), "@ISSUER@", issuer,
		"@RESOURCE@", resource, "@RESOURCE_PAYMENTS@", payments).Replace(string(tmpl))
	if regexp.MustCompile(`@[A-Z_]+@`).MatchString(yml) {
		t.Fatalf("a placeholder of mcp-authz.yaml.in was not filled in:\n%s", yml)
	}
	svc := h.mcpAuthz(yml, map[string]string{"CACHE_SECRET": strings.Repeat("k", 32), "RS_SECRET": "rs-secret"})

	h.startNginx(ngx, front, authzHTTP, upstream)

	// The premise of scenario (b): oidc-provider's introspection answer for an opaque token
	// requested for the resource carries aud = the resource (mcp-authz denies one without aud).
	t.Run("introspection answer carries aud", func(t *testing.T) {
		tok := tokenFor(ctx, t, issuer, "agent-opaque", "agent-opaque-secret", resource, "mcp:tools")
		var in map[string]any
		post(ctx, t, issuer+"/token/introspection", "rs", "rs-secret", url.Values{"token": {tok}}, &in)
		t.Logf("introspection: %v", in)
		if in["active"] != true || in["aud"] != resource || in["client_id"] != "agent-opaque" || in["scope"] != "mcp:tools" {
			t.Errorf("introspection answer %v: want active, aud %s, client_id agent-opaque, scope mcp:tools", in, resource)
		}
	})

	// Each scenario's expectations are checked by client.mjs --expect (run.sh uses the same);
	// its problems become test errors here.
	scenarios := []struct{ name, expect, id, secret, scope string }{
		{"a JWT access token", "ok-jwt", "agent", "agent-secret", "mcp:tools"},
		{"b opaque access token via introspection", "ok-opaque", "agent-opaque", "agent-opaque-secret", "mcp:tools"},
		{"c mcp:read only gets 403 insufficient_scope", "insufficient_scope", "reader", "reader-secret", "mcp:read"},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			runClient(ctx, t, node, "client.mjs", sc.expect, resource, sc.id, sc.secret, issuer, sc.scope)
		})
	}

	// SDK 2.x on the payments resource. The premise: oidc-provider puts the groups claim the
	// refund rule reads in the access tokens, finance for one client and not for the other.
	t.Run("groups claim in the access tokens", func(t *testing.T) {
		for id, want := range map[string]string{"finance": "finance", "agent": "support"} {
			claims := jwtClaims(t, tokenFor(ctx, t, issuer, id, id+"-secret", payments, "mcp:tools"))
			if g, _ := claims["groups"].([]any); len(g) != 1 || g[0] != want || claims["aud"] != payments {
				t.Errorf("%s's token: groups %v, aud %v; want [%s], %s", id, claims["groups"], claims["aud"], want, payments)
			}
		}
	})
	sdk2 := []struct{ name, expect, id string }{
		{"d sdk2 finance: echo and refund allowed", "allowed", "finance"},
		{"e sdk2 support: echo allowed, refund 403 without a challenge", "denied", "agent"},
	}
	for _, sc := range sdk2 {
		t.Run(sc.name, func(t *testing.T) {
			runClient(ctx, t, node, "client2.mjs", sc.expect, payments, sc.id, sc.id+"-secret", issuer, "mcp:tools")
		})
	}

	// f: a header/body mismatch. The 2.x client's own echo request, its body changed to call
	// refund and its headers kept (Mcp-Name: echo), sent by client2.mjs through nginx.
	var tampered struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	t.Run("f mismatch through nginx: mcp-authz allows by the headers, the sdk2 server refuses", func(t *testing.T) {
		line := runClient(ctx, t, node, "client2.mjs", "mismatch", payments, "agent", "agent-secret", issuer, "mcp:tools")
		var r struct {
			Mismatch struct {
				Tampered json.RawMessage `json:"tampered"`
			} `json:"mismatch"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil || json.Unmarshal(r.Mismatch.Tampered, &tampered) != nil || tampered.Body == "" {
			t.Fatalf("client2.mjs recorded no tampered request: %v", err)
		}
		// The other half: the tampered request passed mcp-authz. nginx sets x-auth-client-id
		// only from mcp-authz's 200, and the SDK server's log shows the request with it.
		reqs := serverLines(t, serverLog, `"payments_request"`)
		if !slices.ContainsFunc(reqs, func(l string) bool {
			return strings.Contains(l, `"mcp_name":"echo","body_method":"tools/call","body_name":"refund","client_id":"agent"`)
		}) {
			t.Errorf("the tampered request (Mcp-Name echo, body refund) did not reach the payments server with mcp-authz's identity: %q", reqs)
		}
	})

	// The same request on the gRPC path: Envoy's ext_authz with with_request_body gives
	// mcp-authz the body, and mcp-authz refuses the disagreement itself. Envoy cannot be
	// installed here, so the test builds the CheckRequest Envoy would send from the request
	// client2.mjs sent and calls the running mcp-authz's gRPC Check: the closest substitute.
	t.Run("f mismatch on the ext_authz gRPC path: mcp-authz refuses 400 -32020", func(t *testing.T) {
		if tampered.Body == "" {
			t.Fatal("no tampered request to put to mcp-authz: the nginx half above failed")
		}
		ac := checkClient(t, svc.GRPCAddr())
		tok := tokenFor(ctx, t, issuer, "agent", "agent-secret", payments, "mcp:tools")
		u, err := url.Parse(tampered.URL)
		if err != nil {
			t.Fatal(err)
		}
		check := func(headers map[string]string, body string) *authv3.CheckResponse {
			h := map[string]string{":authority": u.Host, ":path": u.Path, ":method": tampered.Method, ":scheme": "http",
				"x-forwarded-proto": "http", "authorization": "Bearer " + tok}
			for k, v := range headers {
				h[strings.ToLower(k)] = v
			}
			resp, err := ac.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
				Http: &authv3.AttributeContext_HttpRequest{Method: tampered.Method, Host: u.Host, Path: u.Path, Scheme: "http",
					Headers: h, Body: body},
			}}})
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		with := func(k, v string) map[string]string {
			h := maps.Clone(tampered.Headers)
			h[k] = v
			return h
		}
		var msg map[string]any
		if err := json.Unmarshal([]byte(tampered.Body), &msg); err != nil {
			t.Fatal(err)
		}
		params := msg["params"].(map[string]any)
		params["name"], params["arguments"] = "echo", map[string]any{"text": "hi"}
		echoBody, _ := json.Marshal(msg)

		// As recorded: Mcp-Name echo, body refund.
		resp := check(tampered.Headers, tampered.Body)
		d := resp.GetDeniedResponse()
		if d.GetStatus().GetCode() != 400 || !strings.Contains(d.GetBody(), `"code":-32020`) || header(d.GetHeaders(), "www-authenticate") != "" {
			t.Errorf("tampered request: %d %s, want 400 with JSON-RPC error -32020 and no challenge", d.GetStatus().GetCode(), d.GetBody())
		}
		// Controls, so the 400 is the mismatch's: headers and body agreeing on refund is the
		// rule's 403 (no challenge, access_denied), and on echo it is allowed.
		resp = check(with("mcp-name", "refund"), tampered.Body)
		if d := resp.GetDeniedResponse(); d.GetStatus().GetCode() != 403 || !strings.Contains(d.GetBody(), "access_denied") ||
			!strings.Contains(d.GetBody(), "Refunds are for the finance group.") || header(d.GetHeaders(), "www-authenticate") != "" {
			t.Errorf("refund, headers agreeing: %d %s, want 403 access_denied without a challenge", d.GetStatus().GetCode(), d.GetBody())
		}
		if resp = check(tampered.Headers, string(echoBody)); resp.GetOkResponse() == nil || resp.GetStatus().GetCode() != 0 {
			t.Errorf("echo, headers agreeing: denied %d %s, want allowed", resp.GetDeniedResponse().GetStatus().GetCode(), resp.GetDeniedResponse().GetBody())
		}
	})

	// Why the SDK 1.x scenarios stay on a resource without MCP rules: behind nginx a POST that
	// names no operation (no Mcp-Method, as SDK 1.x sends) cannot be checked against the
	// refund rule, so mcp-authz refuses it (400; nginx's auth_request turns any answer but
	// 2xx, 401 and 403 into a 500) and it never reaches the server.
	t.Run("a POST without Mcp-Method on the payments resource is refused", func(t *testing.T) {
		tok := tokenFor(ctx, t, issuer, "finance", "finance-secret", payments, "mcp:tools")
		req, _ := http.NewRequestWithContext(ctx, "POST", payments, strings.NewReader(
			`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"no-mcp-method"}}}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		t.Logf("answer through nginx: %d", resp.StatusCode)
		if resp.StatusCode < 400 {
			t.Errorf("a POST naming no operation got %d through nginx, want a refusal", resp.StatusCode)
		}
		if slices.ContainsFunc(serverLines(t, serverLog, `"payments_request"`), func(l string) bool {
			return strings.Contains(l, `"method":"POST","mcp_method":null`)
		}) {
			t.Error("a POST without Mcp-Method reached the payments server")
		}
	})

	t.Run("the payments server ran only the allowed tools", func(t *testing.T) {
		calls := serverLines(t, serverLog, `"payments_call"`)
		var got []string
		for _, l := range calls {
			var c struct {
				Call     string `json:"payments_call"`
				ClientID string `json:"client_id"`
			}
			json.Unmarshal([]byte(l), &c)
			got = append(got, c.Call+" by "+c.ClientID)
		}
		want := []string{"echo by finance", "refund by finance", "echo by agent", "echo by agent"}
		if !slices.Equal(got, want) {
			t.Errorf("tool calls at the payments server: %q, want %q", got, want)
		}
	})

	// What the other parts saw of the same run.
	t.Run("upstream saw only the allowed tool calls", func(t *testing.T) {
		b, err := os.ReadFile(serverLog)
		if err != nil {
			t.Fatal(err)
		}
		var calls []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, `"tool_call"`) {
				calls = append(calls, l)
			}
		}
		if len(calls) != 2 || !strings.Contains(calls[0], `"client_id":"agent"`) || !strings.Contains(calls[1], `"client_id":"agent-opaque"`) {
			t.Errorf("tool calls at the MCP server: %q, want one from agent, then one from agent-opaque", calls)
		}
	})
	t.Run("verifications shared through Redis", func(t *testing.T) {
		rc := redis.NewClient(&redis.Options{Addr: rd.Addr()})
		defer rc.Close()
		n, err := rc.DBSize(ctx).Result()
		t.Logf("Redis holds %d keys", n)
		if err != nil || n < 2 {
			t.Errorf("Redis holds %d keys (%v), want the JWT's and the opaque token's verifications at least", n, err)
		}
	})
	t.Run("mcp-authz metrics", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+authzHTTP+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`reason="insufficient_scope"`, `reason="missing_token"`,
			`kind="introspection",outcome="2xx"`, `kind="keys",outcome="2xx"`} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	// Sender-constrained tokens, last: their tool calls are not among those counted above.
	// DPoP (dpop_test.go): oidc-provider binds the tokens to the key oauth4webapi proves.
	var runs dpopClients
	t.Run("DPoP tokens from oidc-provider, proofs from oauth4webapi", func(t *testing.T) {
		runs = testDPoPTokens(ctx, t, node, resource, issuer)
	})
	t.Run("DPoP through nginx and on the gRPC path", func(t *testing.T) {
		testDPoPThroughMCPAuthz(ctx, t, runs, resource, svc.GRPCAddr(), front)
	})
	// RFC 8705 (mtls_test.go): oidc-provider binds agent-mtls's token to its TLS client certificate.
	var mtlsTok string
	var mtlsCert tls.Certificate
	t.Run("certificate-bound token from oidc-provider", func(t *testing.T) {
		mtlsTok, mtlsCert = testMTLSToken(ctx, t, asTLS, resource)
	})
	t.Run("certificate-bound token on the gRPC path", func(t *testing.T) {
		if mtlsTok == "" {
			t.Fatal("no certificate-bound token: the subtest above failed")
		}
		testMTLSThroughMCPAuthz(ctx, t, mtlsTok, mtlsCert, svc.GRPCAddr(), front, resource)
	})
}

// runClient runs an MCP client program of this directory with --expect (run.sh runs the
// same), makes its problems test errors, and returns its JSON summary line.
func runClient(ctx context.Context, t *testing.T, node, program, expect, target, id, secret, issuer, scope string) string {
	t.Helper()
	stdout, stderr, runErr := runNode(ctx, t, node, program, "--expect="+expect, target, id, secret, issuer, scope)
	t.Logf("%s %s:\n%s", program, id, stderr)
	var r struct {
		Verdict  string   `json:"verdict"`
		Problems []string `json:"problems"`
	}
	line := lastJSONLine(stdout)
	if err := json.Unmarshal([]byte(line), &r); err != nil || r.Verdict == "" {
		t.Fatalf("%s gave no verdict (%v): stdout %q", program, runErr, stdout)
	}
	for _, p := range r.Problems {
		t.Error(p)
	}
	if r.Verdict != "PASS" || runErr != nil {
		t.Errorf("verdict %s, exit %v", r.Verdict, runErr)
	}
	return line
}

// serverLines returns the lines of the MCP server's log that contain key.
func serverLines(t *testing.T, log, key string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, key) {
			out = append(out, l)
		}
	}
	return out
}

// jwtClaims decodes a JWT's payload (no verification: mcp-authz does that). The token itself
// is never logged.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatal("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func header(hs []*corev3.HeaderValueOption, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.GetHeader().GetKey(), name) {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// startNginx runs nginx with the shipped deploy/nginx/mcp-authz.conf, its three loopback
// addresses replaced by this run's, inside nginx.conf.in (the same files run.sh uses).
func (h *harness) startNginx(bin, front, authz, upstream string) {
	t := h.t
	t.Helper()
	ndir := filepath.Join(h.dir, "nginx")
	if err := os.Mkdir(ndir, 0o700); err != nil {
		t.Fatal(err)
	}
	site, err := os.ReadFile("../nginx/mcp-authz.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1:8080;", "127.0.0.1:9192;", "127.0.0.1:3000;"} {
		if !bytes.Contains(site, []byte(a)) {
			t.Fatalf("deploy/nginx/mcp-authz.conf no longer has %s: update the substitutions here and in run.sh", a)
		}
	}
	// Whole addresses only, as run.sh's sed \b does: 127.0.0.1:3000 must not match 127.0.0.1:30001.
	re := regexp.MustCompile(`127\.0\.0\.1:(8080|9192|3000)\b`)
	to := map[string]string{"8080": front, "9192": authz, "3000": upstream}
	site = re.ReplaceAllFunc(site, func(m []byte) []byte { return []byte(to[string(m[len("127.0.0.1:"):])]) })
	main, err := os.ReadFile("nginx.conf.in")
	if err != nil {
		t.Fatal(err)
	}
	main = bytes.ReplaceAll(main, []byte("@DIR@"), []byte(ndir))
	for name, b := range map[string][]byte{"mcp-authz.conf": site, "nginx.conf": main} {
		if err := os.WriteFile(filepath.Join(ndir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.start("nginx", front, bin, "-c", filepath.Join(ndir, "nginx.conf"), "-p", ndir)
	h.logs["nginx error.log"] = filepath.Join(ndir, "error.log")
}

// tokenFor gets an access token from the AS directly (client_credentials, RFC 8707 resource).
func tokenFor(ctx context.Context, t *testing.T, issuer, id, secret, resource, scope string) string {
	t.Helper()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	post(ctx, t, issuer+"/token", id, secret, url.Values{
		"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {scope}}, &tr)
	if tr.AccessToken == "" {
		t.Fatal("no access_token")
	}
	return tr.AccessToken
}

func post(ctx context.Context, t *testing.T, u, id, secret string, form url.Values, v any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("POST %s: %v: %s", u, err, b)
	}
}

package interop

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcp-authz/mcp-authz/authz/extauthz"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

const downstreamAPI = "https://api.example.com"

const exchangeConfig = `
listen: {grpc: "127.0.0.1:0", http: ""}
dev: {allow_http: true}
log: {level: debug}
cache:
  secret: {env: CACHE_SECRET}
  redis: {addrs: ["@REDIS@"]}
issuers:
  - issuer: @ISSUER@
resources:
  - name: mcp
    resource: @RESOURCE@
    scopes: {required: [mcp:tools]}
    upstream_credentials:
      token_exchange:
        resource: [` + downstreamAPI + `]
        scopes: [api:read]
        act_header: x-mcp-act
        client:
          client_id: mcp-authz
          client_secret: {env: EXCHANGE_SECRET}
`

// TestTokenExchangeInterop: the SDK's MCP client, with its own token for the MCP resource from
// a real oidc-provider, calls a real MCP server through a front door that asks mcp-authz over
// ext_authz gRPC, as Envoy does. mcp-authz exchanges the caller's token at oidc-provider
// (RFC 8693 grant registered with registerGrantType) and the MCP server receives that token:
// aud the downstream API, sub the caller, act mcp-authz, never the caller's own token.
//
// The front door is the test's own ext_authz client and reverse proxy (Envoy is not installed
// here): it applies headers_to_set (overwrite) and headers_to_remove exactly as Envoy's
// ext_authz filter does, and answers denials from the CheckResponse.
func TestTokenExchangeInterop(t *testing.T) {
	h := newHarness(t)
	ctx, node := h.ctx, h.node
	rd := redistest.Start(t)
	addr := testenv.FreeAddrs(t, 3)
	front, asAddr, upstream := addr[0], addr[1], addr[2]
	resource := "http://" + front + "/mcp"
	issuer := "http://" + asAddr
	asLogFile := h.start("oidc-provider", asAddr, node, "exchange-as.mjs", port(asAddr), resource, downstreamAPI)
	h.start("mcp-server", upstream, node, "exchange-server.mjs", port(upstream))

	yml := strings.NewReplacer("@REDIS@", rd.Addr(), "@ISSUER@", issuer, "@RESOURCE@", resource).Replace(exchangeConfig)
	svc := h.mcpAuthz(yml, map[string]string{"CACHE_SECRET": strings.Repeat("k", 32), "EXCHANGE_SECRET": "mcp-authz-secret"})
	startExtAuthzFront(t, front, "http://"+upstream, checkClient(t, svc.GRPCAddr()))

	run := func() map[string]any {
		t.Helper()
		out, _, err := runNode(ctx, t, node, "exchange-client.mjs", resource, "agent", "agent-secret", issuer, "mcp:tools api:read")
		var r map[string]any
		if jerr := json.Unmarshal([]byte(lastJSONLine(out)), &r); jerr != nil || r["ok"] != true {
			t.Fatalf("client: %v %s", err, out)
		}
		return r
	}
	r := run()
	seen := r["seen"].(map[string]any)
	cred, _ := seen["credential"].(map[string]any)
	claims, _ := cred["claims"].(map[string]any)
	t.Logf("the MCP server saw: %v", seen)
	if cred["scheme"] != "Bearer" || cred["token_sha256"] == nil {
		t.Fatalf("the MCP server received no Bearer token: %v", cred)
	}
	if cred["token_sha256"] == r["caller_token_sha256"] {
		t.Fatal("the MCP server received the caller's own token")
	}
	act, _ := claims["act"].(map[string]any)
	if claims["aud"] != downstreamAPI || claims["sub"] != "agent" || claims["iss"] != issuer || claims["scope"] != "api:read" || act["sub"] != "mcp-authz" {
		t.Errorf("exchanged token claims %v: want aud %s, sub agent (the caller), act.sub mcp-authz, scope api:read", claims, downstreamAPI)
	}
	if seen["act_header"] != `{"sub":"mcp-authz"}` || seen["subject_header"] != "agent" {
		t.Errorf("identity headers: act %v, subject %v", seen["act_header"], seen["subject_header"])
	}
	// oidc-provider's log: one exchange so far.
	asLog, _ := os.ReadFile(asLogFile)
	if n := strings.Count(string(asLog), `"token_exchange"`); n != 1 {
		t.Errorf("%d exchanges at oidc-provider, want 1", n)
	}
}

// startExtAuthzFront serves addr as Envoy's ext_authz filter would: every request is checked
// over gRPC; a denial is answered from the CheckResponse; an allow goes to upstream with the
// headers to set (replacing the client's) and without the headers to remove.
func startExtAuthzFront(t *testing.T, addr, upstream string, c authv3.AuthorizationClient) {
	t.Helper()
	target, _ := url.Parse(upstream)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{}
		for k, v := range r.Header {
			h[strings.ToLower(k)] = strings.Join(v, ",")
		}
		req := extauthz.NewCheckRequest(r.Method, r.Host, r.URL.RequestURI(), h)
		resp, err := c.Check(r.Context(), req)
		if err != nil {
			http.Error(w, "ext_authz failed", http.StatusForbidden)
			return
		}
		if d := resp.GetDeniedResponse(); d != nil {
			for _, hv := range d.GetHeaders() {
				w.Header().Set(hv.GetHeader().GetKey(), hv.GetHeader().GetValue())
			}
			status := int(d.GetStatus().GetCode())
			if status == 0 {
				status = http.StatusForbidden
			}
			w.WriteHeader(status)
			io.WriteString(w, d.GetBody())
			return
		}
		ok := resp.GetOkResponse()
		for _, n := range ok.GetHeadersToRemove() {
			r.Header.Del(n)
		}
		for _, hv := range ok.GetHeaders() {
			r.Header.Set(hv.GetHeader().GetKey(), hv.GetHeader().GetValue())
		}
		proxy.ServeHTTP(w, r)
	})}
	go srv.ListenAndServe()
	t.Cleanup(func() { srv.Close() })
	for range 100 {
		if resp, err := http.Get("http://" + addr + "/healthz-probe"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("front door did not start")
}

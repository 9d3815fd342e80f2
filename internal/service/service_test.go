package service

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// startDemo runs the real demo (embedded AS + mcp-authz) on free loopback ports.
func startDemo(t *testing.T) *Demo {
	t.Helper()
	d, err := StartDemo(DemoOptions{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0", AS: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	return d
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// token asks the demo authorization server for a client_credentials token over real HTTP.
func token(t *testing.T, d *Demo, scope string) string {
	t.Helper()
	return tokenFor(t, d, "demo", scope)
}

func tokenFor(t *testing.T, d *Demo, client, scope string) string {
	t.Helper()
	form := "grant_type=client_credentials&resource=" + d.Resource
	if scope != "" {
		form += "&scope=" + scope
	}
	req, _ := http.NewRequest("POST", d.ASURL+"/token", strings.NewReader(form))
	req.SetBasicAuth(client, "demo-secret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("token endpoint: status %d, %v", resp.StatusCode, err)
	}
	return out.AccessToken
}

func checkReq(path string, headers map[string]string) *authv3.CheckRequest {
	method := "POST"
	if strings.HasPrefix(path, "/.well-known/") {
		method = "GET"
	}
	h := map[string]string{":authority": "localhost:8080", ":path": path, ":method": method, "x-forwarded-proto": "http"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: method, Host: "localhost:8080", Path: path, Scheme: "http", Headers: h},
	}}}
}

func respHeader(hs []*corev3.HeaderValueOption, name string) string {
	for _, h := range hs {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// TestDemoEndToEnd: the three cases the README promises, over real gRPC against the real
// demo authorization server's tokens.
func TestDemoEndToEnd(t *testing.T) {
	d := startDemo(t)
	client := authv3.NewAuthorizationClient(dial(t, d.GRPCAddr()))
	ctx := context.Background()
	prm := "http://localhost:8080/.well-known/oauth-protected-resource/mcp"

	// 1. No token: 401, bare challenge.
	resp, err := client.Check(ctx, checkReq("/mcp", nil))
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.Unauthenticated || resp.GetDeniedResponse().GetStatus().GetCode() != 401 {
		t.Fatalf("no token: %v", resp)
	}
	if got, want := respHeader(resp.GetDeniedResponse().GetHeaders(), "www-authenticate"), `Bearer scope="mcp:tools", resource_metadata="`+prm+`"`; got != want {
		t.Errorf("challenge = %s\nwant        %s", got, want)
	}

	// 2. Token with mcp:tools: allowed, identity headers overwrite, Authorization removed.
	tok := token(t, d, "mcp:tools")
	resp, err = client.Check(ctx, checkReq("/mcp", map[string]string{"authorization": "Bearer " + tok, "x-auth-subject": "forged"}))
	if err != nil {
		t.Fatal(err)
	}
	ok := resp.GetOkResponse()
	if resp.GetStatus().GetCode() != 0 || ok == nil {
		t.Fatalf("valid token denied: %v", resp)
	}
	if got := respHeader(ok.GetHeaders(), "x-auth-subject"); got != "demo" {
		t.Errorf("x-auth-subject = %q, want demo", got)
	}
	for _, h := range ok.GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s set with %v: a forged copy would survive", h.GetHeader().GetKey(), h.GetAppendAction())
		}
	}
	if !contains(ok.GetHeadersToRemove(), "authorization") {
		t.Errorf("authorization not removed: %v", ok.GetHeadersToRemove())
	}
	if strings.Contains(resp.String(), tok) {
		t.Error("the token appears in the CheckResponse")
	}

	// 3. Token with only mcp:read: 403 step-up naming every scope the operation needs.
	resp, err = client.Check(ctx, checkReq("/mcp", map[string]string{"authorization": "Bearer " + token(t, d, "mcp:read")}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Fatalf("read-only token: %v", resp)
	}
	if got := respHeader(resp.GetDeniedResponse().GetHeaders(), "www-authenticate"); !strings.HasPrefix(got, `Bearer error="insufficient_scope"`) || !strings.Contains(got, `scope="mcp:tools"`) {
		t.Errorf("step-up challenge = %s", got)
	}

	// 4. A token with no scope at all (the demo AS grants exactly what is asked): 403 too.
	resp, _ = client.Check(ctx, checkReq("/mcp", map[string]string{"authorization": "Bearer " + token(t, d, "")}))
	if resp.GetDeniedResponse().GetStatus().GetCode() != 403 {
		t.Errorf("scopeless token: %v", resp)
	}

	// 5. An opaque token (client demo-opaque): allowed through introspection, then from the
	// cache: two Checks, one introspection call.
	opaque := tokenFor(t, d, "demo-opaque", "mcp:tools")
	if strings.Count(opaque, ".") == 2 {
		t.Fatalf("demo-opaque got a JWT")
	}
	before := d.AS.Counts().Introspect
	for range 2 {
		resp, err = client.Check(ctx, checkReq("/mcp", map[string]string{"authorization": "Bearer " + opaque}))
		if err != nil || resp.GetOkResponse() == nil {
			t.Fatalf("opaque token: %v %v", resp, err)
		}
	}
	if n := d.AS.Counts().Introspect - before; n != 1 {
		t.Errorf("%d introspection calls for two Checks; want 1", n)
	}

	// 6. Metadata through Check: denied with 200 (Envoy needs the non-OK status) and the document.
	resp, _ = client.Check(ctx, checkReq("/.well-known/oauth-protected-resource/mcp", nil))
	if resp.GetStatus().GetCode() == 0 || resp.GetDeniedResponse().GetStatus().GetCode() != 200 {
		t.Fatalf("metadata via Check: %v", resp)
	}
	var doc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := json.Unmarshal([]byte(resp.GetDeniedResponse().GetBody()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Resource != d.Resource || len(doc.AuthorizationServers) != 1 || doc.AuthorizationServers[0] != d.ASURL {
		t.Errorf("metadata = %+v", doc)
	}
}

// The metadata's authorization_servers[0] must equal the authorization server's own issuer
// exactly (the MCP Go SDK compares them), and the HTTP listener serves the same document.
func TestMetadataOverHTTPMatchesIssuer(t *testing.T) {
	d := startDemo(t)
	resp, err := http.Get("http://" + d.HTTPAddr() + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	var doc struct {
		AuthorizationServers []string `json:"authorization_servers"`
	}
	json.Unmarshal(body, &doc)
	asResp, err := http.Get(d.ASURL + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	var asMeta struct {
		Issuer string `json:"issuer"`
	}
	json.NewDecoder(asResp.Body).Decode(&asMeta)
	asResp.Body.Close()
	if len(doc.AuthorizationServers) == 0 || doc.AuthorizationServers[0] != asMeta.Issuer {
		t.Errorf("authorization_servers %v; AS issuer %q", doc.AuthorizationServers, asMeta.Issuer)
	}

	// OPTIONS preflight and HEAD are never challenged.
	req, _ := http.NewRequest("OPTIONS", "http://"+d.HTTPAddr()+"/.well-known/oauth-protected-resource/mcp", nil)
	req.Header.Set("Origin", "https://inspector.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "mcp-protocol-version")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != 204 || !strings.Contains(strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers")), "mcp-protocol-version") {
		t.Errorf("preflight: %d %v", pre.StatusCode, pre.Header)
	}
	head, err := http.Head("http://" + d.HTTPAddr() + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != 200 {
		t.Errorf("HEAD: %d", head.StatusCode)
	}
	nf, _ := http.Get("http://" + d.HTTPAddr() + "/.well-known/oauth-protected-resource/nothing")
	nf.Body.Close()
	if nf.StatusCode != 404 {
		t.Errorf("unknown metadata path: %d", nf.StatusCode)
	}
}

func TestHealthAndGracefulShutdown(t *testing.T) {
	d := startDemo(t)
	conn := dial(t, d.GRPCAddr())
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", authzServiceName} {
		r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v", svc, r, err)
		}
	}
	ready, err := http.Get("http://" + d.HTTPAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != 200 {
		t.Errorf("readyz: %d", ready.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if _, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), checkReq("/mcp", nil)); err == nil {
		t.Error("Check succeeded after shutdown")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

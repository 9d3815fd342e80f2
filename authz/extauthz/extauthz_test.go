package extauthz

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/mcp-authz/mcp-authz/authz"
)

// recorder returns a fixed decision and keeps the request it saw. The adapter only
// translates, so a fixed decision isolates the translation; the real core is used below.
type recorder struct {
	d     *authz.Decision
	panic bool
	last  *authz.Request
}

func (r *recorder) Check(_ context.Context, req *authz.Request) *authz.Decision {
	r.last = req
	if r.panic {
		panic("boom")
	}
	return r.d
}

func serve(t *testing.T, s *Server) authv3.AuthorizationClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	Register(g, s)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

func fixture(t *testing.T, name string) *authv3.CheckRequest {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var r authv3.CheckRequest
	if err := protojson.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestTranslatesEnvoyRequests(t *testing.T) {
	rec := &recorder{d: &authz.Decision{Allow: true}}
	c := serve(t, New(rec, Options{}))
	if _, err := c.Check(context.Background(), fixture(t, "envoy_post_mcp.json")); err != nil {
		t.Fatal(err)
	}
	r := rec.last
	if r.Method != "POST" || r.Host != "mcp.example.com" || r.Path != "/mcp?session=1" || r.Scheme != "https" || r.ID != "6593512174356112350" {
		t.Errorf("request = %+v", r)
	}
	if r.Headers["authorization"] != "Bearer good" || !strings.Contains(string(r.Body), "tools/call") {
		t.Errorf("headers/body lost: %v %q", r.Headers, r.Body)
	}

	if _, err := c.Check(context.Background(), fixture(t, "envoy_raw_headers.json")); err != nil {
		t.Fatal(err)
	}
	r = rec.last
	if r.Headers["authorization"] != "Bearer good" || r.ID != "11" || string(r.Body) != `{"jsonrpc":"2.0"}` {
		t.Errorf("header_map/raw_body request = %+v body %q", r, r.Body)
	}

	// Nothing at all: no panic, an empty request reaches the core.
	if _, err := c.Check(context.Background(), &authv3.CheckRequest{}); err != nil || rec.last == nil || rec.last.Headers == nil {
		t.Errorf("empty request: %v %+v", err, rec.last)
	}
	// A caller that fills query separately (Envoy does not).
	in := NewCheckRequest("GET", "h", "/mcp", nil)
	in.Attributes.Request.Http.Query = "a=1"
	c.Check(context.Background(), in)
	if rec.last.Path != "/mcp?a=1" {
		t.Errorf("query not appended: %q", rec.last.Path)
	}
}

func TestResponses(t *testing.T) {
	allow := &authz.Decision{Allow: true, Headers: []authz.Header{{Name: "x-auth-subject", Value: "u"}, {Name: "x-auth-scopes", Value: "a b"}}, Remove: []string{"authorization"}}
	rec := &recorder{d: allow}
	c := serve(t, New(rec, Options{}))
	resp, err := c.Check(context.Background(), NewCheckRequest("GET", "h", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus().GetCode() != 0 || resp.GetOkResponse() == nil {
		t.Fatalf("allow: %v", resp)
	}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() != nil {
			t.Errorf("%s: append_action %v append %v", h.GetHeader().GetKey(), h.GetAppendAction(), h.GetAppend())
		}
	}
	if got := resp.GetOkResponse().GetHeadersToRemove(); len(got) != 1 || got[0] != "authorization" {
		t.Errorf("headers_to_remove = %v", got)
	}

	for status, code := range map[int]codes.Code{401: codes.Unauthenticated, 403: codes.PermissionDenied, 400: codes.InvalidArgument, 503: codes.Unavailable, 200: codes.PermissionDenied, 204: codes.PermissionDenied, 405: codes.PermissionDenied} {
		rec.d = &authz.Decision{Status: status, Headers: []authz.Header{{Name: "www-authenticate", Value: "Bearer x"}}, Body: []byte("{}")}
		resp, err := c.Check(context.Background(), NewCheckRequest("GET", "h", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if codes.Code(resp.GetStatus().GetCode()) != code || int(resp.GetDeniedResponse().GetStatus().GetCode()) != status || resp.GetDeniedResponse().GetBody() != "{}" {
			t.Errorf("status %d: %v", status, resp)
		}
		if h := resp.GetDeniedResponse().GetHeaders(); len(h) != 1 || h[0].GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("status %d headers %v", status, h)
		}
	}
}

func TestPanicIsA503AndServingContinues(t *testing.T) {
	rec := &recorder{panic: true}
	var seen *authz.Decision
	c := serve(t, New(rec, Options{OnDecision: func(_ context.Context, _ *authz.Request, d *authz.Decision, _ time.Duration) { seen = d }}))
	resp, err := c.Check(context.Background(), NewCheckRequest("GET", "h", "/", nil))
	if err != nil {
		t.Fatalf("a panic surfaced as a gRPC error: %v", err)
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.Unavailable || resp.GetDeniedResponse().GetStatus().GetCode() != 503 {
		t.Errorf("panic answered %v", resp)
	}
	if seen == nil || seen.Reason != authz.ReasonInternal {
		t.Errorf("OnDecision saw %+v", seen)
	}
	rec.panic, rec.d = false, &authz.Decision{Allow: true}
	if resp, err := c.Check(context.Background(), NewCheckRequest("GET", "h", "/", nil)); err != nil || resp.GetOkResponse() == nil {
		t.Errorf("after the panic: %v %v", resp, err)
	}
}

// With the real decision core: missing token, metadata and public path.
func TestWithRealCore(t *testing.T) {
	core, err := authz.New(authz.Options{Unavailable: authz.Unavailable{Status: 401}, Resources: []authz.Resource{{
		Name: "mcp", ID: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://as.example.com"},
		RequiredScopes: []string{"mcp:tools"}, PublicPaths: []string{"/mcp/health"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, New(core, Options{}))
	ctx := context.Background()
	resp, _ := c.Check(ctx, NewCheckRequest("POST", "mcp.example.com", "/mcp", nil))
	if resp.GetDeniedResponse().GetStatus().GetCode() != 401 || !strings.HasPrefix(resp.GetDeniedResponse().GetHeaders()[0].GetHeader().GetValue(), "Bearer ") {
		t.Errorf("missing token: %v", resp)
	}
	again, _ := c.Check(ctx, NewCheckRequest("POST", "mcp.example.com", "/mcp", nil))
	if !strings.EqualFold(resp.String(), again.String()) {
		t.Error("the same denial converted differently")
	}
	resp, _ = c.Check(ctx, NewCheckRequest("GET", "mcp.example.com", "/.well-known/oauth-protected-resource/mcp", nil))
	if resp.GetStatus().GetCode() == 0 || resp.GetDeniedResponse().GetStatus().GetCode() != 200 || !strings.Contains(resp.GetDeniedResponse().GetBody(), `"resource":"https://mcp.example.com/mcp"`) {
		t.Errorf("metadata: %v", resp)
	}
	resp, _ = c.Check(ctx, NewCheckRequest("GET", "mcp.example.com", "/mcp/health", map[string]string{"authorization": "Bearer x"}))
	if resp.GetStatus().GetCode() != 0 || !contains(resp.GetOkResponse().GetHeadersToRemove(), "authorization") {
		t.Errorf("public path: %v", resp)
	}
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

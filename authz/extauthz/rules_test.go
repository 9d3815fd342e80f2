package extauthz

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/identity"
	"github.com/mcp-authz/mcp-authz/authz/policy"
)

// tokens stands in for the verifiers (tested on their own and end to end in internal/service):
// this file tests what the adapter carries between Envoy and the rules.
type tokens map[string]identity.Identity

func (t tokens) Verify(_ context.Context, tok string) (identity.Identity, error) {
	if id, ok := t[tok]; ok {
		return id, nil
	}
	return identity.Identity{}, fmt.Errorf("%w: unknown", identity.ErrInvalid)
}

func rulesCore(t *testing.T) *authz.Authorizer {
	t.Helper()
	when, err := policy.Compile(`"finance" in claims.groups && mcp.arguments.amount <= 1000`)
	if err != nil {
		t.Fatal(err)
	}
	const iss, res = "https://as.example.com", "https://mcp.example.com/mcp"
	id := func(groups string) identity.Identity {
		return identity.Identity{Issuer: iss, Subject: "alice", ClientID: "c1", Audience: []string{res},
			Scopes: []string{"mcp:tools"}, Expiry: time.Now().Add(time.Hour), Source: identity.SourceJWT,
			Claims: map[string]string{"groups": groups}}
	}
	core, err := authz.New(authz.Options{Unavailable: authz.Unavailable{Status: 401},
		Resources: []authz.Resource{{Name: "mcp", ID: res, AuthorizationServers: []string{iss},
			RequiredScopes: []string{"mcp:tools"},
			Rules:          []authz.Rule{{Name: "refund", Tools: []string{"refund"}, When: when}}}},
		Verifiers: authz.Verifiers{Opaque: tokens{"finance": id(`["finance"]`), "staff": id(`["staff"]`)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return core
}

// withToken: the fixture as Envoy sends it (with metadata_context_namespaces:
// [envoy.filters.http.mcp] and no body), for one caller.
func withToken(t *testing.T, token string, mod func(*authv3.CheckRequest)) *authv3.CheckRequest {
	r := fixture(t, "envoy_mcp_filter.json")
	r.Attributes.Request.Http.Headers["authorization"] = "Bearer " + token
	if mod != nil {
		mod(r)
	}
	return r
}

// Envoy's MCP filter metadata is an operation source: no body is needed for tool rules, and
// the tool arguments it carries reach the conditions.
func TestMCPFilterMetadataIsTheOperation(t *testing.T) {
	c := serve(t, New(rulesCore(t), Options{}))
	ctx := t.Context()
	resp, err := c.Check(ctx, withToken(t, "finance", nil))
	if err != nil || resp.GetOkResponse() == nil {
		t.Fatalf("finance refund of 250: %v %v", resp, err)
	}
	md := resp.GetDynamicMetadata().GetFields()
	for k, want := range map[string]string{"subject": "alice", "client_id": "c1", "scope": "mcp:tools", "resource": "mcp",
		"issuer": "https://as.example.com", "token_source": "jwt", "mcp_method": "tools/call", "mcp_name": "refund"} {
		if got := md[k].GetStringValue(); got != want {
			t.Errorf("dynamic_metadata %s = %q, want %q", k, got, want)
		}
	}
	for name, tc := range map[string]struct {
		token  string
		mod    func(*authv3.CheckRequest)
		status int32
	}{
		"staff refused by the claim rule": {"staff", nil, 403},
		"amount over the limit": {"finance", func(r *authv3.CheckRequest) {
			r.Attributes.MetadataContext.FilterMetadata[mcpFilterNamespace].Fields["params"].GetStructValue().Fields["arguments"].GetStructValue().Fields["amount"].Kind =
				structNumber(5000)
		}, 403},
		"filter and body disagree": {"finance", func(r *authv3.CheckRequest) {
			r.Attributes.Request.Http.Body = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}`
		}, 400},
		"filter and Mcp-Name disagree": {"finance", func(r *authv3.CheckRequest) {
			r.Attributes.Request.Http.Headers["mcp-method"] = "tools/call"
			r.Attributes.Request.Http.Headers["mcp-name"] = "echo"
		}, 400},
		"filter without params.name": {"finance", func(r *authv3.CheckRequest) {
			delete(r.Attributes.MetadataContext.FilterMetadata[mcpFilterNamespace].Fields["params"].GetStructValue().Fields, "name")
		}, 400},
	} {
		resp, err := c.Check(ctx, withToken(t, tc.token, tc.mod))
		if err != nil || int32(resp.GetDeniedResponse().GetStatus().GetCode()) != tc.status {
			t.Errorf("%s: want %d, got %v %v", name, tc.status, resp, err)
		}
	}
	// Filter and body agreeing is the ordinary case.
	resp, _ = c.Check(ctx, withToken(t, "finance", func(r *authv3.CheckRequest) {
		r.Attributes.Request.Http.Body = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"refund","arguments":{"amount":250}}}`
	}))
	if resp.GetOkResponse() == nil {
		t.Errorf("filter and body agree: %v", resp)
	}
}

// A denial carries no identity metadata, and a public allow says no token was used.
func TestDynamicMetadataOnlyWhatIsKnown(t *testing.T) {
	c := serve(t, New(rulesCore(t), Options{}))
	resp, _ := c.Check(t.Context(), withToken(t, "staff", nil))
	if resp.GetDynamicMetadata() != nil {
		t.Errorf("denial with dynamic metadata %v", resp.GetDynamicMetadata())
	}
	if strings.Contains(resp.String(), "Bearer staff") {
		t.Error("the token is in the response")
	}
}

func structNumber(n float64) *structpb.Value_NumberValue {
	return &structpb.Value_NumberValue{NumberValue: n}
}

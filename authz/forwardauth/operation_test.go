package forwardauth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/apikey"
)

// Issue 14 item 5: forward-auth ignored the body and the Mcp-* headers, so POST
// /forward-auth/mcp with a delete_file call got 200 where gRPC Check gave 403; and Envoy's
// HTTP ext_authz did not understand X-Auth-Remove, so Authorization reached the upstream.
// A real core (local API-key verification) behind a real HTTP server, sent what Envoy's HTTP
// ext_authz (envoy/envoy-http.yaml) and nginx auth_request (deploy/nginx) send.
func TestForwardAuthPerOperation(t *testing.T) {
	const key = "k-mcp-tools-only"
	sum := sha256.Sum256([]byte(key))
	keys, err := apikey.New(apikey.Config{Keys: []apikey.Key{{SHA256: hex.EncodeToString(sum[:]), Subject: "svc", Scopes: []string{"mcp:tools"}}}})
	if err != nil {
		t.Fatal(err)
	}
	core, err := authz.New(authz.Options{Unavailable: authz.Unavailable{Status: 401},
		Resources: []authz.Resource{{
			Name: "mcp", ID: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://as.example.com"},
			RequiredScopes: []string{"mcp:tools"}, AllowAPIKeys: true,
			Headers: authz.IdentityHeaders{Subject: "x-auth-subject"},
			MCP:     &authz.MCPScopes{Tools: map[string][]string{"delete_file": {"files:write"}}},
		}},
		Verifiers: authz.Verifiers{APIKeys: keys},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/forward-auth", Handler(core)))
	defer srv.Close()

	do := func(body string, headers ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/forward-auth/mcp", strings.NewReader(body))
		if body == "" {
			req.Body, req.ContentLength = nil, 0
		}
		req.Host = "mcp.example.com"
		req.Header.Set("Authorization", "Bearer "+key)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Add(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	del := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file"}}`
	echo := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`
	for _, tc := range []struct {
		name    string
		body    string
		headers []string
		status  int
	}{
		{"envoy: body delete_file", del, []string{"Content-Type", "application/json"}, 403},
		{"envoy: body echo", echo, []string{"Content-Type", "application/json"}, 200},
		{"envoy: case-variant body", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_file","NAME":"echo"}}`, []string{"Content-Type", "application/json"}, 400},
		{"envoy: text/plain, application/json", del, []string{"Content-Type", "text/plain, application/json"}, 400},
		{"envoy: two Content-Type headers", del, []string{"Content-Type", "application/json", "Content-Type", "text/plain"}, 400},
		{"envoy: cut short", echo, []string{"Content-Type", "application/json", "X-Envoy-Auth-Partial-Body", "true"}, 400},
		{"nginx: no body, Mcp headers delete_file", "", []string{"Mcp-Method", "tools/call", "Mcp-Name", "delete_file"}, 403},
		{"nginx: no body, Mcp headers echo", "", []string{"Mcp-Method", "tools/call", "Mcp-Name", "echo"}, 200},
		{"nginx: no body, no headers", "", nil, 400},
		{"nginx: two Mcp-Name headers", "", []string{"Mcp-Method", "tools/call", "Mcp-Name", "echo", "Mcp-Name", "delete_file"}, 400},
		{"body and lying Mcp-Name", del, []string{"Content-Type", "application/json", "Mcp-Method", "tools/call", "Mcp-Name", "echo"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(tc.body, tc.headers...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 {
				rm := resp.Header.Get("X-Envoy-Auth-Headers-To-Remove")
				if !strings.Contains(rm, "authorization") {
					t.Errorf("x-envoy-auth-headers-to-remove = %q: Envoy would pass the token upstream", rm)
				}
				if resp.Header.Get("X-Auth-Subject") != "svc" {
					t.Errorf("identity header %q", resp.Header.Get("X-Auth-Subject"))
				}
			}
		})
	}
	// A body over MaxBody counts as cut short.
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":"` + strings.Repeat("a", MaxBody) + `"}}}`
	if resp := do(big, "Content-Type", "application/json"); resp.StatusCode != 400 {
		t.Errorf("body over MaxBody: %d, want 400", resp.StatusCode)
	}
}

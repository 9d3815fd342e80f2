package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
)

// DemoOptions are the demo's addresses. Defaults: 127.0.0.1:9191 (ext_authz gRPC),
// 127.0.0.1:9192 (HTTP), 127.0.0.1:9193 (demo authorization server).
type DemoOptions struct {
	GRPC, HTTP, AS string
	Resource       string // default http://localhost:8080/mcp
	OTLP           string // OTLP/gRPC endpoint for traces (every Check sampled); "" for none
	Out            io.Writer
	Options
}

// Demo is a running demo: an embedded authorization server and mcp-authz protecting one MCP
// resource with it. Nothing here is reachable from `serve`: the demo authorization server
// issues tokens to anyone who knows the published demo secret.
type Demo struct {
	*Service
	AS       *demoas.Server
	ASURL    string
	Resource string
	asSrv    *http.Server
	asLn     net.Listener
}

// demoSecretEnv names the demo's introspection secret, which StartDemo supplies itself.
const demoSecretEnv = "MCP_AUTHZ_DEMO_INTROSPECTION_SECRET"

// DemoConfig is the configuration the demo serves, for an authorization server at issuer.
func DemoConfig(grpcAddr, httpAddr, issuer, resource string) *config.Config {
	c := &config.Config{
		Listen: config.Listen{GRPC: grpcAddr, HTTP: httpAddr},
		Log:    config.Log{Level: "info", Format: "text"},
		Dev:    config.Dev{AllowHTTP: true},
		Issuers: []config.Issuer{{
			Issuer: issuer,
			// Opaque tokens (client demo-opaque) go through RFC 7662 introspection.
			Introspection: &config.Introspection{ClientID: "mcp-authz", ClientSecret: config.Secret{Env: demoSecretEnv}},
		}},
		Resources: []config.Resource{{
			Name:         "demo-mcp",
			Resource:     resource,
			Scopes:       config.Scopes{Required: []string{"mcp:tools"}, Supported: []string{"mcp:tools", "mcp:read"}},
			PublicPaths:  []string{},
			ResourceName: "mcp-authz demo MCP server",
		}, {
			// The README's Policies section: a second MCP server whose refund tool needs
			// another scope (a step-up) and a group no scope can grant (a plain 403). Its
			// rules read the MCP operation, so a POST that names none is refused (400).
			Name:         "demo-payments",
			Resource:     PaymentsResource(resource),
			Scopes:       config.Scopes{Required: []string{"mcp:tools"}, Supported: []string{"mcp:tools", "payments:write"}},
			PublicPaths:  []string{},
			ResourceName: "mcp-authz demo payments MCP server",
			Rules: []config.Rule{{
				Name:             "refund-finance-only",
				Match:            config.RuleMatch{Tools: []string{"refund"}},
				Scopes:           []string{"payments:write"},
				When:             `"finance" in claims.groups`,
				ErrorDescription: "Refunds are for the finance group.",
			}},
		}, {
			// Sender-constrained tokens (README "Sender-constrained tokens"): a third MCP
			// server that takes DPoP-bound tokens only, those of client demo-dpop (mcp-authz
			// token -dpop-key, then check -dpop-key). A resource of its own, so that the
			// challenges of the other two stay Bearer-only.
			Name:         "demo-dpop",
			Resource:     DPoPResource(resource),
			Scopes:       config.Scopes{Required: []string{"mcp:tools"}, Supported: []string{"mcp:tools", "mcp:read"}},
			PublicPaths:  []string{},
			ResourceName: "mcp-authz demo DPoP MCP server",
			DPoP:         config.BindingRequired,
		}},
	}
	c.ApplyDefaults()
	return c
}

// PaymentsResource is the demo's second resource, below the first (/mcp/payments), so that a
// proxy serving the first's path (deploy/nginx) serves it too; mcp-authz picks the resource
// with the longest path prefix.
func PaymentsResource(resource string) string {
	return strings.TrimSuffix(resource, "/") + "/payments"
}

// DPoPResource is the demo's third resource (/mcp/dpop), which requires DPoP-bound tokens.
func DPoPResource(resource string) string {
	return strings.TrimSuffix(resource, "/") + "/dpop"
}

// StartDemo starts the demo authorization server and mcp-authz.
func StartDemo(o DemoOptions) (*Demo, error) {
	if o.GRPC == "" {
		o.GRPC = "127.0.0.1:9191"
	}
	if o.HTTP == "" {
		o.HTTP = "127.0.0.1:9192"
	}
	if o.AS == "" {
		o.AS = "127.0.0.1:9193"
	}
	if o.Resource == "" {
		o.Resource = "http://localhost:8080/mcp"
	}
	ln, err := net.Listen("tcp", o.AS)
	if err != nil {
		return nil, fmt.Errorf("demo authorization server: %w", err)
	}
	issuer := "http://" + ln.Addr().String()
	secret := make([]byte, 16)
	rand.Read(secret)
	as, err := demoas.New(demoas.Config{
		Issuer: issuer,
		Clients: []demoas.Client{
			{ID: "demo", Secret: "demo-secret", Scopes: []string{"mcp:tools", "mcp:read", "payments:write"},
				Claims: map[string]any{"groups": []string{"staff"}}},
			{ID: "demo-finance", Secret: "demo-secret", Scopes: []string{"mcp:tools", "mcp:read", "payments:write"},
				Claims: map[string]any{"groups": []string{"staff", "finance"}}},
			{ID: "demo-opaque", Secret: "demo-secret", Scopes: []string{"mcp:tools", "mcp:read"}, Opaque: true},
			// Its token requests must carry a DPoP proof (mcp-authz token -dpop-key); its
			// tokens carry cnf.jkt (RFC 9449).
			{ID: "demo-dpop", Secret: "demo-secret", Scopes: []string{"mcp:tools", "mcp:read"}, DPoP: true},
		},
		Resources:            []string{o.Resource, PaymentsResource(o.Resource), DPoPResource(o.Resource)},
		DefaultResource:      o.Resource,
		IntrospectionClients: map[string]string{"mcp-authz": hex.EncodeToString(secret)},
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	asSrv := &http.Server{Handler: as.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go asSrv.Serve(ln)

	cfg := DemoConfig(o.GRPC, o.HTTP, issuer, o.Resource)
	if o.OTLP != "" {
		cfg.Tracing = config.Tracing{Exporter: "otlp-grpc", Endpoint: o.OTLP, Insecure: true, SampleRatio: 1, ServiceName: "mcp-authz"}
	}
	// The introspection secret is drawn per run and handed over as if from the environment.
	introspectionSecret := hex.EncodeToString(secret)
	parent := o.Getenv
	o.Getenv = func(name string) string {
		if name == demoSecretEnv {
			return introspectionSecret
		}
		if parent != nil {
			return parent(name)
		}
		return ""
	}
	if err := cfg.Validate(); err != nil {
		asSrv.Close()
		return nil, fmt.Errorf("demo config: %w", err)
	}
	s, err := New(cfg, o.Options)
	if err != nil {
		asSrv.Close()
		return nil, err
	}
	if err := s.Start(); err != nil {
		asSrv.Close()
		return nil, err
	}
	return &Demo{Service: s, AS: as, ASURL: issuer, Resource: o.Resource, asSrv: asSrv, asLn: ln}, nil
}

// Shutdown stops mcp-authz, then the demo authorization server.
func (d *Demo) Shutdown(ctx context.Context) error {
	err := d.Service.Shutdown(ctx)
	d.asSrv.Shutdown(ctx)
	return err
}

// PrintGuide writes ready-to-paste commands that show a 401 challenge, an allow, a 403
// step-up and an introspected opaque token against this demo.
func (d *Demo) PrintGuide(w io.Writer) {
	WriteGuide(w, d.GRPCAddr(), d.HTTPAddr(), d.ASURL, d.Resource)
}

// WriteGuide is PrintGuide for a demo at these addresses. The README's walk-through is its
// output for the default addresses, and a test keeps the two equal.
func WriteGuide(w io.Writer, grpcAddr, httpAddr, asURL, resource string) {
	host, path := hostPath(resource)
	fmt.Fprintf(w, `mcp-authz demo is running.
  ext_authz gRPC       %[1]s
  HTTP (metadata)      http://%[2]s/.well-known/oauth-protected-resource%[5]s
  demo authorization   %[3]s   (clients "demo" and "demo-finance" (JWT, groups staff and
                       finance) and "demo-opaque" (opaque, introspected), secret "demo-secret",
                       scopes mcp:tools mcp:read payments:write)
  protected resources  %[4]s   (requires scope mcp:tools)
                       %[7]s   (also: its refund tool needs payments:write
                       and the finance group)

Nothing listens on %[6]s: the demo has no Envoy and no MCP server.
"mcp-authz check" stands in for Envoy: it sends the Check that Envoy would send
for a request to %[4]s and prints the answer. Its exit status is the
outcome: 0 allowed, 2 denied 401, 3 denied 403, 4 another denial, 1 no answer.
A challenge's resource_metadata URL is the public one, which Envoy would answer;
here the same document is on the HTTP listener (step 5).

Try it from another terminal, in this repository:

  # 1. No token: 401 with a Bearer challenge pointing at the resource metadata
  go run ./cmd/mcp-authz check -addr %[1]s -host %[6]s -path %[5]s

  # 2. A token with scope mcp:tools: allowed, with identity headers for the upstream
  TOKEN=$(go run ./cmd/mcp-authz token -token-url %[3]s/token -client demo -scope mcp:tools -resource %[4]s)
  go run ./cmd/mcp-authz check -addr %[1]s -host %[6]s -path %[5]s -token "$TOKEN"

  # 3. A token with only mcp:read: 403 insufficient_scope, scope="mcp:tools" (step-up)
  READ=$(go run ./cmd/mcp-authz token -token-url %[3]s/token -client demo -scope mcp:read -resource %[4]s)
  go run ./cmd/mcp-authz check -addr %[1]s -host %[6]s -path %[5]s -token "$READ"

  # 4. An opaque token (client demo-opaque): allowed through RFC 7662 introspection, then cached
  OPAQUE=$(go run ./cmd/mcp-authz token -token-url %[3]s/token -client demo-opaque -scope mcp:tools -resource %[4]s)
  go run ./cmd/mcp-authz check -addr %[1]s -host %[6]s -path %[5]s -token "$OPAQUE"

  # 5. Protected Resource Metadata (RFC 9728)
  curl -s http://%[2]s/.well-known/oauth-protected-resource%[5]s

  # 6. Rules (README "Policies") on %[7]s, refund without payments:write: 403 insufficient_scope, scope="mcp:tools payments:write" (step-up)
  PAY=$(go run ./cmd/mcp-authz token -token-url %[3]s/token -client demo -scope mcp:tools -resource %[7]s)
  go run ./cmd/mcp-authz check -addr %[1]s -host %[6]s -path %[5]s/payments -token "$PAY" -H "Mcp-Method: tools/call" -H "Mcp-Name: refund"

  # 7. Refund by client demo (group staff) with payments:write: 403 access_denied, no challenge (no scope would help)
  STAFF=$(go run ./cmd/mcp-authz token -token-url %[3]s/token -client demo -scope "mcp:tools payments:write" -resource %[7]s)
  go run ./cmd/mcp-authz check -addr %[1]s -host %[6]s -path %[5]s/payments -token "$STAFF" -H "Mcp-Method: tools/call" -H "Mcp-Name: refund"

  # 8. Refund by client demo-finance (group finance) with payments:write: allowed
  FINANCE=$(go run ./cmd/mcp-authz token -token-url %[3]s/token -client demo-finance -scope "mcp:tools payments:write" -resource %[7]s)
  go run ./cmd/mcp-authz check -addr %[1]s -host %[6]s -path %[5]s/payments -token "$FINANCE" -H "Mcp-Method: tools/call" -H "Mcp-Name: refund"

  # The same Check with grpcurl or ghz, through the committed protoset
  # (go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4; go install github.com/bojand/ghz/cmd/ghz@v0.120.0):
  grpcurl -plaintext -protoset proto/authz.protoset -d '{"attributes":{"request":{"http":{"method":"POST","host":"%[6]s","path":"%[5]s","headers":{"authorization":"Bearer '"$TOKEN"'"}}}}}' %[1]s envoy.service.auth.v3.Authorization/Check
  ghz --insecure --protoset proto/authz.protoset --call envoy.service.auth.v3.Authorization.Check -d '{"attributes":{"request":{"http":{"method":"POST","host":"%[6]s","path":"%[5]s","headers":{"authorization":"Bearer '"$TOKEN"'"}}}}}' -c 10 -n 2000 %[1]s

Ctrl-C stops it.
`, grpcAddr, httpAddr, asURL, resource, path, host, PaymentsResource(resource))
}

func hostPath(resource string) (host, path string) {
	const sep = "://"
	for i := 0; i+len(sep) <= len(resource); i++ {
		if resource[i:i+len(sep)] == sep {
			rest := resource[i+len(sep):]
			for j := 0; j < len(rest); j++ {
				if rest[j] == '/' {
					return rest[:j], rest[j:]
				}
			}
			return rest, "/"
		}
	}
	return "", resource
}

// Package jaeger holds the end-to-end tracing test against a real Jaeger v2 (all-in-one,
// in-memory storage), built by build.sh into the tools cache.
package jaeger

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/demoas"
	"github.com/mcp-authz/mcp-authz/internal/service"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

const resource = "http://localhost:8080/mcp"

// binary finds the Jaeger build.sh made.
func binary(t *testing.T) string {
	return testenv.CachedTool(t, "jaeger-v1.76.0", "deploy/jaeger/build.sh (about 4 minutes, once)")
}

// startJaeger runs Jaeger on free loopback ports and returns its OTLP/gRPC and query addresses.
func startJaeger(t *testing.T) (otlp, query string) {
	bin := binary(t)
	a := testenv.FreeAddrs(t, 5)
	otlp, otlpHTTP, query, queryGRPC, health := a[0], a[1], a[2], a[3], a[4]
	cfg := fmt.Sprintf(`
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces: { receivers: [otlp], processors: [batch], exporters: [jaeger_storage_exporter] }
  telemetry:
    metrics: { level: none }
    logs: { level: warn }
extensions:
  healthcheckv2: { use_v2: true, http: { endpoint: %q } }
  jaeger_query:
    storage: { traces: mem }
    http: { endpoint: %q }
    grpc: { endpoint: %q }
  jaeger_storage:
    backends: { mem: { memory: { max_traces: 10000 } } }
receivers:
  otlp: { protocols: { grpc: { endpoint: %q }, http: { endpoint: %q } } }
processors:
  batch: { timeout: 100ms }
exporters:
  jaeger_storage_exporter: { trace_storage: mem }
`, health, query, queryGRPC, otlp, otlpHTTP)
	path := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cmd := exec.Command(bin, "--config", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := testenv.WaitURL(ctx, "http://"+query+"/api/services", exited); err != nil {
		t.Fatalf("Jaeger did not come up: %v\n%s", err, logs.String())
	}
	return otlp, query
}

// jaegerTrace is the part of Jaeger's query API answer (GET /api/traces/{id}) checked here.
type jaegerTrace struct {
	Spans []struct {
		SpanID        string `json:"spanID"`
		OperationName string `json:"operationName"`
		References    []struct {
			RefType string `json:"refType"`
			SpanID  string `json:"spanID"`
		} `json:"references"`
		Tags []struct {
			Key   string `json:"key"`
			Value any    `json:"value"`
		} `json:"tags"`
		ProcessID string `json:"processID"`
	} `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

func fetchTrace(t *testing.T, query, traceID string, minSpans int) jaegerTrace {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + query + "/api/traces/" + traceID)
		if err == nil {
			var body struct{ Data []jaegerTrace }
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err == nil && len(body.Data) == 1 && len(body.Data[0].Spans) >= minSpans {
				return body.Data[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s with %d spans not found in Jaeger (last error %v)", traceID, minSpans, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tree renders a trace as "parent > child" edges and the tags of each span by name.
func tree(tr jaegerTrace) (edges map[string]bool, tags map[string]map[string]string) {
	names := map[string]string{}
	for _, s := range tr.Spans {
		names[s.SpanID] = s.OperationName
	}
	edges, tags = map[string]bool{}, map[string]map[string]string{}
	for _, s := range tr.Spans {
		parent := "caller"
		for _, r := range s.References {
			if r.RefType == "CHILD_OF" {
				if n, ok := names[r.SpanID]; ok {
					parent = n
				}
			}
		}
		edges[parent+" > "+s.OperationName] = true
		tg := map[string]string{"service": tr.Processes[s.ProcessID].ServiceName}
		for _, kv := range s.Tags {
			tg[kv.Key] = fmt.Sprint(kv.Value)
		}
		tags[s.OperationName] = tg
	}
	return edges, tags
}

func replica(t *testing.T, issuer, redisAddr, otlp string) *service.Service {
	t.Helper()
	cfg := &config.Config{
		Listen:  config.Listen{GRPC: "127.0.0.1:0", HTTP: ""},
		Dev:     config.Dev{AllowHTTP: true},
		Cache:   config.Cache{Secret: config.Secret{Env: "CACHE_SECRET"}, Redis: &config.Redis{Addrs: []string{redisAddr}}},
		Tracing: config.Tracing{Exporter: "otlp-grpc", Endpoint: otlp, Insecure: true, SampleRatio: 1, ServiceName: "mcp-authz"},
		Issuers: []config.Issuer{{Issuer: issuer, Introspection: &config.Introspection{
			ClientID: "rs", ClientSecret: config.Secret{Env: "RS_SECRET"}}}},
		Resources: []config.Resource{{Resource: resource, Scopes: config.Scopes{Required: []string{"mcp:tools"}}}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CACHE_SECRET": strings.Repeat("k", 32), "RS_SECRET": "rs-secret"}
	s, err := service.New(cfg, service.Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTraceTreeInJaeger: Checks that hit the IdP, L1 and Redis, on two replicas sharing Redis,
// each in the caller's trace, land in a real Jaeger with the span tree an operator reads.
func TestTraceTreeInJaeger(t *testing.T) {
	otlp, query := startJaeger(t)
	rd := redistest.Start(t)
	srv := httptest.NewServer(nil)
	defer srv.Close()
	as, err := demoas.New(demoas.Config{Issuer: srv.URL, Resources: []string{resource}, DefaultResource: resource,
		Clients:              []demoas.Client{{ID: "c", Secret: "s", Scopes: []string{"mcp:tools"}}},
		IntrospectionClients: map[string]string{"rs": "rs-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = as.Handler()
	a, b := replica(t, srv.URL, rd.Addr(), otlp), replica(t, srv.URL, rd.Addr(), otlp)

	opaque := as.IssueOpaque("olga", "c", []string{"mcp:tools"}, resource, time.Hour)
	jwt, err := as.Mint(map[string]any{"iss": srv.URL, "sub": "jan", "aud": resource, "client_id": "c",
		"exp": time.Now().Add(time.Hour).Unix(), "scope": "mcp:tools"}, demoas.MintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const parent = "00f067aa0ba902b7"
	traces := map[string]string{ // name → trace id
		"opaque-idp": "4bf92f3577b34da6a3ce929d0e0e4701", "opaque-l1": "4bf92f3577b34da6a3ce929d0e0e4702",
		"opaque-redis": "4bf92f3577b34da6a3ce929d0e0e4703", "jwt": "4bf92f3577b34da6a3ce929d0e0e4704",
	}
	check := func(s *service.Service, tok, name string) {
		conn, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{
			Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Host: "localhost:8080", Path: "/mcp", Headers: map[string]string{
					":authority": "localhost:8080", ":path": "/mcp", ":method": "POST",
					"authorization": "Bearer " + tok, "traceparent": "00-" + traces[name] + "-" + parent + "-01"}}}}})
		if err != nil || resp.GetOkResponse() == nil {
			t.Fatalf("%s: %v %v", name, resp, err)
		}
	}
	check(a, opaque, "opaque-idp")   // introspected, stored in L1 and Redis
	check(a, opaque, "opaque-l1")    // from a's L1
	check(b, opaque, "opaque-redis") // b has no L1 entry: from Redis
	check(a, jwt, "jwt")             // keys already loaded by the warm-up: verified locally
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.Shutdown(ctx) // flush both exporters
	b.Shutdown(ctx)

	const check_ = "envoy.service.auth.v3.Authorization/Check"
	for name, want := range map[string]struct {
		tier  string
		edges []string
	}{
		"opaque-idp":   {"idp", []string{"caller > " + check_, check_ + " > cache.lookup", check_ + " > introspection POST"}},
		"opaque-l1":    {"l1", []string{"caller > " + check_, check_ + " > cache.lookup"}},
		"opaque-redis": {"redis", []string{"caller > " + check_, check_ + " > cache.lookup", "cache.lookup > get"}},
		"jwt":          {"idp", []string{"caller > " + check_, check_ + " > cache.lookup"}},
	} {
		tr := fetchTrace(t, query, traces[name], len(want.edges))
		edges, tags := tree(tr)
		for _, e := range want.edges {
			if !edges[e] {
				t.Errorf("%s: no span edge %q in Jaeger; edges %v", name, e, edges)
			}
		}
		ct := tags[check_]
		if ct["service"] != "mcp-authz" || ct["mcp_authz.cache.tier"] != want.tier || ct["mcp_authz.allow"] != "true" || ct["mcp_authz.issuer"] != srv.URL {
			t.Errorf("%s: Check span tags %v", name, ct)
		}
		raw, _ := json.Marshal(tr)
		for _, secret := range []string{opaque, jwt, "rs-secret", "olga", "jan"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("%s: Jaeger holds a token, secret or subject", name)
			}
		}
	}
	// The introspection call carried the trace to the authorization server as a client span.
	tr := fetchTrace(t, query, traces["opaque-idp"], 3)
	if _, tags := tree(tr); tags["introspection POST"]["span.kind"] != "client" {
		t.Errorf("introspection span tags %v", tags["introspection POST"])
	}
}

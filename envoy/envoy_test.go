package envoy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/mcp-authz/mcp-authz/internal/envoyload"
)

// load reads a bootstrap as Envoy would accept it (envoyload.Bootstrap).
func load(t *testing.T, src []byte) (*bootstrapv3.Bootstrap, error) {
	t.Helper()
	return envoyload.Bootstrap(src)
}

func unpack[T proto.Message](t *testing.T, a *anypb.Any, m T) T {
	t.Helper()
	return envoyload.Unpack(t, a, m)
}

// checkReferences checks what no schema does: the filter chain ends with the router, the
// ext_authz filter fails closed and names a cluster that exists and speaks HTTP/2, and every
// route names an existing cluster.
func checkReferences(t *testing.T, b *bootstrapv3.Bootstrap) {
	t.Helper()
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		if clusters[c.GetName()] != nil {
			t.Errorf("cluster %q defined twice", c.GetName())
		}
		clusters[c.GetName()] = c
	}
	sawAuthz := false
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				hcm := unpack(t, f.GetTypedConfig(), &hcmv3.HttpConnectionManager{})
				filters := hcm.GetHttpFilters()
				if len(filters) == 0 {
					t.Fatal("no http filters")
				}
				if !filters[len(filters)-1].GetTypedConfig().MessageIs(&routerv3.Router{}) {
					t.Error("the last http filter is not the router")
				}
				for _, hf := range filters {
					if !hf.GetTypedConfig().MessageIs(&extauthzv3.ExtAuthz{}) {
						continue
					}
					sawAuthz = true
					ea := unpack(t, hf.GetTypedConfig(), &extauthzv3.ExtAuthz{})
					if ea.GetFailureModeAllow() {
						t.Error("failure_mode_allow: true lets every request through when mcp-authz is down")
					}
					if ea.GetTransportApiVersion().String() != "V3" {
						t.Errorf("transport_api_version %v", ea.GetTransportApiVersion())
					}
					if hs := ea.GetHttpService(); hs != nil {
						checkHTTPService(t, ea, clusters)
						continue
					}
					name := ea.GetGrpcService().GetEnvoyGrpc().GetClusterName()
					c := clusters[name]
					if c == nil {
						t.Fatalf("ext_authz names cluster %q, which does not exist", name)
					}
					opts := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
					if opts == nil {
						t.Fatalf("cluster %q has no HttpProtocolOptions: gRPC needs HTTP/2", name)
					}
					po := unpack(t, opts, &upstreamhttpv3.HttpProtocolOptions{})
					if po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
						t.Errorf("cluster %q does not speak HTTP/2", name)
					}
				}
				for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						if c := r.GetRoute().GetCluster(); c != "" && clusters[c] == nil {
							t.Errorf("route names cluster %q, which does not exist", c)
						}
					}
				}
			}
		}
	}
	if !sawAuthz {
		t.Error("no ext_authz filter")
	}
}

func TestEnvoyConfigs(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	if len(files) < 2 {
		t.Fatalf("found %v; want envoy.yaml and envoy-mtls.yaml", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := load(t, src)
			if err != nil {
				t.Fatal(err)
			}
			checkReferences(t, b)
		})
	}
}

// The loader must catch mistakes, or the test above proves nothing.
func TestLoaderCatchesMistakes(t *testing.T) {
	src, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"misspelled top-level field", "connect_timeout: 1s", "conect_timeout: 1s"},
		{"misspelled field inside typed_config", "failure_mode_allow: false", "failure_mode_alow: false"},
		{"bad enum", "type: STRICT_DNS", "type: STRICT_DNZ"},
		{"unknown type", "ext_authz.v3.ExtAuthz", "ext_authz.v3.ExtAuthzz"},
		{"PGV rule inside Any", "max_request_bytes: 65536", "max_request_bytes: 0"},
		{"empty cluster name inside Any", "envoy_grpc: { cluster_name: mcp-authz }", "envoy_grpc: { cluster_name: \"\" }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(string(src), tc.from, tc.to, 1)
			if bad == string(src) {
				t.Fatalf("fixture no longer contains %q", tc.from)
			}
			if _, err := load(t, []byte(bad)); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// checkHTTPService checks what mcp-authz's forward-auth endpoint needs from Envoy's HTTP
// ext_authz: the original path after /forward-auth, the headers per-operation rules read, the
// body, and the identity headers passed upstream.
func checkHTTPService(t *testing.T, ea *extauthzv3.ExtAuthz, clusters map[string]*clusterv3.Cluster) {
	t.Helper()
	hs := ea.GetHttpService()
	if c := hs.GetServerUri().GetCluster(); clusters[c] == nil {
		t.Errorf("http_service names cluster %q, which does not exist", c)
	}
	if hs.GetPathPrefix() != "/forward-auth" {
		t.Errorf("path_prefix %q: mcp-authz serves forward-auth under /forward-auth", hs.GetPathPrefix())
	}
	allowed := map[string]bool{}
	for _, m := range hs.GetAuthorizationRequest().GetAllowedHeaders().GetPatterns() {
		allowed[m.GetExact()] = true
	}
	for _, h := range []string{"authorization", "dpop", "content-type", "content-length", "mcp-method", "mcp-name"} {
		if !allowed[h] {
			t.Errorf("authorization_request.allowed_headers lacks %q", h)
		}
	}
	up := false
	for _, m := range hs.GetAuthorizationResponse().GetAllowedUpstreamHeaders().GetPatterns() {
		if m.GetPrefix() == "x-auth-" || m.GetExact() == "x-auth-subject" {
			up = true
		}
	}
	if !up {
		t.Error("authorization_response.allowed_upstream_headers does not pass the x-auth-* identity headers")
	}
	client := map[string]bool{}
	for _, m := range hs.GetAuthorizationResponse().GetAllowedClientHeaders().GetPatterns() {
		client[m.GetExact()] = true
	}
	if !client["www-authenticate"] {
		t.Error("authorization_response.allowed_client_headers drops WWW-Authenticate: clients get no challenge")
	}
	if !client["dpop-nonce"] {
		t.Error("authorization_response.allowed_client_headers drops DPoP-Nonce: a use_dpop_nonce challenge comes without its nonce")
	}
	if ea.GetWithRequestBody().GetMaxRequestBytes() == 0 || !ea.GetWithRequestBody().GetPackAsBytes() {
		t.Error("with_request_body missing: per-operation rules would see no body")
	}
}

package envoy

import (
	"os"
	"slices"
	"strings"
	"testing"

	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	mcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/mcp/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// TestMCPFilterConfig pins what envoy-mcp.yaml promises: Envoy's MCP filter parses the body
// (never the headers alone) before ext_authz, ext_authz forwards its metadata, and the
// identity mcp-authz returns reaches the rate limit descriptor and the access log.
func TestMCPFilterConfig(t *testing.T) {
	src, err := os.ReadFile("envoy-mcp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	hcm := unpack(t, b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	var order []string
	for _, f := range hcm.GetHttpFilters() {
		order = append(order, f.GetName())
		switch {
		case f.GetTypedConfig().MessageIs(&mcpv3.Mcp{}):
			m := unpack(t, f.GetTypedConfig(), &mcpv3.Mcp{})
			if m.GetAttributeSource() != mcpv3.Mcp_BODY && m.GetAttributeSource() != mcpv3.Mcp_VERIFY {
				t.Errorf("attribute_source %v: with HEADERS the filter trusts Mcp-* headers it never checked", m.GetAttributeSource())
			}
			if !m.GetRejectDuplicateKeys().GetValue() {
				t.Error("reject_duplicate_keys is off: a body with two names could be read two ways")
			}
		case f.GetTypedConfig().MessageIs(&extauthzv3.ExtAuthz{}):
			ea := unpack(t, f.GetTypedConfig(), &extauthzv3.ExtAuthz{})
			if !slices.Contains(ea.GetMetadataContextNamespaces(), "envoy.filters.http.mcp") {
				t.Error("ext_authz does not forward the MCP filter's metadata")
			}
		case f.GetTypedConfig().MessageIs(&ratelimitv3.RateLimit{}):
			unpack(t, f.GetTypedConfig(), &ratelimitv3.RateLimit{})
		}
	}
	if i, j := slices.Index(order, "envoy.filters.http.mcp"), slices.Index(order, "envoy.filters.http.ext_authz"); i < 0 || j < i {
		t.Errorf("filters %v: the MCP filter must run before ext_authz", order)
	}
	if i, j := slices.Index(order, "envoy.filters.http.ext_authz"), slices.Index(order, "envoy.filters.http.ratelimit"); j < i {
		t.Errorf("filters %v: the rate limit must run after ext_authz, which supplies client_id", order)
	}
	keyed := false
	for _, rl := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRateLimits() {
		for _, a := range rl.GetActions() {
			mk := a.GetMetadata().GetMetadataKey()
			if mk.GetKey() == "envoy.filters.http.ext_authz" && len(mk.GetPath()) == 1 && mk.GetPath()[0].GetKey() == "client_id" {
				keyed = true
			}
		}
	}
	if !keyed {
		t.Error("no rate limit descriptor keyed on ext_authz's client_id")
	}
	al := unpack(t, hcm.GetAccessLog()[0].GetTypedConfig(), &streamv3.StdoutAccessLog{})
	format := al.GetLogFormat().GetJsonFormat().String()
	for _, k := range []string{"subject", "client_id", "mcp_name"} {
		if !strings.Contains(format, "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:"+k+")%") {
			t.Errorf("access log does not print %s from mcp-authz's metadata", k)
		}
	}
}

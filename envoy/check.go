package envoy

import (
	"encoding/json"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

// CheckPerOperation reads an Envoy bootstrap (YAML or JSON) and reports, one problem a line,
// what keeps its ext_authz filters from giving mcp-authz what per-operation rules read: the
// request body (with_request_body, as bytes), and for the HTTP service the headers it must
// forward. An empty list means every ext_authz filter in the file sends what is needed.
func CheckPerOperation(src []byte) ([]string, error) {
	return eachExtAuthz(src, func(where string, _ *hcmv3.HttpConnectionManager, ea *extauthzv3.ExtAuthz) []string {
		return checkFilter(where, ea)
	})
}

// eachExtAuthz parses an Envoy bootstrap (YAML or JSON) and collects check's problems for every
// ext_authz filter of its static listeners, with the HTTP connection manager it sits in; a
// file with none is one problem.
func eachExtAuthz(src []byte, check func(where string, hcm *hcmv3.HttpConnectionManager, ea *extauthzv3.ExtAuthz) []string) ([]string, error) {
	var y any
	if err := yaml.Unmarshal(src, &y); err != nil {
		return nil, fmt.Errorf("not YAML: %v", err)
	}
	js, err := json.Marshal(y)
	if err != nil {
		return nil, err
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(js, &b); err != nil {
		return nil, fmt.Errorf("not an Envoy bootstrap: %v", err)
	}
	var problems []string
	seen := 0
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				for _, hf := range hcm.GetHttpFilters() {
					var ea extauthzv3.ExtAuthz
					if hf.GetTypedConfig().UnmarshalTo(&ea) != nil {
						continue
					}
					seen++
					problems = append(problems, check(fmt.Sprintf("listener %q, filter %q", l.GetName(), hf.GetName()), &hcm, &ea)...)
				}
			}
		}
	}
	if seen == 0 {
		problems = append(problems, "no ext_authz filter in a static listener")
	}
	return problems, nil
}

func checkFilter(where string, ea *extauthzv3.ExtAuthz) []string {
	var out []string
	wb := ea.GetWithRequestBody()
	switch {
	case wb == nil:
		out = append(out, where+": no with_request_body: mcp-authz sees no JSON-RPC body and must rely on Mcp-Method/Mcp-Name headers, which older MCP clients do not send")
	case !wb.GetPackAsBytes():
		out = append(out, where+": with_request_body.pack_as_bytes is false: a body that is not UTF-8 reaches mcp-authz altered; set it to true")
	}
	if wb != nil && wb.GetMaxRequestBytes() < 8192 {
		out = append(out, fmt.Sprintf("%s: with_request_body.max_request_bytes %d is small: tool calls above it are refused (400) on resources with per-operation rules", where, wb.GetMaxRequestBytes()))
	}
	if hs := ea.GetHttpService(); hs != nil {
		allowed := map[string]bool{}
		for _, m := range hs.GetAuthorizationRequest().GetAllowedHeaders().GetPatterns() {
			allowed[m.GetExact()] = true
		}
		for _, h := range []string{"content-type", "content-length", "mcp-method", "mcp-name"} {
			if !allowed[h] {
				out = append(out, fmt.Sprintf("%s: http_service.authorization_request.allowed_headers lacks %q", where, h))
			}
		}
	}
	return out
}

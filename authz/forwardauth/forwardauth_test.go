package forwardauth

import (
	"net/http/httptest"
	"testing"
)

func TestRequestFromProxyHeaders(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		target                     string
		headers                    map[string]string
		method, host, path, scheme string
	}{
		{"traefik", "/forward-auth", map[string]string{"X-Forwarded-Method": "DELETE", "X-Forwarded-Host": "mcp.example.com", "X-Forwarded-Uri": "/mcp?x=1", "X-Forwarded-Proto": "https"}, "DELETE", "mcp.example.com", "/mcp?x=1", "https"},
		{"nginx", "/forward-auth", map[string]string{"X-Original-Method": "POST", "X-Original-Uri": "/mcp", "Host": "mcp.example.com:8443"}, "POST", "mcp.example.com:8443", "/mcp", ""},
		{"envoy http service (prefix stripped)", "/mcp/tools?a=b", map[string]string{"Host": "mcp.example.com"}, "GET", "mcp.example.com", "/mcp/tools?a=b", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			for k, v := range tc.headers {
				if k == "Host" {
					r.Host = v
					continue
				}
				r.Header.Set(k, v)
			}
			r.Header.Add("Authorization", "Bearer a")
			r.Header.Add("Authorization", "Bearer b")
			got := Request(r)
			if got.Method != tc.method || got.Host != tc.host || got.Path != tc.path || got.Scheme != tc.scheme {
				t.Errorf("got %+v", got)
			}
			if got.Headers["authorization"] != "Bearer a,Bearer b" {
				t.Errorf("repeated Authorization headers must stay visible as two credentials: %q", got.Headers["authorization"])
			}
		})
	}
}

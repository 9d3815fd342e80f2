package authz

import "testing"

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/mcp", "/mcp"},
		{"/mcp/", "/mcp/"},
		{"/mcp/x/../y", "/mcp/y"},
		{"/mcp/../admin", "/admin"},
		{"/mcp/./x", "/mcp/x"},
		{"/mcp/..", "/"},
		{"/mcp/.", "/mcp/"},
		{"/../mcp", "/mcp"},
		{"/m%63p", "/mcp"},
		{"/caf%C3%A9", "/café"},
		{"/mcp/.hidden", "/mcp/.hidden"},
		{"/mcp/..x", "/mcp/..x"},
		{"/a//b", "/a//b"},
		{"/mcp;v=1/x", "/mcp;v=1/x"},
		{"/%25zz", "/%zz"},
	} {
		got, err := cleanPath(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"", "mcp", "*",
		"/mcp/..%2fadmin", "/mcp/%2e%2e/admin", "/mcp/%2E%2E/admin", "/mcp/.%2e/admin",
		"/mcp/..;/admin", "/mcp/.;/admin", "/mcp//../admin", "/mcp/x//./y",
		"/mcp/health/..;/x", "/mcp/health/%252e%252e/x", "/mcp/health/..%09/x",
		"/mcp%2fadmin", "/mcp%5cadmin", "/mcp\\admin", "/mcp%00", "/mcp\x00", "/mcp\t", "/mcp x",
		"/mcp%", "/mcp%4", "/mcp%zz", "/mcp#x", "/mcp\x7f", "/mcp%7f", "/mcp%0a",
	} {
		if got, err := cleanPath(bad); err == nil {
			t.Errorf("cleanPath(%q) = %q, want an error", bad, got)
		}
	}
}

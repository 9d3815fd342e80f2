package envoy

import (
	"os"
	"strings"
	"testing"
)

func TestCheckPerOperation(t *testing.T) {
	for _, f := range []string{"envoy.yaml", "envoy-http.yaml", "envoy-mtls.yaml", "envoy-client-mtls.yaml"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if p, err := CheckPerOperation(src); err != nil || len(p) != 0 {
			t.Errorf("%s: %v %v", f, p, err)
		}
	}
	src, _ := os.ReadFile("envoy.yaml")
	noBody := strings.Replace(string(src), "with_request_body:", "x_with_request_body:", 1)
	if p, _ := CheckPerOperation([]byte(noBody)); len(p) != 1 || !strings.Contains(p[0], "no with_request_body") {
		t.Errorf("without with_request_body: %v", p)
	}
	text := strings.Replace(string(src), "pack_as_bytes: true", "pack_as_bytes: false", 1)
	if p, _ := CheckPerOperation([]byte(text)); len(p) != 1 || !strings.Contains(p[0], "pack_as_bytes") {
		t.Errorf("pack_as_bytes false: %v", p)
	}
	h, _ := os.ReadFile("envoy-http.yaml")
	noMcp := strings.Replace(string(h), "exact: mcp-name\n", "exact: x-unrelated\n", 1)
	if p, _ := CheckPerOperation([]byte(noMcp)); len(p) != 1 || !strings.Contains(p[0], `"mcp-name"`) {
		t.Errorf("http service without mcp-name: %v", p)
	}
	if _, err := CheckPerOperation([]byte("{{{")); err == nil {
		t.Error("garbage accepted")
	}
}

package forwardauth_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/internal/service"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// startNginx runs a real nginx on loopback with the shipped deploy/nginx/mcp-authz.conf,
// pointed at the given upstream and mcp-authz HTTP addresses.
func startNginx(t *testing.T, authz, upstream string) string {
	t.Helper()
	bin := testenv.Tool(t, "nginx", "apt-get install -y nginx", "/usr/sbin/nginx")
	site, err := os.ReadFile("../../deploy/nginx/mcp-authz.conf")
	if err != nil {
		t.Fatal(err)
	}
	listen := testenv.FreeAddr(t)
	conf := strings.NewReplacer("127.0.0.1:8080", listen, "127.0.0.1:9192", authz, "127.0.0.1:3000", upstream).Replace(string(site))
	dir := t.TempDir()
	main := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi;
  uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  %[2]s
}
`, dir, conf)
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfg, "-p", dir)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
			return "http://" + listen
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start: %s %s", out, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client → real nginx (auth_request) → mcp-authz forward-auth → upstream.
func TestNginxAuthRequest(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer upstream.Close()

	d, err := service.StartDemo(service.DemoOptions{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0", AS: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	}()
	front := startNginx(t, d.HTTPAddr(), strings.TrimPrefix(upstream.URL, "http://"))

	get := func(path, token string, extra ...string) *http.Response {
		req, _ := http.NewRequest("POST", front+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize"}`))
		req.Host = "localhost:8080" // the demo resource's host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	prm := "http://localhost:8080/.well-known/oauth-protected-resource/mcp"

	// 401: the challenge reaches the client through nginx.
	resp := get("/mcp", "")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer scope="mcp:tools", resource_metadata="`+prm+`"` {
		t.Errorf("no token: %d %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	resp = get("/mcp", "garbage")
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("bad token: %d %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	// 403 step-up: nginx does not copy WWW-Authenticate from a 403 by itself; the shipped
	// config does.
	resp = get("/mcp", tokenFor(t, d.ASURL, "mcp:read"))
	if resp.StatusCode != 403 || len(resp.Header.Values("WWW-Authenticate")) != 1 ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer error="insufficient_scope"`) ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="mcp:tools"`) {
		t.Errorf("step-up: %d %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	// The demo's /mcp/payments rules, through the same location: a step-up for the scope, a
	// 403 without a challenge for the claim, and a 400 (not nginx's 500) for a POST that names
	// no operation there.
	payTok := func(client, scope string) string {
		return tokenForResource(t, d.ASURL, client, scope, service.PaymentsResource(d.Resource))
	}
	refund := []string{"Mcp-Method", "tools/call", "Mcp-Name", "refund"}
	resp = get("/mcp/payments", payTok("demo", "mcp:tools"), refund...)
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="mcp:tools payments:write"`) {
		t.Errorf("refund without payments:write: %d %q", resp.StatusCode, resp.Header.Values("WWW-Authenticate"))
	}
	resp, body := getBody(t, front, "/mcp/payments", payTok("demo", "mcp:tools payments:write"), refund...)
	if resp.StatusCode != 403 || len(resp.Header.Values("WWW-Authenticate")) != 0 || body != `{"error":"access_denied"}` {
		t.Errorf("refund by staff: %d %q %s", resp.StatusCode, resp.Header.Values("WWW-Authenticate"), body)
	}
	resp, body = getBody(t, front, "/mcp/payments", payTok("demo-finance", "mcp:tools"))
	if resp.StatusCode != 400 || body != `{"error":"invalid_request"}` {
		t.Errorf("POST naming no operation: %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	if len(seen) != 0 {
		t.Errorf("denied requests reached the upstream: %d", len(seen))
	}
	mu.Unlock()
	if resp := get("/mcp/payments", payTok("demo-finance", "mcp:tools payments:write"), refund...); resp.StatusCode != 200 {
		t.Errorf("refund by finance: %d", resp.StatusCode)
	}
	mu.Lock()
	seen = nil
	mu.Unlock()

	// Allowed: identity headers replace forged ones; the token never reaches the upstream.
	tok := tokenFor(t, d.ASURL, "mcp:tools")
	resp = get("/mcp", tok, "X-Auth-Subject", "admin", "X-Original-URI", "/.well-known/oauth-protected-resource/mcp")
	if resp.StatusCode != 200 {
		t.Fatalf("valid token: %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d requests", len(seen))
	}
	h := seen[0]
	if got := h.Values("X-Auth-Subject"); len(got) != 1 || got[0] != "demo" {
		t.Errorf("X-Auth-Subject upstream = %q, want exactly [demo]", got)
	}
	if h.Get("Authorization") != "" {
		t.Error("the caller's token reached the upstream")
	}

	// Metadata through nginx, unauthenticated.
	m, err := http.Get(front + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if m.StatusCode != 200 || !strings.Contains(string(doc), `"resource":"http://localhost:8080/mcp"`) {
		t.Errorf("metadata via nginx: %d %s", m.StatusCode, doc)
	}
}

func getBody(t *testing.T, front, path, token string, extra ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", front+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize"}`))
	req.Host = "localhost:8080"
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func tokenFor(t *testing.T, as, scope string) string {
	t.Helper()
	return tokenForResource(t, as, "demo", scope, "")
}

func tokenForResource(t *testing.T, as, client, scope, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if resource != "" {
		form.Set("resource", resource)
	}
	req, _ := http.NewRequest("POST", as+"/token", strings.NewReader(form.Encode()))
	req.SetBasicAuth(client, "demo-secret")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	i := strings.Index(s, `"access_token":"`)
	if i < 0 {
		t.Fatalf("token: %s", s)
	}
	s = s[i+len(`"access_token":"`):]
	return s[:strings.IndexByte(s, '"')]
}

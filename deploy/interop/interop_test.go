// Package interop runs mcp-authz between software no one here wrote: a real authorization
// server (npm oidc-provider) and a real MCP client and server (npm @modelcontextprotocol/sdk),
// with a real nginx as the front door. The Node programs are in this directory; their
// versions are pinned in package-lock.json (install with `npm ci --prefix deploy/interop`).
package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-authz/mcp-authz/authz/config"
	"github.com/mcp-authz/mcp-authz/authz/service"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
)

// need finds a program, or skips (fails under CI=true) saying how to get it.
func need(t *testing.T, name, how string, alt ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range alt {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: %s", name, how)
	}
	t.Skipf("%s is missing: %s", name, how)
	return ""
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs a program until the test ends and waits until addr accepts connections.
func start(t *testing.T, addr string, env []string, name string, args ...string) *strings.Builder {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %v did not listen on %s:\n%s", name, args, addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nginx(t *testing.T, bin, listen, authz, upstream string) {
	t.Helper()
	site, err := os.ReadFile("../nginx/mcp-authz.conf")
	if err != nil {
		t.Fatal(err)
	}
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
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, listen, nil, bin, "-c", path, "-p", dir)
}

type clientResult struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error"`
	Server string `json:"server"`
	Whoami struct {
		Subject           string `json:"subject"`
		ClientID          string `json:"client_id"`
		Scopes            string `json:"scopes"`
		AuthorizationSeen bool   `json:"authorization_seen"`
	} `json:"whoami"`
	TokenKind string `json:"token_kind"`
	Seen      []struct {
		URL       string `json:"url"`
		Status    int    `json:"status"`
		Challenge string `json:"challenge"`
	} `json:"seen"`
}

func TestMCPClientThroughNginxWithOIDCProvider(t *testing.T) {
	node := need(t, "node", "apt-get install -y nodejs, or any Node.js >= 20")
	ngx := need(t, "nginx", "apt-get install -y nginx", "/usr/sbin/nginx")
	if _, err := os.Stat("node_modules/oidc-provider"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("deploy/interop/node_modules is missing: npm ci --prefix deploy/interop")
		}
		t.Skip("deploy/interop/node_modules is missing: npm ci --prefix deploy/interop")
	}
	rd := redistest.Start(t)
	front, asAddr, upstream, authzHTTP := freePort(t), freePort(t), freePort(t), freePort(t)
	resource := "http://" + front + "/mcp" // the SDK insists the PRM resource is the URL it calls
	issuer := "http://" + asAddr

	_, asPort, _ := net.SplitHostPort(asAddr)
	_, upPort, _ := net.SplitHostPort(upstream)
	asLog := start(t, asAddr, []string{"PORT=" + asPort, "MCP_RESOURCE=" + resource}, node, "as.mjs")
	start(t, upstream, []string{"PORT=" + upPort}, node, "server.mjs")

	cfg := &config.Config{
		Listen: config.Listen{GRPC: "127.0.0.1:0", HTTP: authzHTTP},
		Dev:    config.Dev{AllowHTTP: true},
		Cache:  config.Cache{Secret: config.Secret{Env: "CACHE_SECRET"}, Redis: &config.Redis{Addrs: []string{rd.Addr()}}},
		Issuers: []config.Issuer{{Issuer: issuer, Introspection: &config.Introspection{
			ClientID: "rs", ClientSecret: config.Secret{Env: "RS_SECRET"}}}},
		Resources: []config.Resource{{Resource: resource, Scopes: config.Scopes{
			Required: []string{"mcp:tools"}, Supported: []string{"mcp:tools", "mcp:read"}}}},
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CACHE_SECRET": strings.Repeat("s", 32), "RS_SECRET": "rs-secret"}
	svc, err := service.New(cfg, service.Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
	})
	nginx(t, ngx, front, authzHTTP, upstream)

	run := func(t *testing.T, clientID, secret, scope string) clientResult {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		args := []string{"client.mjs", resource, clientID, secret, issuer}
		if scope != "" {
			args = append(args, scope)
		}
		cmd := exec.CommandContext(ctx, node, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, _ := cmd.Output()
		var res clientResult
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "{") {
				if err := json.Unmarshal([]byte(line), &res); err != nil {
					t.Fatalf("client output %q: %v", line, err)
				}
			}
		}
		t.Logf("client %s: %s", clientID, out)
		if stderr.Len() > 0 {
			t.Logf("client stderr: %s", stderr.String())
		}
		return res
	}
	// The first MCP response the client saw is mcp-authz's 401 challenge, pointing at the
	// metadata on the front door.
	wantChallenge := func(t *testing.T, r clientResult) {
		t.Helper()
		if len(r.Seen) == 0 || r.Seen[0].Status != 401 ||
			!strings.Contains(r.Seen[0].Challenge, `resource_metadata="http://`+front+`/.well-known/oauth-protected-resource/mcp"`) {
			t.Errorf("first response %+v, want 401 with resource_metadata on the front door", r.Seen)
		}
	}

	t.Run("JWT access token", func(t *testing.T) {
		r := run(t, "agent", "agent-secret", "mcp:tools")
		if !r.OK {
			t.Fatalf("MCP client failed: %s\nAS log:\n%s", r.Error, asLog)
		}
		wantChallenge(t, r)
		if r.TokenKind != "jwt" || r.Server != "interop-upstream" || r.Whoami.ClientID != "agent" ||
			!strings.Contains(r.Whoami.Scopes, "mcp:tools") || r.Whoami.AuthorizationSeen {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("opaque access token through introspection", func(t *testing.T) {
		r := run(t, "agent-opaque", "agent-opaque-secret", "mcp:tools")
		if !r.OK {
			t.Fatalf("MCP client failed: %s\nAS log:\n%s", r.Error, asLog)
		}
		wantChallenge(t, r)
		if r.TokenKind != "opaque" || r.Whoami.ClientID != "agent-opaque" || r.Whoami.AuthorizationSeen {
			t.Errorf("result %+v", r)
		}
	})
	t.Run("403 step-up for a client limited to mcp:read", func(t *testing.T) {
		r := run(t, "reader", "reader-secret", "mcp:read")
		if r.OK {
			t.Fatalf("a client holding only mcp:read reached the tool: %+v", r)
		}
		stepUp := false
		for _, s := range r.Seen {
			if s.Status == 403 && strings.Contains(s.Challenge, `error="insufficient_scope"`) && strings.Contains(s.Challenge, `scope="mcp:tools"`) {
				stepUp = true
			}
		}
		if !stepUp {
			t.Errorf("no 403 insufficient_scope naming mcp:tools among %+v (client said %q)", r.Seen, r.Error)
		}
	})

	// mcp-authz's own account of the run.
	resp, err := http.Get("http://" + authzHTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`reason="insufficient_scope"`, `kind="introspection",outcome="2xx"`, `kind="keys",outcome="2xx"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

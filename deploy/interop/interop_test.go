package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-authz/mcp-authz/authz/config"
	"github.com/mcp-authz/mcp-authz/authz/service"
	"github.com/mcp-authz/mcp-authz/cache/redistest"
	"github.com/mcp-authz/mcp-authz/deploy/internal/nodeenv"
)

// The whole test, processes included, ends within this.
const testTimeout = 60 * time.Second

// TestInterop: the SDK's MCP client, starting with no token, discovers everything from our
// 401 through nginx and reaches the SDK's MCP server with a JWT and with an opaque token; a
// client that may only hold mcp:read gets the 403 insufficient_scope step-up challenge.
func TestInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	node := nodeenv.Need(t, "node", "install Node.js >= 20")
	nodeenv.Node(t, node)
	ngx := nodeenv.Need(t, "nginx", "apt-get install -y nginx", "/usr/sbin/nginx")
	nodeenv.Modules(t, "deploy/interop")
	rd := redistest.Start(t) // skips (fails under CI=true) without redis-server

	dir := t.TempDir()
	logs := map[string]string{} // name → log file, shown when the test fails
	t.Cleanup(func() {
		if t.Failed() {
			for name, path := range logs {
				b, _ := os.ReadFile(path)
				t.Logf("--- %s (%s), last lines:\n%s", name, path, tail(string(b), 40))
			}
		}
	})

	addr := freeAddrs(t, 4)
	front, asAddr, upstream, authzHTTP := addr[0], addr[1], addr[2], addr[3]
	resource := "http://" + front + "/mcp" // the SDK requires the PRM resource to be the URL it calls
	issuer := "http://" + asAddr

	logs["oidc-provider"] = start(ctx, t, dir, "oidc-provider", asAddr, node, "as.mjs", port(asAddr), resource)
	serverLog := start(ctx, t, dir, "mcp-server", upstream, node, "server.mjs", port(upstream))
	logs["MCP server"] = serverLog

	// mcp-authz, in-process, from the configuration template run.sh uses, loaded as serve does.
	tmpl, err := os.ReadFile("mcp-authz.yaml.in")
	if err != nil {
		t.Fatal(err)
	}
	yml := strings.NewReplacer("@AUTHZ_HTTP@", authzHTTP, "@REDIS@", rd.Addr(), "@ISSUER@", issuer,
		"@RESOURCE@", resource).Replace(string(tmpl))
	if regexp.MustCompile(`@[A-Z_]+@`).MatchString(yml) {
		t.Fatalf("a placeholder of mcp-authz.yaml.in was not filled in:\n%s", yml)
	}
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("mcp-authz.yaml.in: %v", err)
	}
	authzLog := filepath.Join(dir, "mcp-authz.log")
	lf, err := os.Create(authzLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	logs["mcp-authz"] = authzLog
	env := map[string]string{"CACHE_SECRET": strings.Repeat("k", 32), "RS_SECRET": "rs-secret"}
	svc, err := service.New(cfg, service.Options{
		Logger: slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Getenv: func(k string) string { return env[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		svc.Shutdown(sctx)
	})

	logs["nginx"] = startNginx(ctx, t, dir, ngx, front, authzHTTP, upstream)

	// The premise of scenario (b): oidc-provider's introspection answer for an opaque token
	// requested for the resource carries aud = the resource (mcp-authz denies one without aud).
	t.Run("introspection answer carries aud", func(t *testing.T) {
		tok := tokenFor(ctx, t, issuer, "agent-opaque", "agent-opaque-secret", resource, "mcp:tools")
		var in map[string]any
		post(ctx, t, issuer+"/token/introspection", "rs", "rs-secret", url.Values{"token": {tok}}, &in)
		t.Logf("introspection: %v", in)
		if in["active"] != true || in["aud"] != resource || in["client_id"] != "agent-opaque" || in["scope"] != "mcp:tools" {
			t.Errorf("introspection answer %v: want active, aud %s, client_id agent-opaque, scope mcp:tools", in, resource)
		}
	})

	// Each scenario's expectations are checked by client.mjs --expect (run.sh uses the same);
	// its problems become test errors here.
	scenarios := []struct{ name, expect, id, secret, scope string }{
		{"a JWT access token", "ok-jwt", "agent", "agent-secret", "mcp:tools"},
		{"b opaque access token via introspection", "ok-opaque", "agent-opaque", "agent-opaque-secret", "mcp:tools"},
		{"c mcp:read only gets 403 insufficient_scope", "insufficient_scope", "reader", "reader-secret", "mcp:read"},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
			defer ccancel()
			cmd := exec.CommandContext(cctx, node, "client.mjs", "--expect="+sc.expect, resource, sc.id, sc.secret, issuer, sc.scope)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			t.Logf("client %s:\n%s", sc.id, stderr.String())
			var r struct {
				Verdict  string   `json:"verdict"`
				Problems []string `json:"problems"`
			}
			line := lastJSONLine(stdout.String())
			if err := json.Unmarshal([]byte(line), &r); err != nil || r.Verdict == "" {
				t.Fatalf("client.mjs gave no verdict (%v, ctx %v): stdout %q", runErr, cctx.Err(), stdout.String())
			}
			for _, p := range r.Problems {
				t.Error(p)
			}
			if r.Verdict != "PASS" || runErr != nil {
				t.Errorf("verdict %s, exit %v; the client's summary: %s", r.Verdict, runErr, line)
			}
		})
	}

	// What the other parts saw of the same run.
	t.Run("upstream saw only the allowed tool calls", func(t *testing.T) {
		b, err := os.ReadFile(serverLog)
		if err != nil {
			t.Fatal(err)
		}
		var calls []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, `"tool_call"`) {
				calls = append(calls, l)
			}
		}
		if len(calls) != 2 || !strings.Contains(calls[0], `"client_id":"agent"`) || !strings.Contains(calls[1], `"client_id":"agent-opaque"`) {
			t.Errorf("tool calls at the MCP server: %q, want one from agent, then one from agent-opaque", calls)
		}
	})
	t.Run("verifications shared through Redis", func(t *testing.T) {
		rc := redis.NewClient(&redis.Options{Addr: rd.Addr()})
		defer rc.Close()
		n, err := rc.DBSize(ctx).Result()
		t.Logf("Redis holds %d keys", n)
		if err != nil || n < 2 {
			t.Errorf("Redis holds %d keys (%v), want the JWT's and the opaque token's verifications at least", n, err)
		}
	})
	t.Run("mcp-authz metrics", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+authzHTTP+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`reason="insufficient_scope"`, `reason="missing_token"`,
			`kind="introspection",outcome="2xx"`, `kind="keys",outcome="2xx"`} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
}

// freeAddrs returns n distinct free loopback addresses (held together while chosen).
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// start runs a program in this directory until the test ends, its output in a file under
// dir, and waits until addr accepts connections. It returns the log file's path.
func start(ctx context.Context, t *testing.T, dir, name, addr, bin string, args ...string) string {
	t.Helper()
	log := filepath.Join(dir, name+".log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own copy
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return log
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(log)
			t.Fatalf("%s exited at start (%v):\n%s", name, cmd.ProcessState, b)
		case <-ctx.Done():
			b, _ := os.ReadFile(log)
			t.Fatalf("%s did not listen on %s: %v\n%s", name, addr, ctx.Err(), b)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startNginx runs nginx with the shipped deploy/nginx/mcp-authz.conf, its three loopback
// addresses replaced by this run's, inside nginx.conf.in (the same files run.sh uses).
func startNginx(ctx context.Context, t *testing.T, dir, bin, front, authz, upstream string) string {
	t.Helper()
	ndir := filepath.Join(dir, "nginx")
	if err := os.Mkdir(ndir, 0o700); err != nil {
		t.Fatal(err)
	}
	site, err := os.ReadFile("../nginx/mcp-authz.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1:8080;", "127.0.0.1:9192;", "127.0.0.1:3000;"} {
		if !bytes.Contains(site, []byte(a)) {
			t.Fatalf("deploy/nginx/mcp-authz.conf no longer has %s: update the substitutions here and in run.sh", a)
		}
	}
	// Whole addresses only, as run.sh's sed \b does: 127.0.0.1:3000 must not match 127.0.0.1:30001.
	re := regexp.MustCompile(`127\.0\.0\.1:(8080|9192|3000)\b`)
	to := map[string]string{"8080": front, "9192": authz, "3000": upstream}
	site = re.ReplaceAllFunc(site, func(m []byte) []byte { return []byte(to[string(m[len("127.0.0.1:"):])]) })
	main, err := os.ReadFile("nginx.conf.in")
	if err != nil {
		t.Fatal(err)
	}
	main = bytes.ReplaceAll(main, []byte("@DIR@"), []byte(ndir))
	for name, b := range map[string][]byte{"mcp-authz.conf": site, "nginx.conf": main} {
		if err := os.WriteFile(filepath.Join(ndir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	start(ctx, t, dir, "nginx", front, bin, "-c", filepath.Join(ndir, "nginx.conf"), "-p", ndir)
	return filepath.Join(ndir, "error.log")
}

// tokenFor gets an access token from the AS directly (client_credentials, RFC 8707 resource).
func tokenFor(ctx context.Context, t *testing.T, issuer, id, secret, resource, scope string) string {
	t.Helper()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	post(ctx, t, issuer+"/token", id, secret, url.Values{
		"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {scope}}, &tr)
	if tr.AccessToken == "" {
		t.Fatal("no access_token")
	}
	return tr.AccessToken
}

func post(ctx context.Context, t *testing.T, u, id, secret string, form url.Values, v any) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("POST %s: %v: %s", u, err, b)
	}
}

func lastJSONLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "{") {
			last = l
		}
	}
	return last
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

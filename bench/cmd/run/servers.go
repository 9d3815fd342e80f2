package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// resource is the protected resource every configuration names and every request targets
// (its Host, localhost:8080, is only a header: nothing listens there).
const resource = "http://localhost:8080/mcp"

// addr is the loopback listener at offset off from the port base: every listener is placed
// from the base (-P), from base-910 to base+188.
func (l *lab) addr(off int) string { return fmt.Sprintf("127.0.0.1:%d", l.opt.base+off) }

// server is a started server: its gRPC (ext_authz) and HTTP (metrics) listeners.
type server struct {
	grpc, http string // http "" when it has no metrics
	p          *proc
}

// srv starts the named server on first use (with what it depends on) and returns it.
func (l *lab) srv(ctx context.Context, name string) (*server, error) {
	if s, ok := l.servers[name]; ok {
		return s, nil
	}
	s, err := l.startServer(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	l.servers[name] = s
	return s, nil
}

func (l *lab) startServer(ctx context.Context, name string) (*server, error) {
	demoIssuer := "http://" + l.addr(2)
	switch name {
	case "redis-server":
		dir := filepath.Join(l.work, "redis")
		os.MkdirAll(dir, 0o755)
		return l.run(ctx, name, l.srvCPU, "", l.addr(188), "", "redis-server", "--port", port(l.addr(188)),
			"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	// The stand-in authorization servers are the outside world: they run beside ghz.
	case "slowas-fast":
		return l.run(ctx, name, l.gen, "", l.addr(89), "", filepath.Join(l.work, "slowas"), "-addr", l.addr(89), "-latency", "0")
	case "slowas-slow":
		return l.run(ctx, name, l.gen, "", l.addr(90), "", filepath.Join(l.work, "slowas"), "-addr", l.addr(90), "-latency", l.opt.lat.String())
	case "noop":
		return l.run(ctx, name, l.srvCPU, "-", l.addr(100), "", filepath.Join(l.work, "noop"), "-addr", l.addr(100))
	// Replay baselines: the no-op answering with mcp-authz's own allow (identity headers,
	// authorization removed) and its own no-token 401, captured from the demo, without deciding
	// anything. Against them, what remains is the cost of the decision; between them and the
	// empty no-op, the cost of the response's bytes (mostly in the load generator, see README).
	case "noop-allow", "noop-401":
		if err := l.captureReplies(ctx); err != nil {
			return nil, err
		}
		off, file := 101, "allow-response.json"
		if name == "noop-401" {
			off, file = 102, "401-response.json"
		}
		return l.run(ctx, name, l.srvCPU, "-", l.addr(off), "", filepath.Join(l.work, "noop"), "-addr", l.addr(off),
			"-response", filepath.Join(l.work, file))
	case "demo":
		s, err := l.run(ctx, name, l.srvCPU, "", l.addr(0), l.addr(1), filepath.Join(l.work, "mcp-authz"), "demo",
			"-grpc", l.addr(0), "-http", l.addr(1), "-as", l.addr(2))
		if err == nil {
			err = l.waitJWKS(ctx)
		}
		return s, err
	// The cache off: every JWT is signature-verified (the crypto bound).
	case "nocache":
		return l.serve(ctx, name, 3, demoIssuer, "{ l1_size: -1 }", false, "", "")
	// Per-tool scopes: every Check reads the JSON-RPC body with the strict reader (L1 on).
	case "tools":
		return l.serve(ctx, name, 6, demoIssuer, "{ l1_size: 100000 }", false,
			`    mcp: { tools: { delete_file: [files:write], "*": [mcp:tools] } }`+"\n", "")
	// The same tool call on a resource with ten rules (issue 17): nine name other tools, one
	// matches and evaluates a CEL condition over a claim and a tool argument.
	case "rules":
		var b strings.Builder
		b.WriteString("    mcp: { tools: { delete_file: [files:write], \"*\": [mcp:tools] } }\n    rules:\n")
		for i := range 9 {
			fmt.Fprintf(&b, "      - { name: other-%d, match: { tools: [\"admin_%d_*\"] }, when: 'claims.role == \"admin\"' }\n", i, i)
		}
		b.WriteString("      - { name: search, match: { tools: [\"search_*\"] }, when: '\"staff\" in claims.groups && mcp.arguments.limit <= 50' }\n")
		return l.serve(ctx, name, 8, demoIssuer, "{ l1_size: 100000 }", false, b.String(), "")
	// DPoP (issue 18): a cached DPoP-bound JWT, a fresh ES256 proof per request (bench/dpop: its
	// own service and demo AS, and the ghz data file of 2,000 proofs, cycled; see its doc).
	case "dpop":
		out := filepath.Join(l.work, "dpop.out")
		p, err := l.procs.start(name, l.srvCPU, filepath.Join(l.work, "dpop.log"), out, filepath.Join(l.work, "dpop"),
			"-grpc", l.addr(40), "-http", l.addr(140), "-data", filepath.Join(l.work, "dpop.data"))
		if err != nil {
			return nil, err
		}
		if err := waitPort(ctx, l.addr(40), p); err != nil {
			return nil, err
		}
		for range 100 {
			if b, _ := os.ReadFile(out); bytes.Contains(b, []byte("ready")) {
				break
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return nil, err
			}
		}
		return &server{grpc: l.addr(40), http: l.addr(140), p: p}, nil
	// Opaque tokens answered from Redis: L1 off, Redis on (one GET per Check: the value carries its own deadline).
	case "redis":
		if _, err := l.srv(ctx, "redis-server"); err != nil {
			return nil, err
		}
		fast, err := l.srv(ctx, "slowas-fast")
		if err != nil {
			return nil, err
		}
		return l.serve(ctx, name, 4, "http://"+fast.grpc, l.redisCache("l1_size: -1, "), true, "", "")
	// No cache at all: every Check introspects at the slow authorization server.
	case "slow":
		slow, err := l.srv(ctx, "slowas-slow")
		if err != nil {
			return nil, err
		}
		return l.serve(ctx, name, 5, "http://"+slow.grpc, "{ l1_size: -1 }", true, "", "")
	case "opa":
		return l.startOPA(ctx)
	}
	return nil, fmt.Errorf("no server named %q", name)
}

// run starts a server and waits for its listeners.
func (l *lab) run(ctx context.Context, name string, prefix []string, out, grpc, http string, args ...string) (*server, error) {
	p, err := l.procs.start(name, prefix, filepath.Join(l.work, name+".log"), out, args...)
	if err != nil {
		return nil, err
	}
	for _, a := range []string{grpc, http} {
		if a == "" {
			continue
		}
		if err := waitPort(ctx, a, p); err != nil {
			return nil, err
		}
	}
	return &server{grpc: grpc, http: http, p: p}, nil
}

// serve runs `mcp-authz serve` on a configuration written for it, listening at offset off (gRPC)
// and off+100 (metrics), under cpus when given (taskset -c), else the servers' prefix.
func (l *lab) serve(ctx context.Context, name string, off int, issuer, cache string, introspection bool, extra, cpus string) (*server, error) {
	grpc, http := l.addr(off), l.addr(off+100)
	if err := os.WriteFile(filepath.Join(l.work, name+".yaml"), []byte(l.config(grpc, http, issuer, cache, introspection)+extra), 0o600); err != nil {
		return nil, err
	}
	return l.serveFile(ctx, name, grpc, http, cpus)
}

func (l *lab) serveFile(ctx context.Context, name, grpc, http, cpus string) (*server, error) {
	prefix := l.srvCPU
	if cpus != "" {
		prefix = []string{"taskset", "-c", cpus}
	}
	return l.run(ctx, name, prefix, "", grpc, http, filepath.Join(l.work, "mcp-authz"), "serve", "--config", filepath.Join(l.work, name+".yaml"))
}

// config is an mcp-authz configuration with one issuer and the one resource.
func (l *lab) config(grpc, http, issuer, cache string, introspection bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: { grpc: %s, http: \"%s\" }\n", grpc, http)
	b.WriteString("log: { level: error }\ndev: { allow_http: true }\n")
	fmt.Fprintf(&b, "cache: %s\nissuers:\n  - issuer: \"%s\"\n", cache, issuer)
	if introspection {
		b.WriteString("    verify_jwt: false\n")
		fmt.Fprintf(&b, "    introspection: { client_id: bench, client_secret: { env: BENCH_INTROSPECTION_SECRET }, max_concurrent: %d, timeout: 2s }\n", max(l.opt.conc, 64))
	}
	fmt.Fprintf(&b, "resources:\n  - resource: %s\n    scopes: { required: [mcp:tools] }\n", resource)
	return b.String()
}

// redisCache is a cache section with Redis and the shared secret, after the given fields.
func (l *lab) redisCache(fields string) string {
	return fmt.Sprintf("{ %ssecret: { env: BENCH_CACHE_SECRET }, redis: { addrs: [\"%s\"] } }", fields, l.addr(188))
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func (l *lab) waitJWKS(ctx context.Context) error {
	for range 50 {
		if resp, err := http.Get("http://" + l.addr(2) + "/jwks"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("the demo AS serves no /jwks on %s", l.addr(2))
}

// startOPA runs OPA-Envoy with the demo authorization server's JWKS as data, built once into the
// tools cache by bench/opa/build.sh.
func (l *lab) startOPA(ctx context.Context) (*server, error) {
	if _, err := l.srv(ctx, "demo"); err != nil {
		return nil, err
	}
	bin, err := l.opaPath(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := http.Get("http://" + l.addr(2) + "/jwks")
	if err != nil {
		return nil, err
	}
	jwks, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(map[string]any{"bench": map[string]string{"jwks": string(jwks), "issuer": "http://" + l.addr(2),
		"resource": resource, "scope": "mcp:tools", "host": "localhost:8080", "path": "/mcp",
		"metadata": "http://localhost:8080/.well-known/oauth-protected-resource/mcp"}})
	dataFile := filepath.Join(l.work, "opa-data.json")
	cfg, err := os.ReadFile("bench/opa/config.yaml")
	if err != nil {
		return nil, err
	}
	// The template's gRPC address, moved to this run's base.
	cfgFile := filepath.Join(l.work, "opa-config.yaml")
	cfg = bytes.ReplaceAll(cfg, []byte("127.0.0.1:9198"), []byte(l.addr(7)))
	if err := os.WriteFile(dataFile, data, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		return nil, err
	}
	return l.run(ctx, "opa", l.srvCPU, "", l.addr(7), "", bin, "run", "--server", "--addr", l.addr(-910),
		"--skip-version-check", "--log-level", "error", "--config-file", cfgFile, "bench/opa/policy.rego", dataFile)
}

// opaPath builds OPA-Envoy once (about a minute the first time) and returns its path.
func (l *lab) opaPath(ctx context.Context) (string, error) {
	cmd := commandContext(ctx, nil, "bench/opa/build.sh")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("bench/opa/build.sh: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// token is an access token from the demo AS for the client (demo: a JWT; demo-opaque: opaque).
func (l *lab) token(client string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"mcp:tools"}, "resource": {resource}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+l.addr(2)+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, "demo-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("no access token for client %s from the demo AS (%s)", client, resp.Status)
	}
	return t.AccessToken, nil
}

// check runs `mcp-authz check` against addr with token ("" for none) and returns its output
// and exit code (2 on a denial).
func (l *lab) check(ctx context.Context, addr, token string) (string, int, error) {
	args := []string{filepath.Join(l.work, "mcp-authz"), "check", "-addr", addr}
	if token != "" {
		args = append(args, "-token", token)
	}
	cmd := commandContext(ctx, nil, args...)
	out, err := cmd.Output()
	if cmd.ProcessState == nil {
		return "", 0, err
	}
	return string(out), cmd.ProcessState.ExitCode(), nil
}

// captureReplies records the demo's allow for the JWT and its no-token 401, once.
func (l *lab) captureReplies(ctx context.Context) error {
	allowFile, denyFile := filepath.Join(l.work, "allow-response.json"), filepath.Join(l.work, "401-response.json")
	if _, err := os.Stat(denyFile); err == nil {
		return nil
	}
	demo, err := l.srv(ctx, "demo")
	if err != nil {
		return err
	}
	allow, _, err := l.check(ctx, demo.grpc, l.jwt)
	if err != nil {
		return err
	}
	deny, code, err := l.check(ctx, demo.grpc, "")
	if err != nil {
		return err
	}
	if !strings.Contains(allow, "okResponse") || !strings.Contains(deny, "Unauthorized") || (code != 0 && code != 2) {
		return fmt.Errorf("could not capture the demo's allow and 401 responses")
	}
	if err := os.WriteFile(allowFile, []byte(allow), 0o600); err != nil {
		return err
	}
	return os.WriteFile(denyFile, []byte(deny), 0o600)
}

// checkRequest is a CheckRequest for POST localhost:8080/mcp, in ghz's JSON, with a bearer token
// unless tok is "".
func checkRequest(tok string) map[string]any {
	h := map[string]any{}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	return map[string]any{"attributes": map[string]any{"request": map[string]any{"http": map[string]any{
		"method": "POST", "host": "localhost:8080", "path": "/mcp", "headers": h}}}}
}

// toolCallBody is the JSON-RPC tools/call that the tool and rules scenarios send.
const toolCallBody = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_documents","arguments":{"query":"quarterly revenue by region","limit":20,"filters":{"year":2026,"tags":["finance","report"]}},"_meta":{"progressToken":"p-42"}}}`

// dataFiles are the request payloads, one per scenario kind (ghz -D). The mix is a JSON array,
// which ghz v0.120.0 sends round-robin by request number for unary calls: 16 JWT (80%), 2
// opaque (10%), 1 without a token (5%), 1 invalid (5%) in every 20 requests. The slow-AS
// payload is a ghz template: every request carries a different token, so every Check misses.
func dataFiles(jwt, opaque, runID string) map[string]any {
	j, o, n, b := checkRequest(jwt), checkRequest(opaque), checkRequest(""), checkRequest("not.a.jwt")
	t := checkRequest(jwt)
	h := t["attributes"].(map[string]any)["request"].(map[string]any)["http"].(map[string]any)
	h["headers"].(map[string]any)["content-type"] = "application/json"
	h["raw_body"] = base64.StdEncoding.EncodeToString([]byte(toolCallBody))
	return map[string]any{
		"none": n, "jwt": j, "opaque": o, "bad": b, "toolcall": t,
		"redis":  checkRequest("bench-redis-" + runID),
		"mix":    []any{j, j, j, j, o, j, j, j, j, n, j, j, j, j, o, j, j, j, j, b},
		"unique": checkRequest("bench-slow-" + runID + "-{{.RequestNumber}}"),
	}
}

func (l *lab) writeData(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(l.data(name), b, 0o600)
}

func (l *lab) data(name string) string { return filepath.Join(l.work, name+".data") }

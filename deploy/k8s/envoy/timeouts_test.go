package envoy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"go.yaml.in/yaml/v3"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/mcp-authz/mcp-authz/internal/config"
	"github.com/mcp-authz/mcp-authz/internal/envoyload"
)

// The repository's root, and its envoy folder, whose files these tests read.
const (
	repo     = "../../../"
	envoyDir = repo + "envoy/"
)

// proxyMargin is what the proxy's ext_authz timeout must leave beyond mcp-authz's check_timeout:
// the gRPC round trip, and a Check answered at its deadline still has to be written back.
const proxyMargin = 250 * time.Millisecond

// worstCheck is the longest a Check may take under cfg: check_timeout, which also bounds every
// IdP wait (introspection.timeout must be below it; a JWKS fetch goes on in the background
// while the Check answers "unavailable" at its budget).
func worstCheck(t *testing.T, cfg *config.Config) time.Duration {
	t.Helper()
	cfg.ApplyDefaults()
	for i, is := range cfg.Issuers {
		if in := is.Introspection; in != nil && in.Timeout >= cfg.CheckTimeout {
			t.Errorf("issuers[%d].introspection.timeout %s is not below check_timeout %s", i, in.Timeout.D(), cfg.CheckTimeout.D())
		}
	}
	return cfg.CheckTimeout.D()
}

// defaultConfig is the configuration every default applies to, with an introspecting issuer so
// that its default timeout counts.
func defaultConfig() *config.Config {
	return &config.Config{
		Issuers: []config.Issuer{{Issuer: "https://as.example.com", Introspection: &config.Introspection{ClientID: "rs"}}},
	}
}

type proxyTimeout struct {
	file    string
	timeout time.Duration
}

// shippedProxyTimeouts reads the ext_authz timeout of every shipped Envoy and Istio config.
func shippedProxyTimeouts(t *testing.T) []proxyTimeout {
	t.Helper()
	var out []proxyTimeout
	files, _ := filepath.Glob(envoyDir + "*.yaml")
	for _, path := range files {
		f := filepath.Base(path)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := envoyload.Bootstrap(src)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, l := range b.GetStaticResources().GetListeners() {
			for _, fc := range l.GetFilterChains() {
				for _, nf := range fc.GetFilters() {
					hcm := envoyload.Unpack(t, nf.GetTypedConfig(), &hcmv3.HttpConnectionManager{})
					for _, hf := range hcm.GetHttpFilters() {
						if !hf.GetTypedConfig().MessageIs(&extauthzv3.ExtAuthz{}) {
							continue
						}
						ea := envoyload.Unpack(t, hf.GetTypedConfig(), &extauthzv3.ExtAuthz{})
						// Envoy's own default when unset is 200ms.
						d := 200 * time.Millisecond
						if ea.GetGrpcService().GetTimeout() != nil {
							d = ea.GetGrpcService().GetTimeout().AsDuration()
						} else if ea.GetHttpService().GetServerUri().GetTimeout() != nil {
							d = ea.GetHttpService().GetServerUri().GetTimeout().AsDuration()
						}
						out = append(out, proxyTimeout{f, d})
					}
				}
			}
		}
	}
	mesh, err := os.ReadFile(envoyDir + "istio/meshconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var mc meshv1alpha1.MeshConfig
	if err := decodeStrict(mesh, &mc); err != nil {
		t.Fatal(err)
	}
	for _, p := range mc.GetExtensionProviders() {
		if g := p.GetEnvoyExtAuthzGrpc(); g != nil {
			if g.GetTimeout() == nil {
				t.Errorf("istio/meshconfig.yaml: provider %s has no timeout; set one above check_timeout", p.GetName())
				continue
			}
			out = append(out, proxyTimeout{"istio/meshconfig.yaml " + p.GetName(), g.GetTimeout().AsDuration()})
		}
	}
	if len(out) < 3 {
		t.Fatalf("found ext_authz timeouts %v; want envoy.yaml, envoy-mtls.yaml and istio", out)
	}
	return out
}

// deployedConfigs are the mcp-authz configurations shipped beside the proxies: the Kubernetes
// ConfigMap, the Helm chart's default values and the example configuration.
func deployedConfigs(t *testing.T) map[string]*config.Config {
	t.Helper()
	out := map[string]*config.Config{}
	decode := func(name string, v any) *config.Config {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var c config.Config
		if err := yaml.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return &c
	}
	k8s, err := os.ReadFile(repo + "deploy/kubernetes/mcp-authz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytesReader(k8s))
	for {
		var obj struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&obj); err != nil {
			break
		}
		if obj.Kind == "ConfigMap" && obj.Data["config.yaml"] != "" {
			var v any
			if err := yaml.Unmarshal([]byte(obj.Data["config.yaml"]), &v); err != nil {
				t.Fatal(err)
			}
			out["deploy/kubernetes ConfigMap"] = decode("kubernetes", v)
		}
	}
	values, err := os.ReadFile(repo + "deploy/helm/mcp-authz/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var hv struct {
		Config any `yaml:"config"`
	}
	if err := yaml.Unmarshal(values, &hv); err != nil {
		t.Fatal(err)
	}
	out["deploy/helm values.yaml"] = decode("helm", hv.Config)
	ex, err := os.ReadFile(repo + "deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ev any
	if err := yaml.Unmarshal(ex, &ev); err != nil {
		t.Fatal(err)
	}
	out["deploy/config.example.yaml"] = decode("example", ev)
	if len(out) != 3 {
		t.Fatalf("found configurations %v", out)
	}
	return out
}

// TestProxyTimeoutsExceedCheckTimeout: an IdP that is slow or black-holed must be answered by
// mcp-authz (its configured status, its challenge, Retry-After with 503) and not by the proxy's
// bare 503, so every shipped proxy waits longer than any shipped mcp-authz configuration can
// take for one Check.
func TestProxyTimeoutsExceedCheckTimeout(t *testing.T) {
	worst := map[string]time.Duration{"defaults": worstCheck(t, defaultConfig())}
	for name, cfg := range deployedConfigs(t) {
		worst[name] = worstCheck(t, cfg)
	}
	for _, p := range shippedProxyTimeouts(t) {
		for name, w := range worst {
			if p.timeout < w+proxyMargin {
				t.Errorf("%s: ext_authz timeout %s, but a Check under %s may take %s: the proxy would answer a slow IdP with its own 503; raise the proxy timeout to at least %s or lower check_timeout",
					p.file, p.timeout, name, w, w+proxyMargin)
			}
		}
	}
}

// TestHealthCheckNoticesDrain: a stopping replica keeps answering for shutdown.drain while its
// health says NOT_SERVING; Envoy's active health check must see that within the drain, or it
// still sends Checks when the listener closes.
func TestHealthCheckNoticesDrain(t *testing.T) {
	drain := map[string]time.Duration{"defaults": config.DefaultDrain}
	for name, cfg := range deployedConfigs(t) {
		cfg.ApplyDefaults()
		drain[name] = cfg.Shutdown.Drain.D()
	}
	files, _ := filepath.Glob(envoyDir + "*.yaml")
	for _, path := range files {
		f := filepath.Base(path)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := envoyload.Bootstrap(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b.GetStaticResources().GetClusters() {
			// mcp-authz (gRPC health) and mcp-authz-http (/readyz, 503 while draining).
			if !strings.HasPrefix(c.GetName(), "mcp-authz") {
				continue
			}
			hcs := c.GetHealthChecks()
			if len(hcs) == 0 {
				t.Errorf("%s: cluster mcp-authz has no health check, so a draining replica is never noticed", f)
			}
			for _, hc := range hcs {
				detect := hc.GetInterval().AsDuration()*time.Duration(max(hc.GetUnhealthyThreshold().GetValue(), 1)) +
					hc.GetIntervalJitter().AsDuration()
				for name, d := range drain {
					if detect >= d {
						t.Errorf("%s: health check notices NOT_SERVING after up to %s, not within shutdown.drain %s (%s)", f, detect, d, name)
					}
				}
			}
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

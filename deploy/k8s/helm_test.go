package k8s

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/mcp-authz/mcp-authz/internal/config"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// The Helm chart in helm/mcp-authz, rendered by a real helm (deploy/helm/install-helm.sh puts
// one in the tools cache) and decoded strictly into k8s.io/api types with deploy_test.go's
// decoder.

const chartDir = "../helm/mcp-authz"

// helmBinary finds helm: the tools cache first (the version install-helm.sh pins), then PATH.
// Without one the tests skip, except in CI, where .ci/run installs it and its absence is a
// failure.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := filepath.Join(testenv.ToolsDir(), "helm"); testenv.Executable(p) {
		return p
	}
	return testenv.Tool(t, "helm", "run deploy/helm/install-helm.sh (into "+testenv.ToolsDir()+")")
}

// helmTemplate renders the chart as release "mcp-authz" in namespace "mcp-authz", the names
// the plain manifests use.
func helmTemplate(helm string, args ...string) ([]byte, error) {
	cmd := exec.Command(helm, append([]string{"template", "mcp-authz", chartDir, "--namespace", "mcp-authz"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// serviceMonitor is the part of prometheus-operator's monitoring.coreos.com/v1 ServiceMonitor
// that the chart writes, with the field names of its CRD. The operator's Go types are not a
// dependency of this module; decoding strictly into this subset still catches a misspelled or
// misplaced field.
type serviceMonitor struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// decodeRendered decodes helm's output document by document: a ServiceMonitor into
// serviceMonitor, everything else with decode (deploy_test.go).
func decodeRendered(out []byte) ([]any, error) {
	var objs []any
	for i, doc := range bytes.Split(out, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm typeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if tm.APIVersion == "monitoring.coreos.com/v1" && tm.Kind == "ServiceMonitor" {
			sm := &serviceMonitor{}
			if err := yaml.UnmarshalStrict(doc, sm); err != nil {
				return nil, fmt.Errorf("document %d (ServiceMonitor): %w", i, err)
			}
			objs = append(objs, sm)
			continue
		}
		if tm.APIVersion == "monitoring.coreos.com/v1" && tm.Kind == "PrometheusRule" {
			pr := &prometheusRule{}
			if err := yaml.UnmarshalStrict(doc, pr); err != nil {
				return nil, fmt.Errorf("document %d (PrometheusRule): %w", i, err)
			}
			objs = append(objs, pr)
			continue
		}
		o, err := decode(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

// chart is one rendering, by kind.
type chart struct {
	raw   []byte
	kinds []string // sorted
	dep   *appsv1.Deployment
	cm    *corev1.ConfigMap
	svc   *corev1.Service
	sa    *corev1.ServiceAccount
	hpa   *autoscalingv2.HorizontalPodAutoscaler
	pdb   *policyv1.PodDisruptionBudget
	sm    *serviceMonitor
	pr    *prometheusRule
}

func render(t *testing.T, helm string, args ...string) *chart {
	t.Helper()
	out, err := helmTemplate(helm, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeRendered(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	c := &chart{raw: out}
	for _, o := range objs {
		var kind string
		switch v := o.(type) {
		case *appsv1.Deployment:
			kind, c.dep = "Deployment", v
		case *corev1.ConfigMap:
			kind, c.cm = "ConfigMap", v
		case *corev1.Service:
			kind, c.svc = "Service", v
		case *corev1.ServiceAccount:
			kind, c.sa = "ServiceAccount", v
		case *autoscalingv2.HorizontalPodAutoscaler:
			kind, c.hpa = "HorizontalPodAutoscaler", v
		case *policyv1.PodDisruptionBudget:
			kind, c.pdb = "PodDisruptionBudget", v
		case *serviceMonitor:
			kind, c.sm = "ServiceMonitor", v
		case *prometheusRule:
			kind, c.pr = "PrometheusRule", v
		default:
			t.Fatalf("the chart rendered a %T", o)
		}
		if slices.Contains(c.kinds, kind) {
			t.Fatalf("the chart rendered two %ss", kind)
		}
		c.kinds = append(c.kinds, kind)
	}
	slices.Sort(c.kinds)
	if c.dep == nil || c.cm == nil || c.svc == nil {
		t.Fatalf("want at least a Deployment, a ConfigMap and a Service; got %v", c.kinds)
	}
	return c
}

func TestHelmLint(t *testing.T) {
	helm := helmBinary(t)
	for _, args := range [][]string{nil, {"-f", chartDir + "/ci-values.yaml"}} {
		out, err := exec.Command(helm, append([]string{"lint", "--strict", chartDir}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm lint %v: %v\n%s", args, err, out)
		}
		// In lint mode a template's fail is only logged.
		if bytes.Contains(out, []byte("Fail:")) || bytes.Contains(out, []byte("[WARNING]")) {
			t.Errorf("helm lint %v:\n%s", args, out)
		}
	}
}

// TestHelmChart renders the defaults, ci-values.yaml (every value set) and a few variants,
// and checks what no schema checks: the configuration parses with the service's own parser,
// every secret it references reaches the pod from a Secret (never the ConfigMap), the probes
// use gRPC health on the port the service listens on, the selectors select the pods, the
// config checksum is the ConfigMap's.
func TestHelmChart(t *testing.T) {
	helm := helmBinary(t)
	nullIdiom := filepath.Join(t.TempDir(), "file-secret.yaml")
	// Helm merges config into the default one: null removes a default key.
	if err := os.WriteFile(nullIdiom, []byte(`
config:
  admin: null
  cache: { redis: { password: { env: null, file: /run/secrets/redis/password } } }
secretEnv:
  - { name: MCP_AUTHZ_CACHE_SECRET, key: cache-secret }
  - { name: MCP_AUTHZ_INTROSPECTION_SECRET, key: introspection-secret }
extraVolumes: [ { name: redis, secret: { secretName: redis-auth } } ]
extraVolumeMounts: [ { name: redis, mountPath: /run/secrets/redis, readOnly: true } ]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		kinds string
		check func(t *testing.T, c *chart, cfg *config.Config)
	}{
		{"defaults", nil, "ConfigMap,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget,Service,ServiceAccount", nil},
		{"ci-values", []string{"-f", chartDir + "/ci-values.yaml"},
			"ConfigMap,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget,PrometheusRule,Service,ServiceAccount,ServiceMonitor",
			func(t *testing.T, c *chart, cfg *config.Config) {
				if c.dep.Name != "edge-authz" || c.sa.Name != "authz-sa" || c.dep.Spec.Template.Spec.ServiceAccountName != "authz-sa" {
					t.Errorf("names: deployment %s, service account %s", c.dep.Name, c.sa.Name)
				}
				if got := strings.Join(cfg.Cache.Redis.Addrs, ","); got != "redis-0.redis:6379,redis-1.redis:6379,redis-2.redis:6379" {
					t.Errorf("redis.addrs did not reach the configuration: %s", got)
				}
				if c.svc.Spec.Ports[0].Port != 9191 || c.dep.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 9291 {
					t.Error("service.grpcPort and containerPorts.grpc are not used apart")
				}
				if c.hpa.Spec.MaxReplicas != 20 || c.pdb.Spec.MinAvailable.IntValue() != 2 {
					t.Error("autoscaling or podDisruptionBudget values ignored")
				}
				if c.sm.Metadata.Labels["release"] != "kube-prometheus-stack" || c.sm.Spec.Endpoints[0].Interval != "15s" {
					t.Errorf("serviceMonitor values ignored: %+v", c.sm)
				}
				// The ServiceMonitor's decoding is strict too.
				bad := bytes.Replace(c.raw, []byte("scrapeTimeout:"), []byte("scrapeTimout:"), 1)
				if _, err := decodeRendered(bad); err == nil {
					t.Error("a misspelled ServiceMonitor field was accepted")
				}
			}},
		{"no-hpa-pdb-serviceaccount", []string{"--set", "autoscaling.enabled=false,podDisruptionBudget.enabled=false,serviceAccount.create=false,replicas=3"},
			"ConfigMap,Deployment,Service",
			func(t *testing.T, c *chart, _ *config.Config) {
				if c.dep.Spec.Template.Spec.ServiceAccountName != "default" {
					t.Errorf("serviceAccountName %q without a created account", c.dep.Spec.Template.Spec.ServiceAccountName)
				}
			}},
		{"file-secret-and-null", []string{"-f", nullIdiom},
			"ConfigMap,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget,Service,ServiceAccount",
			func(t *testing.T, c *chart, cfg *config.Config) {
				if cfg.Admin.Token != (config.Secret{}) || cfg.Cache.Redis.Password != (config.Secret{File: "/run/secrets/redis/password"}) {
					t.Errorf("null did not remove the defaults: admin %+v, redis password %+v", cfg.Admin.Token, cfg.Cache.Redis.Password)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := render(t, helm, tc.args...)
			if got := strings.Join(c.kinds, ","); got != tc.kinds {
				t.Errorf("objects %s, want %s", got, tc.kinds)
			}
			cfg := checkChart(t, c)
			if tc.check != nil && cfg != nil && !t.Failed() {
				tc.check(t, c, cfg)
			}
		})
	}
}

// checkChart checks the invariants every rendering keeps and returns the parsed configuration.
func checkChart(t *testing.T, c *chart) *config.Config {
	t.Helper()
	text, ok := c.cm.Data["config.yaml"]
	if !ok || len(c.cm.Data) != 1 || len(c.cm.BinaryData) != 0 {
		t.Fatalf("ConfigMap data: want config.yaml alone, got %v", slices.Sorted(maps.Keys(c.cm.Data)))
	}
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("the rendered configuration does not parse: %v\n%s", err, text)
	}
	pod := c.dep.Spec.Template.Spec
	graceCoversShutdown(t, "the chart", pod.TerminationGracePeriodSeconds, cfg)
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	ctr := pod.Containers[0]

	// Secrets: each one the configuration references comes from a Secret, as an environment
	// variable from a secretKeyRef or as a file in a mounted Secret volume; nothing else is
	// in the environment, so no secret value is written in any rendered object.
	env := map[string]corev1.EnvVar{}
	hasMemLimit := false
	for _, e := range ctr.Env {
		if e.Name == "GOMEMLIMIT" {
			hasMemLimit = true
			// The one variable that is not a secret: the container's own memory limit.
			if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil || e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
				t.Errorf("GOMEMLIMIT is not the container's memory limit: %+v", e)
			}
			continue
		}
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" {
			t.Errorf("env %s is not taken from a Secret key: %+v", e.Name, e)
		}
		env[e.Name] = e
	}
	if limit := ctr.Resources.Limits.Memory(); !limit.IsZero() != hasMemLimit {
		t.Errorf("memory limit %v, GOMEMLIMIT set: %v; want it set exactly when there is a limit", limit, hasMemLimit)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for path, s := range secretRefs(reflect.ValueOf(cfg).Elem(), "") {
		switch {
		case s.Env != "":
			if _, ok := env[s.Env]; !ok {
				t.Errorf("config %s reads $%s, which the Deployment does not set", path, s.Env)
			}
		case s.File != "":
			if !mountedFromSecret(s.File, ctr.VolumeMounts, volumes) {
				t.Errorf("config %s reads %s, which is not in a mounted Secret volume", path, s.File)
			}
		}
	}
	if len(cfg.Cache.Secret.Env) == 0 && len(cfg.Cache.Secret.File) == 0 {
		t.Error("no cache secret: replicas could not share Redis entries")
	}

	// The service listens where the container ports, the probes and the Service point.
	ports := map[string]int32{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for name, addr := range map[string]string{"grpc": cfg.Listen.GRPC, "http": cfg.Listen.HTTP} {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "0.0.0.0" || port != strconv.Itoa(int(ports[name])) {
			t.Errorf("config listens for %s on %q; the container port %q is %d", name, addr, name, ports[name])
		}
	}
	grpc := ports["grpc"]
	if p := ctr.ReadinessProbe; p == nil || p.GRPC == nil || p.GRPC.Port != grpc || p.GRPC.Service == nil || *p.GRPC.Service != "envoy.service.auth.v3.Authorization" {
		t.Errorf("readiness probe %+v: want gRPC health of envoy.service.auth.v3.Authorization on %d", ctr.ReadinessProbe, grpc)
	}
	if p := ctr.LivenessProbe; p == nil || p.GRPC == nil || p.GRPC.Port != grpc {
		t.Errorf("liveness probe %+v: want gRPC health on %d", ctr.LivenessProbe, grpc)
	}
	for _, p := range c.svc.Spec.Ports {
		if _, ok := ports[p.TargetPort.StrVal]; !ok {
			t.Errorf("Service port %s targets %q, no container port", p.Name, p.TargetPort.String())
		}
	}

	// The configuration is mounted where serve reads it, and its checksum rolls the pods.
	if !slices.Equal(ctr.Args, []string{"serve", "--config", "/etc/mcp-authz/config.yaml"}) {
		t.Errorf("args %v", ctr.Args)
	}
	if v, ok := volumes["config"]; !ok || v.ConfigMap == nil || v.ConfigMap.Name != c.cm.Name ||
		!slices.ContainsFunc(ctr.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "config" && m.MountPath == "/etc/mcp-authz" }) {
		t.Errorf("ConfigMap %s is not mounted at /etc/mcp-authz", c.cm.Name)
	}
	sum := sha256.Sum256([]byte(strings.TrimSuffix(text, "\n")))
	if got := c.dep.Spec.Template.Annotations["checksum/config"]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("checksum/config %q is not the ConfigMap's configuration's sha256", got)
	}

	// Non-root, read-only root file system, no privilege, no service account token.
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("pod does not require a non-root user")
	}
	if sc := ctr.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container security context %+v", ctr.SecurityContext)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the service account token is mounted")
	}
	if c.sa != nil && pod.ServiceAccountName != c.sa.Name {
		t.Errorf("pods run as %q, the chart creates %q", pod.ServiceAccountName, c.sa.Name)
	}

	// Selectors select the pods (and the ServiceMonitor the Service).
	podLabels := c.dep.Spec.Template.Labels
	selects(t, "Deployment", c.dep.Spec.Selector.MatchLabels, podLabels)
	selects(t, "Service", c.svc.Spec.Selector, podLabels)
	if c.pdb != nil {
		selects(t, "PodDisruptionBudget", c.pdb.Spec.Selector.MatchLabels, podLabels)
	}
	if c.hpa != nil {
		if r := c.hpa.Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != c.dep.Name {
			t.Errorf("HPA scales %s %s", r.Kind, r.Name)
		}
		if c.dep.Spec.Replicas != nil {
			t.Error("replicas set beside an HPA: every upgrade would reset the HPA's count")
		}
	} else if c.dep.Spec.Replicas == nil {
		t.Error("no HPA and no replicas")
	}
	if c.sm != nil {
		selects(t, "ServiceMonitor", c.sm.Spec.Selector.MatchLabels, c.svc.Labels)
		if e := c.sm.Spec.Endpoints; len(e) != 1 || e[0].Port != "http" || e[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoints %+v", e)
		}
	}
	return cfg
}

func selects(t *testing.T, what string, selector, labels map[string]string) {
	t.Helper()
	if len(selector) == 0 {
		t.Errorf("%s: empty selector", what)
	}
	for k, v := range selector {
		if labels[k] != v {
			t.Errorf("%s selects %s=%s, which the target lacks", what, k, v)
		}
	}
}

func mountedFromSecret(path string, mounts []corev1.VolumeMount, volumes map[string]corev1.Volume) bool {
	for _, m := range mounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			v := volumes[m.Name]
			return v.Secret != nil || v.Projected != nil || v.CSI != nil
		}
	}
	return false
}

var secretType = reflect.TypeFor[config.Secret]()

// secretRefs returns every config.Secret in v by its YAML path.
func secretRefs(v reflect.Value, path string) map[string]config.Secret {
	out := map[string]config.Secret{}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return secretRefs(v.Elem(), path)
		}
	case reflect.Struct:
		if v.Type() == secretType {
			out[path] = v.Interface().(config.Secret)
			break
		}
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			for p, s := range secretRefs(v.Field(i), strings.TrimPrefix(path+"."+name, ".")) {
				out[p] = s
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			for p, s := range secretRefs(v.Index(i), fmt.Sprintf("%s[%d]", path, i)) {
				out[p] = s
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			for p, s := range secretRefs(it.Value(), fmt.Sprintf("%s.%v", path, it.Key())) {
				out[p] = s
			}
		}
	}
	return out
}

// secretPaths lists where config.Secret fields sit in type t ("issuers[].introspection.client_secret").
func secretPaths(t reflect.Type, path string, depth int) []string {
	if depth > 10 {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		suffix := map[reflect.Kind]string{reflect.Pointer: "", reflect.Slice: "[]", reflect.Map: ".*"}[t.Kind()]
		return secretPaths(t.Elem(), path+suffix, depth+1)
	case reflect.Struct:
		if t == secretType {
			return []string{path}
		}
		var out []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				out = append(out, secretPaths(t.Field(i).Type, strings.TrimPrefix(path+"."+name, "."), depth+1)...)
			}
		}
		return out
	}
	return nil
}

// schemaSecretPaths lists where values.schema.json requires a secret reference under config.
func schemaSecretPaths(node map[string]any, path string) []string {
	if node["$ref"] == "#/definitions/secretRef" {
		return []string{path}
	}
	var out []string
	if props, ok := node["properties"].(map[string]any); ok {
		for k, v := range props {
			if m, ok := v.(map[string]any); ok {
				out = append(out, schemaSecretPaths(m, strings.TrimPrefix(path+"."+k, "."))...)
			}
		}
	}
	if items, ok := node["items"].(map[string]any); ok {
		out = append(out, schemaSecretPaths(items, path+"[]")...)
	}
	return out
}

// TestHelmSchemaCoversEverySecret: every secret field of the configuration is one the chart's
// schema refuses in clear, so a secret added to the configuration cannot be written into the
// ConfigMap by a chart user.
func TestHelmSchemaCoversEverySecret(t *testing.T) {
	b, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	cfgSchema := schema["properties"].(map[string]any)["config"].(map[string]any)
	got := slices.Sorted(slices.Values(schemaSecretPaths(cfgSchema, "")))
	want := slices.Sorted(slices.Values(secretPaths(reflect.TypeFor[config.Config](), "", 0)))
	if !slices.Equal(got, want) || len(want) == 0 {
		t.Errorf("values.schema.json checks secrets at\n  %v\nthe configuration has them at\n  %v", got, want)
	}
}

// TestHelmRefuses: mistakes fail at `helm template` (and so at `helm install`), with a message
// that says what to do, instead of rendering a ConfigMap with a secret in it or a pod that
// cannot start.
func TestHelmRefuses(t *testing.T) {
	helm := helmBinary(t)
	plain := filepath.Join(t.TempDir(), "plaintext.yaml")
	if err := os.WriteFile(plain, []byte(`
config:
  issuers:
    - issuer: https://auth.example.com
      introspection: { client_id: mcp-authz, client_secret: hunter2 }
  resources: [ { resource: https://mcp.example.com/mcp } ]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-f", plain}, "at '/config/issuers/0/introspection/client_secret': got string, want object"},
		{[]string{"--set", "config.admin.token=hunter2"}, "at '/config/admin/token': got string, want object"},
		{[]string{"--set", "config.admin.token.env=MY_TOKEN"}, "config reads a secret from $MY_TOKEN, which secretEnv does not set"},
		{[]string{"--set", "config.cache.secret.file=/run/secrets/cache"}, "give one of env and file"},
		{[]string{"--set", "config.cache.secret.env=null,config.cache.secret.file=/run/secrets/cache"}, "no extraVolumeMounts mountPath contains"},
		{[]string{"--set", "config.listen.grpc=0.0.0.0:1234"}, "set containerPorts.grpc instead"},
		{[]string{"--set-json", `secretEnv=[{"name":"MCP_AUTHZ_CACHE_SECRET","key":"a"},{"name":"MCP_AUTHZ_CACHE_SECRET","key":"b"}]`}, "secretEnv names MCP_AUTHZ_CACHE_SECRET twice"},
		{[]string{"--set", "replica=3"}, "additional properties 'replica' not allowed"},
		{[]string{"--set", "containerPorts.grpc=0"}, "/containerPorts/grpc"},
	} {
		out, err := helmTemplate(helm, tc.args...)
		if err == nil {
			t.Errorf("%v rendered:\n%s", tc.args, out)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want %q in\n%v", tc.args, tc.want, err)
		}
	}
}

// TestHelmConfigChecksum: a configuration change changes the pod template (the pods roll),
// anything else leaves it alone.
func TestHelmConfigChecksum(t *testing.T) {
	helm := helmBinary(t)
	sum := func(args ...string) string {
		return render(t, helm, args...).dep.Spec.Template.Annotations["checksum/config"]
	}
	base := sum()
	if sum("--set", "config.log.level=debug") == base || sum("--set", "redis.addrs={redis-0:6379}") == base || sum("--set", "containerPorts.http=8080") == base {
		t.Error("a configuration change left checksum/config unchanged")
	}
	if sum("--set", "replicas=7,resources.requests.cpu=1") != base {
		t.Error("checksum/config changed with the configuration unchanged")
	}
}

// TestHelmMatchesManifests: with its defaults, the chart renders the objects of
// kubernetes/mcp-authz.yaml. The differences are deliberate: the chart creates no Namespace
// (helm install --create-namespace) and no Secret (yours, with real values); it adds a
// ServiceAccount with no token, the app.kubernetes.io/instance label, the config checksum, and
// pins the image to the chart's appVersion; it leaves replicas to the HPA.
func TestHelmMatchesManifests(t *testing.T) {
	helm := helmBinary(t)
	c := render(t, helm)
	src, err := os.ReadFile("../kubernetes/mcp-authz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(src)
	if err != nil {
		t.Fatal(err)
	}
	var (
		dep    *appsv1.Deployment
		cm     *corev1.ConfigMap
		secret *corev1.Secret
		svc    *corev1.Service
		hpa    *autoscalingv2.HorizontalPodAutoscaler
		pdb    *policyv1.PodDisruptionBudget
	)
	for _, o := range objs {
		switch v := o.(type) {
		case *appsv1.Deployment:
			dep = v
		case *corev1.ConfigMap:
			cm = v
		case *corev1.Secret:
			secret = v
		case *corev1.Service:
			svc = v
		case *autoscalingv2.HorizontalPodAutoscaler:
			hpa = v
		case *policyv1.PodDisruptionBudget:
			pdb = v
		}
	}
	if dep == nil || cm == nil || secret == nil || svc == nil || hpa == nil || pdb == nil || c.hpa == nil || c.pdb == nil {
		t.Fatal("missing objects")
	}
	for _, n := range []string{c.dep.Name, c.cm.Name, c.svc.Name, c.hpa.Name, c.pdb.Name} {
		if n != dep.Name {
			t.Errorf("object named %q, the manifests' %q", n, dep.Name)
		}
	}

	// The same configuration, once parsed and defaulted.
	want, err := config.Parse([]byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Parse([]byte(c.cm.Data["config.yaml"]))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("configuration differs:\nchart     %s\nmanifests %s", jsonOf(got), jsonOf(want))
	}

	// The same pod, but for the service account and the image tag.
	pw, pg := dep.Spec.Template.Spec.DeepCopy(), c.dep.Spec.Template.Spec.DeepCopy()
	for _, p := range []*corev1.PodSpec{pw, pg} {
		p.ServiceAccountName = ""
		repo, _, _ := strings.Cut(p.Containers[0].Image, ":")
		p.Containers[0].Image, p.Containers[0].ImagePullPolicy = repo, ""
	}
	if a, b := jsonOf(pg), jsonOf(pw); a != b {
		t.Errorf("pod spec differs:\nchart     %s\nmanifests %s", a, b)
	}
	if a, b := jsonOf(c.dep.Spec.Strategy), jsonOf(dep.Spec.Strategy); a != b {
		t.Errorf("strategy: chart %s, manifests %s", a, b)
	}
	selects(t, "manifests' Deployment selector on the chart's pods", dep.Spec.Selector.MatchLabels, c.dep.Spec.Template.Labels)
	// Every Secret key the manifests document is the one the chart reads.
	for _, e := range c.dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "GOMEMLIMIT" {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r.Name != secret.Name || secret.StringData[r.Key] == "" {
			t.Errorf("env %s from %s/%s, which the manifests' Secret lacks", e.Name, r.Name, r.Key)
		}
	}

	if a, b := jsonOf(c.svc.Spec.Ports), jsonOf(svc.Spec.Ports); a != b {
		t.Errorf("Service ports: chart %s, manifests %s", a, b)
	}
	selects(t, "manifests' Service selector on the chart's pods", svc.Spec.Selector, c.dep.Spec.Template.Labels)
	if a, b := jsonOf(c.hpa.Spec), jsonOf(hpa.Spec); a != b {
		t.Errorf("HPA: chart %s, manifests %s", a, b)
	}
	if a, b := jsonOf(c.pdb.Spec.MinAvailable), jsonOf(pdb.Spec.MinAvailable); a != b {
		t.Errorf("PDB minAvailable: chart %s, manifests %s", a, b)
	}
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

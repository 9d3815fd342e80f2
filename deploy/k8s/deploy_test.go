package k8s

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/mcp-authz/mcp-authz/internal/config"
)

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// decode reads every document strictly (an unknown or misspelled field is an error) into its
// k8s.io/api type.
func decode(src []byte) ([]any, error) {
	var out []any
	for i, doc := range bytes.Split(src, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm typeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var obj any
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/Namespace":
			obj = &corev1.Namespace{}
		case "v1/ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "v1/ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1/Secret":
			obj = &corev1.Secret{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "apps/v1/Deployment":
			obj = &appsv1.Deployment{}
		case "autoscaling/v2/HorizontalPodAutoscaler":
			obj = &autoscalingv2.HorizontalPodAutoscaler{}
		case "policy/v1/PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		default:
			return nil, fmt.Errorf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
		out = append(out, obj)
	}
	return out, nil
}

func TestKubernetesManifests(t *testing.T) {
	src, err := os.ReadFile("../kubernetes/mcp-authz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decode(src)
	if err != nil {
		t.Fatal(err)
	}
	var dep *appsv1.Deployment
	var cm *corev1.ConfigMap
	var secret *corev1.Secret
	var svc *corev1.Service
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
		}
	}
	if dep == nil || cm == nil || secret == nil || svc == nil || len(objs) != 7 {
		t.Fatalf("want Namespace, ConfigMap, Secret, Deployment, Service, HPA, PDB; got %d objects", len(objs))
	}
	// The configuration in the ConfigMap is valid, and every secret it names by env is
	// provided by the Deployment from the Secret.
	cfg, err := config.Parse([]byte(cm.Data["config.yaml"]))
	if err != nil {
		t.Fatalf("ConfigMap config.yaml: %v", err)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		if ref := e.ValueFrom.SecretKeyRef; ref != nil {
			if ref.Name != secret.Name {
				t.Errorf("env %s refers to secret %q", e.Name, ref.Name)
			}
			if _, ok := secret.StringData[ref.Key]; !ok {
				t.Errorf("env %s refers to missing key %q", e.Name, ref.Key)
			}
			env[e.Name] = secret.StringData[ref.Key]
		}
	}
	for _, s := range []config.Secret{cfg.Cache.Secret, cfg.Cache.Redis.Password, cfg.Admin.Token, cfg.Issuers[0].Introspection.ClientSecret} {
		if _, ok := env[s.Env]; !ok {
			t.Errorf("config names env %s, which the Deployment does not set", s.Env)
		}
	}
	if len(env[cfg.Cache.Secret.Env]) < 32 {
		t.Error("the cache secret placeholder is shorter than the 32 bytes the service requires")
	}
	graceCoversShutdown(t, "kubernetes/mcp-authz.yaml", dep.Spec.Template.Spec.TerminationGracePeriodSeconds, cfg)
	// Probes use the gRPC health service the service registers.
	if p := c.ReadinessProbe; p == nil || p.GRPC == nil || p.GRPC.Port != 9191 || p.GRPC.Service == nil || *p.GRPC.Service != "envoy.service.auth.v3.Authorization" {
		t.Errorf("readiness probe: %+v", c.ReadinessProbe)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.GRPC == nil {
		t.Error("liveness probe is not gRPC health")
	}
	// The pod selector matches the template, and the Service selects the pods.
	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v || svc.Spec.Selector[k] != v {
			t.Errorf("label %s=%s does not select the pods", k, v)
		}
	}

	// The decoder catches mistakes.
	for _, mistake := range []struct{ from, to string }{
		{"readinessProbe:", "readinesProbe:"},
		{"minAvailable: 1", "minAvaliable: 1"},
		{"containerPort: 9191", "containerPort: \"ninety\""},
	} {
		bad := strings.Replace(string(src), mistake.from, mistake.to, 1)
		if bad == string(src) {
			t.Fatalf("fixture lacks %q", mistake.from)
		}
		if _, err := decode([]byte(bad)); err == nil {
			t.Errorf("accepted %q", mistake.to)
		}
	}
}

// The example configuration and the nginx configuration are tested where they are used:
// config.example.yaml by cmd/mcp-authz (check-config), nginx/mcp-authz.conf by
// authz/forwardauth (a real nginx).

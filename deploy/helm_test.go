package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/mcp-authz/mcp-authz/authz/config"
)

// helmBinary finds helm (install-helm.sh puts it in the tools cache).
func helmBinary(t *testing.T) string {
	tools := os.Getenv("MCP_AUTHZ_TOOLS")
	if tools == "" {
		home, _ := os.UserHomeDir()
		tools = filepath.Join(home, ".cache", "mcp-authz-tools")
	}
	if p := filepath.Join(tools, "helm"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	msg := "helm not found: run deploy/helm/install-helm.sh"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (.ci/run does)")
	}
	t.Skip(msg)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestHelmChart renders the chart with its defaults and with ci-values.yaml (every option),
// decodes every object strictly into k8s.io/api types, and checks what no schema checks:
// the configuration parses, probes use the gRPC health port, secrets come from a Secret.
func TestHelmChart(t *testing.T) {
	helm := helmBinary(t)
	if out, err := exec.Command(helm, "lint", "--strict", "helm/mcp-authz").CombinedOutput(); err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		grpcPort int32
		kinds    string
	}{
		{"defaults", nil, 9191, "ConfigMap,Deployment,HorizontalPodAutoscaler,PodDisruptionBudget,Service,ServiceAccount"},
		{"ci-values", []string{"-f", "helm/mcp-authz/ci-values.yaml"}, 9291, "ConfigMap,Deployment,PodDisruptionBudget,Service,ServiceAccount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"template", "rel", "helm/mcp-authz", "--namespace", "mcp-authz"}, tc.args...)
			out, err := exec.Command(helm, args...).Output()
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			objs, err := decode(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			var kinds []string
			for _, o := range objs {
				switch o := o.(type) {
				case *corev1.ConfigMap:
					kinds = append(kinds, "ConfigMap")
					c, err := config.Parse([]byte(o.Data["config.yaml"]))
					if err != nil {
						t.Errorf("the chart's config does not parse: %v\n%s", err, o.Data["config.yaml"])
					} else if !strings.HasSuffix(c.Listen.GRPC, ":"+itoa(tc.grpcPort)) {
						t.Errorf("config listens on %s, the Service on %d", c.Listen.GRPC, tc.grpcPort)
					}
				case *appsv1.Deployment:
					kinds = append(kinds, "Deployment")
					ctr := o.Spec.Template.Spec.Containers[0]
					if p := ctr.ReadinessProbe.GRPC; p == nil || p.Port != tc.grpcPort {
						t.Errorf("readiness probe %+v, want gRPC health on %d", ctr.ReadinessProbe, tc.grpcPort)
					}
					if p := ctr.LivenessProbe.GRPC; p == nil || p.Port != tc.grpcPort {
						t.Errorf("liveness probe %+v, want gRPC health on %d", ctr.LivenessProbe, tc.grpcPort)
					}
					for _, e := range ctr.Env {
						if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
							t.Errorf("env %s is not taken from a Secret", e.Name)
						}
					}
					if o.Spec.Template.Annotations["checksum/config"] == "" {
						t.Error("no config checksum annotation: pods would not roll on a config change")
					}
				case *corev1.Service:
					kinds = append(kinds, "Service")
				case *corev1.ServiceAccount:
					kinds = append(kinds, "ServiceAccount")
				default:
					kinds = append(kinds, strings.Split(typeName(o), ".")[1])
				}
			}
			if got := strings.Join(sorted(kinds), ","); got != tc.kinds {
				t.Errorf("objects %s, want %s", got, tc.kinds)
			}
		})
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func typeName(o any) string { return fmt.Sprintf("%T", o) } // "*v2.HorizontalPodAutoscaler"

func sorted(s []string) []string { slices.Sort(s); return s }

package k8s

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"
)

// prometheusRule is the part of prometheus-operator's monitoring.coreos.com/v1 PrometheusRule
// that the chart writes, with its CRD's field names; decoded strictly like serviceMonitor.
type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Groups []ruleGroup `json:"groups"`
	} `json:"spec"`
}

type ruleGroup struct {
	Name  string `json:"name"`
	Rules []struct {
		Alert       string            `json:"alert,omitempty"`
		Record      string            `json:"record,omitempty"`
		Expr        string            `json:"expr"`
		For         string            `json:"for,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
	} `json:"rules"`
}

// The chart's PrometheusRule carries exactly the rules of deploy/prometheus/mcp-authz.rules.yaml
// (which promtool checks and unit-tests), from a copy in the chart that must stay equal.
func TestHelmPrometheusRule(t *testing.T) {
	canonical, err := os.ReadFile("../prometheus/mcp-authz.rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	chartCopy, err := os.ReadFile(chartDir + "/files/mcp-authz.rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(canonical, chartCopy) {
		t.Fatal("deploy/helm/mcp-authz/files/mcp-authz.rules.yaml differs from deploy/prometheus/mcp-authz.rules.yaml: cp deploy/prometheus/mcp-authz.rules.yaml deploy/helm/mcp-authz/files/")
	}
	var want struct {
		Groups []ruleGroup `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(canonical, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.Groups) == 0 || len(want.Groups[0].Rules) < 7 {
		t.Fatalf("read %d groups from the rules file", len(want.Groups))
	}
	helm := helmBinary(t)
	if c := render(t, helm); c.pr != nil {
		t.Error("a PrometheusRule by default: it needs prometheus-operator's CRD")
	}
	c := render(t, helm, "--set", "prometheusRule.enabled=true,prometheusRule.labels.release=kps")
	if c.pr == nil {
		t.Fatal("no PrometheusRule with prometheusRule.enabled=true")
	}
	if c.pr.Metadata.Labels["release"] != "kps" || c.pr.Metadata.Name != c.dep.Name {
		t.Errorf("metadata: %+v", c.pr.Metadata)
	}
	if !reflect.DeepEqual(c.pr.Spec.Groups, want.Groups) {
		t.Errorf("the PrometheusRule's groups differ from the rules file:\n%s\n%s", jsonOf(c.pr.Spec.Groups), jsonOf(want.Groups))
	}
}

package k8s

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The chart and the manifests run the image deploy/k8s/release builds, at the app's version; the
// chart can pin it by digest instead, and refuses a digest that is not one.
func TestHelmImage(t *testing.T) {
	helm := helmBinary(t)
	b, err := os.ReadFile(chartDir + "/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Version != meta.AppVersion {
		t.Errorf("Chart.yaml: version %s, appVersion %s: the chart is versioned with the app", meta.Version, meta.AppVersion)
	}
	// deploy/k8s/release's defaultImage: where a release is pushed.
	want := "ghcr.io/mcp-authz/mcp-authz:" + meta.AppVersion
	if got := render(t, helm).dep.Spec.Template.Spec.Containers[0].Image; got != want {
		t.Errorf("chart's default image %s, want %s", got, want)
	}
	man, err := os.ReadFile("../kubernetes/mcp-authz.yaml")
	if err != nil {
		t.Fatal(err)
	}
	images := regexp.MustCompile(`(?m)^\s+image: (\S+)`).FindAllStringSubmatch(string(man), -1)
	if len(images) == 0 {
		t.Fatal("no image in kubernetes/mcp-authz.yaml")
	}
	for _, m := range images {
		if m[1] != want {
			t.Errorf("kubernetes/mcp-authz.yaml runs %s, want %s", m[1], want)
		}
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	if got := render(t, helm, "--set", "image.digest="+digest).dep.Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/mcp-authz/mcp-authz@"+digest {
		t.Errorf("pinned by digest: %s", got)
	}
	if got := render(t, helm, "--set", "image.repository=registry.example.test/mirror/mcp-authz,image.tag=9.9.9").dep.Spec.Template.Spec.Containers[0].Image; got != "registry.example.test/mirror/mcp-authz:9.9.9" {
		t.Errorf("own repository and tag: %s", got)
	}
	if _, err := helmTemplate(helm, "--set", "image.digest=latest"); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Errorf("a digest that is not one was accepted: %v", err)
	}
}

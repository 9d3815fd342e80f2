package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// toolsDir is where deploy/helm/install-helm.sh and install-cyclonedx.sh put their tools.
func toolsDir() string {
	if d := os.Getenv("MCP_AUTHZ_TOOLS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "mcp-authz-tools")
}

// tool finds a tool in the tools cache, then on PATH.
func tool(name, install string) (string, error) {
	if p := filepath.Join(toolsDir(), name); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is not in %s nor on PATH: run %s", name, toolsDir(), install)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// toolsPresent reports whether the SBOM and chart steps can run here.
func toolsPresent() bool {
	_, e1 := tool("cyclonedx-gomod", "deploy/k8s/release/install-cyclonedx.sh")
	_, e2 := tool("helm", "deploy/helm/install-helm.sh")
	return e1 == nil && e2 == nil
}

// sboms writes CycloneDX SBOMs made by cyclonedx-gomod: one for the module (every module
// that provides a package to it, tests included), one per binary (from the build
// information the binary carries), and one for the image: the amd64 binary's plus the
// Debian ca-certificates package whose bundle the image holds.
func sboms(o options, version string, bins map[string]string, progress io.Writer) ([]string, error) {
	cdx, err := tool("cyclonedx-gomod", "deploy/k8s/release/install-cyclonedx.sh")
	if err != nil {
		return nil, err
	}
	gen := func(out string, args ...string) error {
		fmt.Fprintf(progress, "release: SBOM %s\n", out)
		cmd := exec.Command(cdx, append(args[:1:1], append([]string{"-json", "-noserial", "-notimestamp", "-output", filepath.Join(absOut(o), out)}, args[1:]...)...)...)
		cmd.Dir = o.Root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("cyclonedx-gomod %s: %v\n%s", args[0], err, b)
		}
		return nil
	}
	var names []string
	mod := fmt.Sprintf("mcp-authz_%s_module.cdx.json", version)
	if err := gen(mod, "mod", "-test", "."); err != nil {
		return nil, err
	}
	names = append(names, mod)
	for _, arch := range []string{"amd64", "arm64"} {
		name := fmt.Sprintf("mcp-authz_%s_linux_%s.cdx.json", version, arch)
		bin, err := filepath.Abs(bins[arch])
		if err != nil {
			return nil, err
		}
		if err := gen(name, "bin", "-version", "v"+version, bin); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	if o.want("image") {
		name := fmt.Sprintf("mcp-authz_%s_image.cdx.json", version)
		if err := imageSBOM(filepath.Join(o.Out, names[1]), filepath.Join(o.Out, name)); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

func absOut(o options) string {
	p, err := filepath.Abs(o.Out)
	if err != nil {
		return o.Out
	}
	return p
}

// imageSBOM is the amd64 binary's SBOM with the image's one other input added: the CA
// bundle, from Debian's ca-certificates package at the version installed here.
func imageSBOM(binSBOM, out string) error {
	b, err := os.ReadFile(binSBOM)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	v, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "ca-certificates").Output()
	if err != nil {
		return fmt.Errorf("the CA bundle's package: dpkg-query ca-certificates: %v (apt-get install -y ca-certificates)", err)
	}
	ver := strings.TrimSpace(string(v))
	comps, _ := doc["components"].([]any)
	doc["components"] = append(comps, map[string]any{
		"type": "data", "bom-ref": "pkg:deb/debian/ca-certificates@" + ver, "name": "ca-certificates", "version": ver,
		"purl":        "pkg:deb/debian/ca-certificates@" + ver,
		"description": "the CA bundle at " + imageCABundle,
	})
	b, err = json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}

// packageChart lints the chart strictly and packages it at the app's version.
func packageChart(o options, version string, progress io.Writer) (string, error) {
	helm, err := tool("helm", "deploy/helm/install-helm.sh")
	if err != nil {
		return "", err
	}
	chart := filepath.Join(o.Root, "deploy/helm/mcp-authz")
	fmt.Fprintf(progress, "release: helm lint --strict, helm package %s\n", chart)
	if b, err := exec.Command(helm, "lint", "--strict", chart).CombinedOutput(); err != nil {
		return "", fmt.Errorf("helm lint --strict: %v\n%s", err, b)
	}
	if b, err := exec.Command(helm, "package", chart, "--version", version, "--app-version", version, "-d", absOut(o)).CombinedOutput(); err != nil {
		return "", fmt.Errorf("helm package: %v\n%s", err, b)
	}
	return fmt.Sprintf("mcp-authz-%s.tgz", version), nil
}

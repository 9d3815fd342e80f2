package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mcp-authz/mcp-authz/internal/testenv"
)

// One release for every test here: building two architectures takes minutes on 2 cores.
var (
	once     sync.Once
	shared   *made
	sharedO  options
	buildErr error
)

func sharedRelease(t *testing.T) (*made, options) {
	t.Helper()
	once.Do(func() {
		// .ci/run builds the release before the test run, so that two architectures do not
		// compile while timing-sensitive tests run beside this one; these tests then read it.
		if dir := os.Getenv("MCP_AUTHZ_RELEASE"); dir != "" {
			shared, buildErr = readRelease(dir, "../../..")
			sharedO = options{Root: "../../..", Out: dir, Image: defaultImage}
			return
		}
		dir, err := os.MkdirTemp("", "mcp-authz-release-")
		if err != nil {
			buildErr = err
			return
		}
		sharedO = options{Root: "../../..", Out: dir, Image: "registry.example.test/mcp-authz"}
		if !toolsPresent() {
			sharedO.Steps = []string{"image"} // the tests needing the tools skip or fail by themselves
		}
		var progress bytes.Buffer
		shared, buildErr = release(sharedO, &progress)
		if buildErr != nil {
			buildErr = errors.Join(buildErr, errors.New(progress.String()))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return shared, sharedO
}

// readRelease describes a release folder made by `go run -C deploy/k8s ./release` from this
// checkout (the version, commit and digest it must carry are recomputed here).
func readRelease(dir, root string) (*made, error) {
	version, err := chartVersion(filepath.Join(root, "deploy/helm/mcp-authz/Chart.yaml"))
	if err != nil {
		return nil, err
	}
	commit, _, err := vcsStamp(root)
	if err != nil {
		return nil, err
	}
	m := &made{Version: version, Commit: commit, Ref: defaultImage + ":" + version}
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return nil, fmt.Errorf("MCP_AUTHZ_RELEASE=%s is not a release folder: %w", dir, err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		if _, name, ok := strings.Cut(l, "  "); ok {
			m.Files = append(m.Files, name)
		}
	}
	m.Files = append(m.Files, "SHA256SUMS")
	top, err := layout.ImageIndexFromPath(filepath.Join(dir, "oci"))
	if err != nil {
		return nil, err
	}
	tm, err := top.IndexManifest()
	if err != nil || len(tm.Manifests) != 1 {
		return nil, fmt.Errorf("%s/oci: want one image index: %v", dir, err)
	}
	m.IndexDigest = tm.Manifests[0].Digest.String()
	return m, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedO.Out != "" && os.Getenv("MCP_AUTHZ_RELEASE") == "" {
		os.RemoveAll(sharedO.Out)
	}
	os.Exit(code)
}

// The image, read back with go-containerregistry: two architectures, the OCI labels, the
// non-root user and the entrypoint; the amd64 binary taken out of its layer runs `version`
// and `check-config` on the example configuration the image carries.
func TestImage(t *testing.T) {
	m, o := sharedRelease(t)
	top, err := layout.ImageIndexFromPath(filepath.Join(o.Out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != sharedO.Image+":"+m.Version {
		t.Fatalf("layout index: %+v", tm.Manifests)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d.String() != m.IndexDigest {
		t.Errorf("index digest %s, release reported %s", d, m.IndexDigest)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	arches := map[string]v1.Image{}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		arches[d.Platform.Architecture] = img
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != d.Platform.Architecture || d.Platform.OS != "linux" {
			t.Errorf("%s: config says %s/%s", d.Platform, cf.OS, cf.Architecture)
		}
		c := cf.Config
		if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != imageBinary || strings.Join(c.Cmd, " ") != "serve --config "+imageConfig {
			t.Errorf("%s: user %q, entrypoint %q, cmd %q", d.Platform.Architecture, c.User, c.Entrypoint, c.Cmd)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.version":  m.Version,
			"org.opencontainers.image.revision": m.Commit,
			"org.opencontainers.image.source":   sourceURL,
			"org.opencontainers.image.title":    "mcp-authz",
		} {
			if c.Labels[k] != want {
				t.Errorf("%s: label %s = %q, want %q", d.Platform.Architecture, k, c.Labels[k], want)
			}
		}
		if c.Labels["org.opencontainers.image.created"] == "" {
			t.Errorf("%s: no created label", d.Platform.Architecture)
		}
	}
	if len(arches) != 2 || arches["amd64"] == nil || arches["arm64"] == nil {
		t.Fatalf("architectures: %v", arches)
	}

	files := map[string][]byte{}
	modes := map[string]int64{}
	for arch, img := range arches {
		tr := tar.NewReader(mutate.Extract(img))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			files[arch+":"+h.Name], modes[arch+":"+h.Name] = b, h.Mode
		}
	}
	dir := t.TempDir()
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		bin := files[arch+":usr/local/bin/mcp-authz"]
		if bin == nil || modes[arch+":usr/local/bin/mcp-authz"]&0o111 == 0 {
			t.Fatalf("%s: no executable usr/local/bin/mcp-authz in the layer", arch)
		}
		f, err := elf.NewFile(bytes.NewReader(bin))
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != machine {
			t.Errorf("%s binary is for %s", arch, f.Machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s binary is dynamically linked: nothing in the image could load it", arch)
			}
		}
		if !strings.Contains(string(files[arch+":etc/passwd"]), "nonroot:x:65532:65532:") {
			t.Errorf("%s: /etc/passwd has no nonroot entry:\n%s", arch, files[arch+":etc/passwd"])
		}
		host, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
		if ca := files[arch+":etc/ssl/certs/ca-certificates.crt"]; len(ca) == 0 || !bytes.Equal(ca, host) {
			t.Errorf("%s: the CA bundle is not the machine's ca-certificates bundle (%d bytes)", arch, len(ca))
		}
	}
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		t.Skipf("the amd64 binary cannot run on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	bin := filepath.Join(dir, "mcp-authz")
	os.WriteFile(bin, files["amd64:usr/local/bin/mcp-authz"], 0o755)
	example := filepath.Join(dir, "config.example.yaml")
	os.WriteFile(example, files["amd64:etc/mcp-authz/config.example.yaml"], 0o644)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mcp-authz "+m.Version) || !strings.Contains(string(out), m.Commit) {
		t.Errorf("version: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "check-config", example).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid") {
		t.Errorf("check-config on the image's example: %v\n%s", err, out)
	}
}

// The same inputs give the same image, byte for byte: a rebuild can be checked against a
// published digest.
func TestImageReproducible(t *testing.T) {
	m, o := sharedRelease(t)
	commit, created, err := vcsStamp(o.Root)
	if err != nil {
		t.Fatal(err)
	}
	spec := imageSpec{
		Version: m.Version, Commit: commit, Created: created,
		Binaries: map[string]string{
			"amd64": filepath.Join(o.Out, "mcp-authz_"+m.Version+"_linux_amd64"),
			"arm64": filepath.Join(o.Out, "mcp-authz_"+m.Version+"_linux_arm64"),
		},
		CABundle: "/etc/ssl/certs/ca-certificates.crt", ExampleConfig: "../../../deploy/config.example.yaml",
		Ref: m.Ref,
	}
	idx, err := buildImage(spec, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d.String() != m.IndexDigest {
		t.Errorf("rebuilt index %s, first build %s", d, m.IndexDigest)
	}
}

// SHA256SUMS covers every file the release made and checks with sha256sum.
func TestChecksums(t *testing.T) {
	m, o := sharedRelease(t)
	sums, err := os.ReadFile(filepath.Join(o.Out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if f != "SHA256SUMS" && !strings.Contains(string(sums), "  "+f+"\n") {
			t.Errorf("SHA256SUMS lacks %s", f)
		}
	}
	cmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = o.Out
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c: %v\n%s", err, out)
	}
}

// needTools skips a test that needs cyclonedx-gomod and helm when they are missing, except in
// CI, where .ci/run installs them and their absence is a failure.
func needTools(t *testing.T) {
	t.Helper()
	if toolsPresent() {
		return
	}
	testenv.Missing(t, "cyclonedx-gomod or helm is missing: run deploy/k8s/release/install-cyclonedx.sh and deploy/helm/install-helm.sh")
}

func sbomModules(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct {
			Name, Version, Purl string
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.BOMFormat != "CycloneDX" {
		t.Fatalf("%s is not a CycloneDX JSON document: %v", path, err)
	}
	have := map[string]bool{}
	for _, c := range doc.Components {
		have[c.Name+"@"+c.Version] = true
	}
	return have
}

// The module SBOM lists every module go.mod requires. The only ones it may leave out are
// those no package of this module reaches, not even from a test (go.mod keeps them for the
// module graph); they are computed here and must be marked indirect.
func TestSBOMListsEveryGoModModule(t *testing.T) {
	needTools(t)
	m, o := sharedRelease(t)
	have := sbomModules(t, filepath.Join(o.Out, "mcp-authz_"+m.Version+"_module.cdx.json"))
	out, err := exec.Command("go", "mod", "edit", "-json", "../../../go.mod").Output()
	if err != nil {
		t.Fatal(err)
	}
	var gomod struct {
		Require []struct {
			Path, Version string
			Indirect      bool
		}
	}
	if err := json.Unmarshal(out, &gomod); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{with .Module}}{{.Path}}@{{.Version}}{{end}}", "./...")
	cmd.Dir = "../../.."
	out, err = cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	reached := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		reached[l] = true
	}
	for _, r := range gomod.Require {
		mv := r.Path + "@" + r.Version
		switch {
		case have[mv]:
		case !reached[mv] && r.Indirect:
			t.Logf("%s: in go.mod for the module graph only; no package of this module uses it", mv)
		default:
			t.Errorf("the module SBOM lacks %s", mv)
		}
	}
	if len(gomod.Require) < 20 {
		t.Fatalf("read only %d requirements from go.mod", len(gomod.Require))
	}
}

// The binary and image SBOMs list every module the binary was built from, as `go version -m`
// reads it from the binary, and the image's also lists the CA bundle's package.
func TestSBOMListsTheBinarysModules(t *testing.T) {
	needTools(t)
	m, o := sharedRelease(t)
	bin := filepath.Join(o.Out, "mcp-authz_"+m.Version+"_linux_amd64")
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var deps []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "dep" {
			deps = append(deps, f[1]+"@"+f[2])
		}
	}
	if len(deps) < 20 {
		t.Fatalf("go version -m found %d modules in the binary", len(deps))
	}
	for _, name := range []string{"linux_amd64", "image"} {
		have := sbomModules(t, filepath.Join(o.Out, "mcp-authz_"+m.Version+"_"+name+".cdx.json"))
		for _, d := range deps {
			if !have[d] {
				t.Errorf("%s SBOM lacks %s", name, d)
			}
		}
		if name == "image" {
			found := false
			for k := range have {
				found = found || strings.HasPrefix(k, "ca-certificates@")
			}
			if !found {
				t.Error("the image SBOM does not list ca-certificates")
			}
		}
	}
}

// The chart is packaged at the app's version, and its default image is the one the release
// builds.
func TestChartPackaged(t *testing.T) {
	needTools(t)
	m, o := sharedRelease(t)
	helm, err := tool("helm", "deploy/helm/install-helm.sh")
	if err != nil {
		t.Fatal(err)
	}
	tgz := filepath.Join(o.Out, "mcp-authz-"+m.Version+".tgz")
	out, err := exec.Command(helm, "show", "chart", tgz).CombinedOutput()
	if err != nil {
		t.Fatalf("helm show chart: %v\n%s", err, out)
	}
	for _, want := range []string{"version: " + m.Version, "appVersion: " + m.Version} {
		if !strings.Contains(string(out), want) {
			t.Errorf("packaged chart lacks %q:\n%s", want, out)
		}
	}
	out, err = exec.Command(helm, "show", "values", tgz).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "repository: "+defaultImage) {
		t.Errorf("packaged chart's default image is not %s: %v\n%s", defaultImage, err, out)
	}
}

// The layout pushes as `crane push DIR REF` pushes it (its one entry, this index) to a real
// registry (go-containerregistry's registry on loopback), and the registry then serves the
// index under the digest the release printed, for both platforms.
func TestImagePushes(t *testing.T) {
	m, o := sharedRelease(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	top, err := layout.ImageIndexFromPath(filepath.Join(o.Out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(reg.URL, "http://") + "/mcp-authz:" + m.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d.String() != m.IndexDigest {
		t.Errorf("the registry serves %s, the release printed %s", d, m.IndexDigest)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := remote.Image(ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		if cf, err := img.ConfigFile(); err != nil || cf.Architecture != arch {
			t.Errorf("%s: pulled %v, %v", arch, cf, err)
		}
	}
}

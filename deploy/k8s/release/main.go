// Command release builds everything a release ships into one folder: static linux binaries
// (amd64, arm64), a multi-architecture OCI image built without a Docker daemon
// (go-containerregistry, from no base image), an SBOM, the packaged Helm chart, and
// SHA256SUMS over all of them; then it prints what it made.
//
//	go run -C deploy/k8s ./release [-out dir] [-image ghcr.io/mcp-authz/mcp-authz]
//
// It lives in the deploy/k8s module so that go-containerregistry and the Kubernetes types stay
// out of mcp-authz's own go.mod; it builds the mcp-authz module it finds through that module's
// replace directive, into dist/ at that module's root unless -out says otherwise.
//
// The version is the chart's appVersion (deploy/helm/mcp-authz/Chart.yaml), which must equal
// the chart's own version: the chart is versioned with the app. Timestamps come from
// SOURCE_DATE_EPOCH or the last commit, so two runs on one commit give the same digests.
package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// options are a release's inputs; the flags fill them.
type options struct {
	Root  string // the repository
	Out   string
	Image string // repository of the image, without a tag
	// Steps lets a test skip the slow parts it does not look at; nil: every step.
	Steps []string
}

func (o options) want(step string) bool { return o.Steps == nil || slices.Contains(o.Steps, step) }

func run(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("release", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var o options
	fl.StringVar(&o.Out, "out", "", "output folder (emptied first); default: dist at the mcp-authz module's root")
	fl.StringVar(&o.Image, "image", defaultImage, "image repository the layout is tagged for")
	if err := fl.Parse(args); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	o.Root = root
	if o.Out == "" {
		o.Out = filepath.Join(root, "dist")
	}
	made, err := release(o, stderr)
	if err != nil {
		return err
	}
	return report(stdout, o, made)
}

// defaultImage is where releases are pushed; the chart's image.repository and the
// Kubernetes manifests name the same (deploy/k8s/image_test.go holds them to it).
const defaultImage = "ghcr.io/mcp-authz/mcp-authz"

// made is what a release produced.
type made struct {
	Version, Commit string
	Files           []string // relative to Out, SHA256SUMS last
	IndexDigest     string
	Ref             string
}

func release(o options, progress io.Writer) (*made, error) {
	version, err := chartVersion(filepath.Join(o.Root, "deploy/helm/mcp-authz/Chart.yaml"))
	if err != nil {
		return nil, err
	}
	commit, created, err := vcsStamp(o.Root)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(o.Out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	m := &made{Version: version, Commit: commit, Ref: o.Image + ":" + version}
	bins := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		name := fmt.Sprintf("mcp-authz_%s_linux_%s", version, arch)
		fmt.Fprintf(progress, "release: building %s\n", name)
		if err := goBuild(o.Root, arch, version, commit, created, filepath.Join(o.Out, name)); err != nil {
			return nil, err
		}
		bins[arch] = filepath.Join(o.Out, name)
		m.Files = append(m.Files, name)
	}
	if o.want("image") {
		fmt.Fprintf(progress, "release: writing the OCI image %s\n", m.Ref)
		dir := filepath.Join(o.Out, "oci")
		idx, err := buildImage(imageSpec{
			Version: version, Commit: commit, Created: created, Binaries: bins,
			CABundle: "/etc/ssl/certs/ca-certificates.crt", ExampleConfig: filepath.Join(o.Root, "deploy/config.example.yaml"),
			Ref: m.Ref,
		}, dir)
		if err != nil {
			return nil, err
		}
		d, err := idx.Digest()
		if err != nil {
			return nil, err
		}
		m.IndexDigest = d.String()
		name := fmt.Sprintf("mcp-authz_%s_oci.tar", version)
		if err := tarDir(dir, filepath.Join(o.Out, name), created); err != nil {
			return nil, err
		}
		m.Files = append(m.Files, name)
	}
	if o.want("sbom") {
		names, err := sboms(o, version, bins, progress)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, names...)
	}
	if o.want("chart") {
		name, err := packageChart(o, version, progress)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, name)
	}
	if err := writeSums(o.Out, m.Files); err != nil {
		return nil, err
	}
	m.Files = append(m.Files, "SHA256SUMS")
	return m, nil
}

// chartVersion is the app's version: the chart's appVersion, which must equal its version.
func chartVersion(chartYAML string) (string, error) {
	b, err := os.ReadFile(chartYAML)
	if err != nil {
		return "", err
	}
	var c struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("%s: %w", chartYAML, err)
	}
	if c.Version == "" || c.Version != c.AppVersion {
		return "", fmt.Errorf("%s: version %q and appVersion %q must be equal (the chart is versioned with the app)", chartYAML, c.Version, c.AppVersion)
	}
	return c.AppVersion, nil
}

// vcsStamp is the commit (with -dirty for uncommitted changes) and the timestamp every file
// of the release carries: SOURCE_DATE_EPOCH if set, else the commit's time.
func vcsStamp(root string) (commit string, created time.Time, err error) {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if commit, err = git("rev-parse", "HEAD"); err != nil {
		return "", time.Time{}, fmt.Errorf("git rev-parse HEAD: %w (a release is built from a git checkout)", err)
	}
	if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
		commit += "-dirty"
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = git("log", "-1", "--format=%ct"); err != nil {
			return "", time.Time{}, err
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)
	}
	return commit, time.Unix(sec, 0).UTC(), nil
}

func goBuild(root, arch, version, commit string, created time.Time, out string) error {
	const pkg = "github.com/mcp-authz/mcp-authz/buildinfo"
	ld := fmt.Sprintf("-s -w -X %s.version=%s -X %s.commit=%s -X %s.date=%s", pkg, version, pkg, commit, pkg, created.Format(time.RFC3339))
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ld, "-o", abs, "./cmd/mcp-authz")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build (%s): %v\n%s", arch, err, b)
	}
	return nil
}

// tarDir archives an OCI layout as an oci-archive (skopeo's oci-archive: transport reads it).
func tarDir(dir, out string, created time.Time) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: created, Mode: 0o644}
		if d.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			return tw.WriteHeader(h)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Typeflag, h.Size = tar.TypeReg, int64(len(b))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	return errors.Join(err, tw.Close(), f.Close())
}

func fileSHA256(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// writeSums writes SHA256SUMS in sha256sum's format, so `sha256sum -c SHA256SUMS` checks it.
func writeSums(out string, files []string) error {
	var b strings.Builder
	for _, name := range files {
		sum, _, err := fileSHA256(filepath.Join(out, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, name)
	}
	return os.WriteFile(filepath.Join(out, "SHA256SUMS"), []byte(b.String()), 0o644)
}

func report(w io.Writer, o options, m *made) error {
	fmt.Fprintf(w, "mcp-authz %s (commit %s, %s) in %s:\n", m.Version, m.Commit, runtime.Version(), o.Out)
	for _, name := range m.Files {
		sum, n, err := fileSHA256(filepath.Join(o.Out, name))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-44s %10d B  sha256:%s\n", name, n, sum)
	}
	if m.IndexDigest != "" {
		fmt.Fprintf(w, "image index %s (linux/amd64, linux/arm64), OCI layout in %s/oci\n", m.IndexDigest, o.Out)
		// Without --index: the layout's one entry (this index) is pushed as is, keeping the
		// digest above; --index would wrap it in another index.
		fmt.Fprintf(w, "push it: go run github.com/google/go-containerregistry/cmd/crane@v0.22.1 push %s/oci %s\n", o.Out, m.Ref)
	}
	return nil
}

// repoRoot is the mcp-authz module's root: where this module's replace directive points
// (go list answers with an absolute directory).
func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mainModule).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go list -m %s: %v\n%s(run it inside the deploy/k8s module: go run -C deploy/k8s ./release)", mainModule, err, ee.Stderr)
		}
		return "", err
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		return "", fmt.Errorf("%s has no directory here: run it inside the deploy/k8s module (go run -C deploy/k8s ./release)", mainModule)
	}
	return dir, nil
}

const mainModule = "github.com/mcp-authz/mcp-authz"

package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed facts, which the chart, the manifests and the tests rely on.
const (
	imageBinary   = "/usr/local/bin/mcp-authz"
	imageUser     = "65532:65532" // nonroot, as distroless names it; no shell, no home writes
	imageConfig   = "/etc/mcp-authz/config.yaml"
	imageCABundle = "/etc/ssl/certs/ca-certificates.crt"
	sourceURL     = "https://github.com/mcp-authz/mcp-authz"
)

// imageSpec is one release's image: the binaries by architecture and what goes beside them.
type imageSpec struct {
	Version, Commit string
	Created         time.Time         // every timestamp in the image, for a reproducible digest
	Binaries        map[string]string // GOARCH → path of a static linux binary
	CABundle        string            // PEM file of trusted CAs (Debian's ca-certificates)
	ExampleConfig   string
	Ref             string // e.g. ghcr.io/mcp-authz/mcp-authz:0.1.0, recorded in the layout
}

// ociLabels are the org.opencontainers.image.* annotations (image-spec annotations.md), as
// config labels and on the index.
func (s imageSpec) ociLabels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "mcp-authz",
		"org.opencontainers.image.description": "OAuth 2.1 resource-server enforcement for MCP servers, as an Envoy ext_authz service",
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.revision":    s.Commit,
		"org.opencontainers.image.created":     s.Created.UTC().Format(time.RFC3339),
		"org.opencontainers.image.source":      sourceURL,
		"org.opencontainers.image.url":         sourceURL,
		"org.opencontainers.image.base.name":   "scratch",
	}
}

// buildImage writes a multi-architecture OCI image index into an OCI layout at dir. Each
// image is one layer on nothing (no base image can be pulled here, and none is needed by a
// static binary): the binary, the CA bundle, a passwd entry for the non-root user, and the
// example configuration.
func buildImage(s imageSpec, dir string) (v1.ImageIndex, error) {
	ca, err := os.ReadFile(s.CABundle)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w (apt-get install -y ca-certificates)", err)
	}
	example, err := os.ReadFile(s.ExampleConfig)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		bin, ok := s.Binaries[arch]
		if !ok {
			return nil, fmt.Errorf("no %s binary", arch)
		}
		exe, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		img, err := archImage(s, arch, exe, ca, example)
		if err != nil {
			return nil, fmt.Errorf("%s image: %w", arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	idx = mutate.Annotations(idx, s.ociLabels()).(v1.ImageIndex)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": s.Ref})); err != nil {
		return nil, err
	}
	return idx, nil
}

func archImage(s imageSpec, arch string, exe, ca, example []byte) (v1.Image, error) {
	files, err := rootFS(s.Created, exe, ca, example)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(files)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: s.Created}, CreatedBy: "deploy/release (go-containerregistry)", Comment: "mcp-authz " + s.Version,
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = arch, "linux", v1.Time{Time: s.Created}
	cf.Config = v1.Config{
		User:       imageUser,
		Entrypoint: []string{imageBinary},
		Cmd:        []string{"serve", "--config", imageConfig},
		// Go reads SSL_CERT_FILE; setting it keeps the bundle found even if a future Go
		// stops probing Debian's path.
		Env:          []string{"PATH=/usr/local/bin", "HOME=/home/nonroot", "SSL_CERT_FILE=" + imageCABundle},
		ExposedPorts: map[string]struct{}{"9191/tcp": {}, "9192/tcp": {}},
		WorkingDir:   "/",
		Labels:       s.ociLabels(),
	}
	return mutate.ConfigFile(img, cf)
}

// rootFS is the layer's tar: sorted, fixed timestamps and owners, so the same inputs give the
// same digest. Nothing in it needs writing at run time (readOnlyRootFilesystem: true).
func rootFS(created time.Time, exe, ca, example []byte) ([]byte, error) {
	type entry struct {
		name string
		mode int64
		uid  int
		body []byte
	}
	entries := []entry{
		{"etc/", 0o755, 0, nil},
		{"etc/group", 0o644, 0, []byte("root:x:0:\nnonroot:x:65532:\n")},
		{"etc/mcp-authz/", 0o755, 0, nil},
		{"etc/mcp-authz/config.example.yaml", 0o644, 0, example},
		{"etc/passwd", 0o644, 0, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{"etc/ssl/", 0o755, 0, nil},
		{"etc/ssl/certs/", 0o755, 0, nil},
		{"etc/ssl/certs/ca-certificates.crt", 0o644, 0, ca},
		{"home/", 0o755, 0, nil},
		{"home/nonroot/", 0o700, 65532, nil},
		{"tmp/", 0o1777, 0, nil},
		{"usr/", 0o755, 0, nil},
		{"usr/local/", 0o755, 0, nil},
		{"usr/local/bin/", 0o755, 0, nil},
		{"usr/local/bin/mcp-authz", 0o755, 0, exe},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: created}
		if path.Clean(e.name) != e.name {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

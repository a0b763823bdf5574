package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestImage builds the image for this machine's architecture (make image adds arm64; the build
// path is the same) and checks it as a runtime would see it: an OCI index naming the platform, a
// config that runs /pq-issuer as 65532:65532, and a binary that, unpacked and run as that user,
// answers --help and --version (stamped with the image's version).
func TestImage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "oci")
	opts := options{
		repoRoot: "../..", out: out, platforms: []string{"linux/" + runtime.GOARCH},
		version: "0.1.0-test", revision: "abc123", created: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
	}
	built, err := build(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}

	p, err := layout.FromPath(out)
	if err != nil {
		t.Fatalf("the output is not an OCI image layout: %v", err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topManifest.Manifests) != 1 || topManifest.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "pq-issuer:0.1.0-test" {
		t.Fatalf("index.json %+v, want one image index named pq-issuer:0.1.0-test", topManifest.Manifests)
	}
	wantDigest, _ := built.Digest()
	if topManifest.Manifests[0].Digest != wantDigest || topManifest.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("index.json points at %s (%s), want the built OCI index %s", topManifest.Manifests[0].Digest, topManifest.Manifests[0].MediaType, wantDigest)
	}
	idx, err := top.ImageIndex(wantDigest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Platform == nil || im.Manifests[0].Platform.String() != "linux/"+runtime.GOARCH {
		t.Fatalf("image index manifests %+v, want one for linux/%s", im.Manifests, runtime.GOARCH)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s", cfg.OS, cfg.Architecture)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("config user %q, want 65532:65532 (non-root, as the chart's runAsUser)", cfg.Config.User)
	}
	if len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/pq-issuer" || len(cfg.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want [/pq-issuer] and no cmd", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.source":   "https://github.com/pq-issuer/pq-issuer",
		"org.opencontainers.image.version":  "0.1.0-test",
		"org.opencontainers.image.revision": "abc123",
	} {
		if cfg.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cfg.Config.Labels[k], v)
		}
	}
	if !cfg.Created.Time.Equal(opts.created) {
		t.Errorf("created %s, want %s", cfg.Created.Time, opts.created)
	}

	// Unpack the one layer into a directory the non-root user can enter.
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d (%v), want 1", len(layers), err)
	}
	root, err := os.MkdirTemp("", "pq-issuer-rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	files := unpack(t, layers[0], root)
	for name, mode := range map[string]os.FileMode{"pq-issuer": 0o755, "etc/passwd": 0o644, "etc/group": 0o644} {
		if got, ok := files[name]; !ok || got != mode {
			t.Errorf("%s: mode %v (present %v), want %v", name, got, ok, mode)
		}
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if !strings.Contains(string(passwd), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", passwd)
	}

	cmd := exec.CommandContext(t.Context(), filepath.Join(root, "pq-issuer"), "--help")
	if os.Getuid() == 0 {
		// As the image's user, the way a runtime starts it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	}
	cmd.Dir = root
	outp, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pq-issuer --help from the image: %v\n%s", err, outp)
	}
	for _, flag := range []string{"-cluster-resource-namespace", "-cluster-issuers-only", "-leader-elect"} {
		if !strings.Contains(string(outp), flag) {
			t.Errorf("--help output lacks %s:\n%s", flag, outp)
		}
	}
	version := exec.CommandContext(t.Context(), filepath.Join(root, "pq-issuer"), "--version")
	version.SysProcAttr, version.Dir = cmd.SysProcAttr, root
	if outp, err = version.CombinedOutput(); err != nil || !strings.HasPrefix(string(outp), "pq-issuer 0.1.0-test (") {
		t.Errorf("pq-issuer --version from the image: %v, %q; want the stamped version 0.1.0-test", err, outp)
	}
	mt, _ := layers[0].MediaType()
	if mt != types.OCILayer {
		t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
	}
	size, _ := layers[0].Size()
	t.Logf("image for linux/%s: one gzip layer of %.1f MiB", runtime.GOARCH, float64(size)/(1<<20))
}

// unpack extracts an uncompressed layer into root and returns each file's permission bits.
func unpack(t *testing.T, layer v1.Layer, root string) map[string]os.FileMode {
	t.Helper()
	rc, err := layer.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]os.FileMode{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(root, hdr.Name)
		if !strings.HasPrefix(path, root+string(filepath.Separator)) {
			t.Fatalf("layer entry %q escapes the root", hdr.Name)
		}
		mode := os.FileMode(hdr.Mode).Perm()
		if hdr.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(path, mode); err != nil {
				t.Fatal(err)
			}
			continue
		}
		files[hdr.Name] = mode
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
	}
}

// Command image builds pq-issuer's container image without a container engine: the pq-issuer
// binary, built static for each platform and stamped with the version (or taken from
// --binary-dir, where make release built it), on an empty base with a passwd entry for the non-root
// user 65532 (what distroless/static:nonroot offers a static binary), written as a multi-platform
// OCI image layout. Push it with `crane push <dir> <registry>/pq-issuer:<tag>`; with Docker, the
// Dockerfile builds the same binary on distroless itself.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonRootUser is distroless' "nonroot" user; the Helm chart runs the pod as it.
const nonRootUser = "65532:65532"

type options struct {
	repoRoot  string   // the root module, holding package main of pq-issuer
	out       string   // OCI image layout directory, replaced
	platforms []string // os/arch
	version   string
	revision  string
	binaryDir string    // holds pq-issuer-linux-<arch>, used instead of building; empty: build
	created   time.Time // image and file times, for a reproducible image
}

func main() {
	opts := options{}
	var platforms, created string
	flag.StringVar(&opts.repoRoot, "repo-root", "..", "The pq-issuer repository (root Go module)")
	flag.StringVar(&opts.out, "out", "../bin/image/pq-issuer", "OCI image layout directory to write (replaced)")
	flag.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "Comma-separated os/arch list")
	flag.StringVar(&opts.version, "version", "dev", "Version: the label org.opencontainers.image.version and what pq-issuer --version prints")
	flag.StringVar(&opts.revision, "revision", "", "Source revision label (org.opencontainers.image.revision)")
	flag.StringVar(&opts.binaryDir, "binary-dir", "", "Take DIR/pq-issuer-linux-<arch> (built by make release) instead of building pq-issuer")
	flag.StringVar(&created, "created", "1970-01-01T00:00:00Z", "Creation time (RFC 3339), e.g. the commit time, so rebuilds are identical")
	flag.Parse()
	opts.platforms = strings.Split(platforms, ",")
	var err error
	if opts.created, err = time.Parse(time.RFC3339, created); err != nil {
		fmt.Fprintln(os.Stderr, "image: --created:", err)
		os.Exit(2)
	}
	idx, err := build(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	digest, err := idx.Digest()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("Wrote %s (%s, %s)\n", opts.out, strings.Join(opts.platforms, ", "), digest)
}

// build compiles pq-issuer for each platform and writes the image index to opts.out.
func build(ctx context.Context, opts options) (v1.ImageIndex, error) {
	tmp, err := os.MkdirTemp("", "pq-issuer-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	var idx v1.ImageIndex = empty.Index
	idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
	for _, platform := range opts.platforms {
		goos, goarch, ok := strings.Cut(platform, "/")
		if !ok || goos != "linux" {
			return nil, fmt.Errorf("platform %q: want linux/<arch>", platform)
		}
		bin := filepath.Join(opts.binaryDir, "pq-issuer-"+goos+"-"+goarch)
		if opts.binaryDir == "" {
			bin = filepath.Join(tmp, "pq-issuer-"+goarch)
			cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w -X main.version="+opts.version, "-o", bin, ".")
			cmd.Dir = opts.repoRoot
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("go build for %s: %w\n%s", platform, err, out)
			}
		}
		img, err := platformImage(bin, goos, goarch, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", platform, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: goos, Architecture: goarch}},
		})
	}

	if err := os.RemoveAll(opts.out); err != nil {
		return nil, err
	}
	p, err := layout.Write(opts.out, empty.Index)
	if err != nil {
		return nil, err
	}
	ref := "pq-issuer:" + opts.version
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		return nil, err
	}
	return idx, nil
}

// platformImage is one platform's image: one layer with the binary and /etc/passwd, /etc/group.
func platformImage(bin, goos, goarch string, opts options) (v1.Image, error) {
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"etc/", 0o755, nil},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")},
		{"pq-issuer", 0o755, binary},
	} {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: opts.created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if strings.HasSuffix(f.name, "/") {
			hdr.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: opts.created}, CreatedBy: "tools/image: pq-issuer " + opts.version}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = goos, goarch
	cfg.Created = v1.Time{Time: opts.created}
	cfg.Config = v1.Config{
		User:       nonRootUser,
		Entrypoint: []string{"/pq-issuer"},
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.title":       "pq-issuer",
			"org.opencontainers.image.description": "cert-manager external issuer signing with ML-DSA (FIPS 204) CA keys",
			"org.opencontainers.image.source":      "https://github.com/pq-issuer/pq-issuer",
			"org.opencontainers.image.licenses":    "Apache-2.0",
			"org.opencontainers.image.version":     opts.version,
			"org.opencontainers.image.revision":    opts.revision,
		},
	}
	return mutate.ConfigFile(img, cfg)
}

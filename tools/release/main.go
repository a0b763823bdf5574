// Command release builds what a pq-issuer release publishes into one directory (make release):
// the pq-issuer controller binaries and their multi-platform image as an OCI layout in a tar, the
// packaged Helm chart, kubectl-pq archives for every platform with the krew manifest that installs
// them, a CycloneDX SBOM of each program, and SHA256SUMS over all of it. Every binary is static,
// path-free and stamped with the version (-X main.version).
package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// The GitHub repository whose releases host the artefacts: the krew manifest downloads from it.
const (
	repository  = "github.com/pq-issuer/pq-issuer"
	downloadURL = "https://" + repository + "/releases/download"
)

// The artefacts' names in the output directory, for a program and a platform.
const (
	controllerName = "pq-issuer"
	pluginName     = "kubectl-pq"
	imageArchive   = "pq-issuer-image.oci.tar"
	krewManifest   = "krew/pq.yaml"
	checksums      = "SHA256SUMS"
)

// versionPattern is SemVer without build metadata: the version becomes an image tag and the chart's
// app.kubernetes.io/version label, and neither may hold a "+".
var versionPattern = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

type options struct {
	repoRoot            string    // the root module, holding the two programs and the chart
	toolsDir            string    // this module: tools/image and the pinned cyclonedx-gomod
	out                 string    // replaced
	version             string    // SemVer, with or without a leading "v"
	helm                string    // the Helm binary that packages the chart
	revision            string    // the image's source revision label
	created             time.Time // file and image times, so that rebuilds are identical
	controllerPlatforms []string  // linux/<arch>: pq-issuer binaries and the image
	pluginPlatforms     []string  // os/arch: kubectl-pq archives
}

func main() {
	opts := options{}
	var controllerPlatforms, pluginPlatforms, created string
	flag.StringVar(&opts.repoRoot, "repo-root", "..", "The pq-issuer repository (root Go module)")
	flag.StringVar(&opts.toolsDir, "tools-dir", ".", "The tools module (tools/image, cyclonedx-gomod)")
	flag.StringVar(&opts.out, "out", "../dist", "Directory to write the release into (replaced)")
	flag.StringVar(&opts.version, "version", "", "Release version, SemVer (0.1.0 or v0.1.0); the git tag is v<version>")
	flag.StringVar(&opts.helm, "helm", "", "Helm binary (make helm builds it into bin/)")
	flag.StringVar(&opts.revision, "revision", "", "Source revision (org.opencontainers.image.revision)")
	flag.StringVar(&created, "created", "1970-01-01T00:00:00Z", "File and image time (RFC 3339), e.g. the commit time")
	flag.StringVar(&controllerPlatforms, "controller-platforms", "linux/amd64,linux/arm64", "Platforms of the pq-issuer binaries and image")
	flag.StringVar(&pluginPlatforms, "plugin-platforms", "linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64", "Platforms of the kubectl-pq archives")
	flag.Parse()
	opts.controllerPlatforms = strings.Split(controllerPlatforms, ",")
	opts.pluginPlatforms = strings.Split(pluginPlatforms, ",")
	var err error
	if opts.created, err = time.Parse(time.RFC3339, created); err != nil {
		fmt.Fprintln(os.Stderr, "release: --created:", err)
		os.Exit(2)
	}
	started := time.Now()
	files, err := release(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
	fmt.Printf("Release %s in %s (%d files, %s):\n", opts.version, opts.out, len(files), time.Since(started).Round(time.Second))
	for _, f := range files {
		fmt.Println("  " + f)
	}
}

// releaseTag is the git tag of version, under which GitHub serves the release's files.
func releaseTag(version string) (string, error) {
	if !versionPattern.MatchString(version) {
		return "", fmt.Errorf("version %q is not a release version: want SemVer without build metadata, such as 0.1.0, v0.1.0 or 0.2.0-rc.1", version)
	}
	return "v" + strings.TrimPrefix(version, "v"), nil
}

// release writes the release into opts.out and returns the names of its files, SHA256SUMS last.
func release(ctx context.Context, opts options) ([]string, error) {
	tag, err := releaseTag(opts.version)
	if err != nil {
		return nil, err
	}
	if opts.helm == "" {
		return nil, fmt.Errorf("no Helm binary: pass --helm (make release uses bin/helm-<version>)")
	}
	for _, dir := range []*string{&opts.repoRoot, &opts.toolsDir, &opts.out} {
		if *dir, err = filepath.Abs(*dir); err != nil {
			return nil, err
		}
	}
	license, err := os.ReadFile(filepath.Join(opts.repoRoot, "LICENSE"))
	if err != nil {
		return nil, fmt.Errorf("every archive carries the license: %w", err)
	}
	if err := os.RemoveAll(opts.out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opts.out, path.Dir(krewManifest)), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "pq-issuer-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	// The controller: its binaries, then the image made of exactly those binaries.
	for _, platform := range opts.controllerPlatforms {
		goos, goarch, ok := strings.Cut(platform, "/")
		if !ok || goos != "linux" {
			return nil, fmt.Errorf("controller platform %q: want linux/<arch>", platform)
		}
		if err := goBuild(ctx, opts, ".", goos, goarch, filepath.Join(opts.out, controllerName+"-"+goos+"-"+goarch)); err != nil {
			return nil, err
		}
	}
	layout := filepath.Join(tmp, "oci")
	if err := command(ctx, opts.toolsDir, nil, "go", "run", "./image", "--repo-root", opts.repoRoot, "--out", layout,
		"--platforms", strings.Join(opts.controllerPlatforms, ","), "--binary-dir", opts.out, "--version", opts.version,
		"--revision", opts.revision, "--created", opts.created.Format(time.RFC3339)); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(opts.out, imageArchive), func(w io.Writer) error { return tarDir(w, layout, opts.created) }); err != nil {
		return nil, err
	}

	// The CLI: one archive per platform, as krew installs it, and the krew manifest.
	var platforms []krewPlatform
	for _, platform := range opts.pluginPlatforms {
		goos, goarch, ok := strings.Cut(platform, "/")
		if !ok {
			return nil, fmt.Errorf("plugin platform %q: want os/arch", platform)
		}
		bin := pluginName
		if goos == "windows" {
			bin += ".exe"
		}
		built := filepath.Join(tmp, goos+"-"+goarch, bin)
		if err := goBuild(ctx, opts, "./cmd/kubectl-pq", goos, goarch, built); err != nil {
			return nil, err
		}
		binary, err := os.ReadFile(built)
		if err != nil {
			return nil, err
		}
		files := []archiveFile{{bin, 0o755, binary}, {"LICENSE", 0o644, license}}
		name := pluginName + "-" + goos + "-" + goarch
		var write func(io.Writer) error
		if goos == "windows" {
			name += ".zip"
			write = func(w io.Writer) error { return writeZip(w, files, opts.created) }
		} else {
			name += ".tar.gz"
			write = func(w io.Writer) error { return writeTarGz(w, files, opts.created) }
		}
		if err := writeFile(filepath.Join(opts.out, name), write); err != nil {
			return nil, err
		}
		sum, err := fileSHA256(filepath.Join(opts.out, name))
		if err != nil {
			return nil, err
		}
		platforms = append(platforms, krewPlatform{
			Selector: krewSelector{MatchLabels: map[string]string{"os": goos, "arch": goarch}},
			URI:      downloadURL + "/" + tag + "/" + name,
			Sha256:   sum,
			Files:    []krewFile{{From: bin, To: "."}, {From: "LICENSE", To: "."}},
			Bin:      bin,
		})
	}
	manifest, err := yaml.Marshal(newKrewPlugin(tag, platforms))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(opts.out, krewManifest), manifest, 0o644); err != nil {
		return nil, err
	}

	// The chart, versioned as the release; its image tag defaults to the appVersion.
	if err := command(ctx, opts.repoRoot, nil, opts.helm, "package", filepath.Join(opts.repoRoot, "charts", "pq-issuer"),
		"--version", opts.version, "--app-version", opts.version, "--destination", opts.out); err != nil {
		return nil, err
	}

	// An SBOM of each program: the modules linked into it (for linux/amd64; the other platforms
	// link the same modules), the Go standard library and the licenses found. cyclonedx-gomod
	// reads the target platform from GOOS and GOARCH, so it is built for this machine first
	// (`go tool` would build it for the target).
	cyclonedx := filepath.Join(tmp, "cyclonedx-gomod")
	if err := command(ctx, opts.toolsDir, []string{"GOOS=" + runtime.GOOS, "GOARCH=" + runtime.GOARCH}, "go", "build", "-o", cyclonedx,
		"github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod"); err != nil {
		return nil, err
	}
	for _, sbom := range []struct{ name, main string }{{controllerName, "."}, {pluginName, "cmd/kubectl-pq"}} {
		if err := command(ctx, opts.repoRoot, []string{"GOOS=linux", "GOARCH=amd64"}, cyclonedx, "app",
			"-json", "-std", "-licenses", "-noserial", "-notimestamp", "-main", sbom.main,
			"-output", filepath.Join(opts.out, sbom.name+".cdx.json"), opts.repoRoot); err != nil {
			return nil, err
		}
	}

	return writeChecksums(opts.out)
}

// goBuild builds the package pkg of the root module for goos/goarch into out, stamped with the
// version.
func goBuild(ctx context.Context, opts options, pkg, goos, goarch, out string) error {
	return command(ctx, opts.repoRoot, []string{"CGO_ENABLED=0", "GOOS=" + goos, "GOARCH=" + goarch}, "go", "build", "-trimpath",
		"-ldflags=-s -w -X main.version="+opts.version, "-o", out, pkg)
}

// command runs name in dir with env added to this process's environment; its output goes to
// stderr, and into the error when it fails.
func command(ctx context.Context, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s (in %s): %w\n%s", filepath.Base(name), strings.Join(args, " "), dir, err, out.Bytes())
	}
	return nil
}

// writeFile creates name with what write writes.
func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return f.Close()
}

type archiveFile struct {
	name string
	mode int64
	data []byte
}

// writeTarGz writes files as a gzipped tar, with fixed times and owners.
func writeTarGz(w io.Writer, files []archiveFile, modTime time.Time) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: modTime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// writeZip writes files as a zip, with fixed times.
func writeZip(w io.Writer, files []archiveFile, modTime time.Time) error {
	zw := zip.NewWriter(w)
	for _, f := range files {
		hdr := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: modTime.UTC()}
		hdr.SetMode(fs.FileMode(f.mode))
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if _, err := fw.Write(f.data); err != nil {
			return err
		}
	}
	return zw.Close()
}

// tarDir writes the tree under dir as an uncompressed tar (its blobs are compressed already), in
// name order, with fixed times and owners: what `skopeo copy oci-archive:` reads, or `tar -x`
// unpacks into the OCI layout `crane push` takes.
func tarDir(w io.Writer, dir string, modTime time.Time) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: modTime, Format: tar.FormatPAX}
		if d.IsDir() {
			hdr.Name += "/"
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
			return tw.WriteHeader(hdr)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeChecksums writes SHA256SUMS over every file under dir, in the format `sha256sum -c`
// checks, and returns the files' names, SHA256SUMS last.
func writeChecksums(dir string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		names = append(names, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var sums bytes.Buffer
	for _, name := range names {
		sum, err := fileSHA256(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&sums, "%s  %s\n", sum, name)
	}
	if err := os.WriteFile(filepath.Join(dir, checksums), sums.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return append(names, checksums), nil
}

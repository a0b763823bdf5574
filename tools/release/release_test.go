package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// testVersion differs from the chart's appVersion, so the chart check proves the override.
const testVersion = "1.2.3-test.1"

// TestRelease runs the release build into a temporary directory, as make release does into dist/,
// and checks each artefact as its user would: the sums, the binaries' platforms and versions, the
// archives krew installs and the manifest that points at them, the SBOMs, the chart and the image.
//
// It builds for fewer platforms than make release: this machine's for the controller and image, and
// kubectl-pq for Linux (this machine's), macOS and Windows, so every code path runs (tar.gz and
// zip, ELF, Mach-O and PE) while a cold cache compiles the dependencies for three platforms, not
// eight: warm, each platform costs a link; cold, about half a minute (kubectl-pq) to over two
// minutes (pq-issuer, arm64) on 2 cores.
func TestRelease(t *testing.T) {
	opts := options{
		repoRoot: "../..", toolsDir: "..", out: filepath.Join(t.TempDir(), "dist"), version: testVersion,
		helm: helmBinary(t), revision: "abc123", created: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
		controllerPlatforms: []string{"linux/" + runtime.GOARCH},
		pluginPlatforms:     []string{"linux/" + runtime.GOARCH, "darwin/arm64", "windows/amd64"},
	}
	started := time.Now()
	files, err := release(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("release built in %s", time.Since(started).Round(100*time.Millisecond))
	dist := opts.out
	license, err := os.ReadFile("../../LICENSE")
	if err != nil {
		t.Fatal(err)
	}

	want := []string{
		"SHA256SUMS", "krew/pq.yaml", "kubectl-pq-darwin-arm64.tar.gz", "kubectl-pq-linux-" + runtime.GOARCH + ".tar.gz",
		"kubectl-pq-windows-amd64.zip", "kubectl-pq.cdx.json", "pq-issuer-" + testVersion + ".tgz", "pq-issuer-image.oci.tar",
		"pq-issuer-linux-" + runtime.GOARCH, "pq-issuer.cdx.json",
	}
	if onDisk := walk(t, dist); !slices.Equal(onDisk, slices.Sorted(slices.Values(want))) || !slices.Equal(slices.Sorted(slices.Values(files)), onDisk) {
		t.Fatalf("dist holds %q, release reported %q; want %q", onDisk, files, want)
	}

	t.Run("SHA256SUMS lists every other file with its sum", func(t *testing.T) {
		sums := readSums(t, filepath.Join(dist, "SHA256SUMS"))
		if listed := slices.Sorted(maps.Keys(sums)); !slices.Equal(listed, slices.DeleteFunc(walk(t, dist), func(f string) bool { return f == "SHA256SUMS" })) {
			t.Errorf("SHA256SUMS lists %q", listed)
		}
		for name, sum := range sums {
			if got := sha256File(t, filepath.Join(dist, name)); got != sum {
				t.Errorf("%s: SHA256SUMS says %s, the file's sum is %s", name, sum, got)
			}
		}
	})

	t.Run("pq-issuer binaries", func(t *testing.T) {
		checkExecutable(t, "pq-issuer-linux-"+runtime.GOARCH, readFile(t, filepath.Join(dist, "pq-issuer-linux-"+runtime.GOARCH)), "linux", runtime.GOARCH)
		out := runBinary(t, filepath.Join(dist, "pq-issuer-linux-"+runtime.GOARCH), "--version")
		if want := fmt.Sprintf("pq-issuer %s (%s, linux/%s)\n", testVersion, runtime.Version(), runtime.GOARCH); out != want {
			t.Errorf("pq-issuer --version printed %q, want %q", out, want)
		}
	})

	manifest := readKrewManifest(t, filepath.Join(dist, "krew", "pq.yaml"))
	t.Run("kubectl-pq archives and the krew manifest", func(t *testing.T) {
		if manifest.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || manifest.Kind != "Plugin" || manifest.Name != "pq" {
			t.Errorf("manifest %s %s %q, want a krew v1alpha2 Plugin named pq", manifest.APIVersion, manifest.Kind, manifest.Name)
		}
		if manifest.Spec.Version != "v"+testVersion || manifest.Spec.ShortDescription == "" || manifest.Spec.Homepage != "https://github.com/pq-issuer/pq-issuer" {
			t.Errorf("spec version %q, shortDescription %q, homepage %q; want v%s, some text, the repository",
				manifest.Spec.Version, manifest.Spec.ShortDescription, manifest.Spec.Homepage, testVersion)
		}
		if len(manifest.Spec.Platforms) != len(opts.pluginPlatforms) {
			t.Fatalf("%d krew platforms, want %d", len(manifest.Spec.Platforms), len(opts.pluginPlatforms))
		}
		for i, platform := range opts.pluginPlatforms {
			goos, goarch, _ := strings.Cut(platform, "/")
			p := manifest.Spec.Platforms[i]
			name, bin := "kubectl-pq-"+goos+"-"+goarch+".tar.gz", "kubectl-pq"
			if goos == "windows" {
				name, bin = "kubectl-pq-"+goos+"-"+goarch+".zip", "kubectl-pq.exe"
			}
			t.Run(platform, func(t *testing.T) {
				if p.Selector == nil || !maps.Equal(p.Selector.MatchLabels, map[string]string{"os": goos, "arch": goarch}) || len(p.Selector.MatchExpressions) != 0 {
					t.Errorf("selector %v, want matchLabels os: %s, arch: %s", p.Selector, goos, goarch)
				}
				if want := "https://github.com/pq-issuer/pq-issuer/releases/download/v" + testVersion + "/" + name; p.URI != want {
					t.Errorf("uri %q, want %q", p.URI, want)
				}
				if got := sha256File(t, filepath.Join(dist, name)); p.Sha256 != got {
					t.Errorf("sha256 %q, the archive's is %s", p.Sha256, got)
				}
				wantFiles := []indexFileOperation{{From: bin, To: "."}, {From: "LICENSE", To: "."}}
				if p.Bin != bin || !slices.Equal(p.Files, wantFiles) {
					t.Errorf("bin %q files %+v, want %q and %+v", p.Bin, p.Files, bin, wantFiles)
				}
				entries := readArchive(t, filepath.Join(dist, name))
				if got := slices.Sorted(maps.Keys(entries)); !slices.Equal(got, []string{"LICENSE", bin}) {
					t.Fatalf("archive holds %q, want %s and LICENSE", got, bin)
				}
				if !bytes.Equal(entries["LICENSE"].data, license) {
					t.Error("the archive's LICENSE is not the repository's")
				}
				if entries[bin].mode != 0o755 {
					t.Errorf("%s mode %v, want 0755", bin, entries[bin].mode)
				}
				checkExecutable(t, name+"/"+bin, entries[bin].data, goos, goarch)
				if goos == "linux" && goarch == runtime.GOARCH {
					exe := filepath.Join(t.TempDir(), bin)
					if err := os.WriteFile(exe, entries[bin].data, 0o755); err != nil {
						t.Fatal(err)
					}
					out := runBinary(t, exe, "version")
					if want := fmt.Sprintf("kubectl-pq %s (%s, linux/%s)\n", testVersion, runtime.Version(), runtime.GOARCH); out != want {
						t.Errorf("kubectl-pq version printed %q, want %q", out, want)
					}
				}
			})
		}
	})

	t.Run("SBOMs", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			deps []string // modules the program links
		}{
			{"pq-issuer", []string{"github.com/cloudflare/circl", "sigs.k8s.io/controller-runtime", "k8s.io/client-go", "github.com/cert-manager/cert-manager"}},
			{"kubectl-pq", []string{"github.com/cloudflare/circl", "k8s.io/apimachinery"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var bom struct {
					BOMFormat   string `json:"bomFormat"`
					SpecVersion string `json:"specVersion"`
					Metadata    struct {
						Component sbomComponent `json:"component"`
					} `json:"metadata"`
					Components []sbomComponent `json:"components"`
				}
				if err := json.Unmarshal(readFile(t, filepath.Join(dist, tc.name+".cdx.json")), &bom); err != nil {
					t.Fatalf("%s.cdx.json is not JSON: %v", tc.name, err)
				}
				app := bom.Metadata.Component
				if bom.BOMFormat != "CycloneDX" || bom.SpecVersion == "" || app.Name != "github.com/pq-issuer/pq-issuer" {
					t.Errorf("bomFormat %q specVersion %q main component %q, want a CycloneDX BOM of github.com/pq-issuer/pq-issuer",
						bom.BOMFormat, bom.SpecVersion, app.Name)
				}
				// Detected licenses are evidence, not assertions: the detector can be wrong.
				if got := app.licenses(); !slices.Equal(got, []string{"Apache-2.0"}) {
					t.Errorf("main component's license evidence %q, want Apache-2.0 (LICENSE)", got)
				}
				components := map[string]sbomComponent{}
				licensed := 0
				for _, c := range bom.Components {
					components[c.Name] = c
					if len(c.licenses()) > 0 {
						licensed++
					}
				}
				for _, dep := range tc.deps {
					if want := requiredVersion(t, dep); components[dep].Version != want {
						t.Errorf("component %s at %q, want %q (go.mod)", dep, components[dep].Version, want)
					}
				}
				if got := components["github.com/cloudflare/circl"].licenses(); !slices.Equal(got, []string{"BSD-3-Clause"}) {
					t.Errorf("circl's license evidence %q, want BSD-3-Clause", got)
				}
				if v := components["std"].Version; v != runtime.Version() {
					t.Errorf("component std (the Go standard library) at %q, want %s", v, runtime.Version())
				}
				t.Logf("%s: %d components, %d with licenses", tc.name, len(bom.Components), licensed)
			})
		}
	})

	t.Run("chart", func(t *testing.T) {
		entries := readArchive(t, filepath.Join(dist, "pq-issuer-"+testVersion+".tgz"))
		var chart struct {
			Name, Version, AppVersion string
		}
		if err := yaml.Unmarshal(entries["pq-issuer/Chart.yaml"].data, &chart); err != nil {
			t.Fatalf("pq-issuer/Chart.yaml: %v", err)
		}
		if chart.Name != "pq-issuer" || chart.Version != testVersion || chart.AppVersion != testVersion {
			t.Errorf("Chart.yaml name %q version %q appVersion %q, want pq-issuer %s %s", chart.Name, chart.Version, chart.AppVersion, testVersion, testVersion)
		}
		for _, f := range []string{"pq-issuer/values.yaml", "pq-issuer/values.schema.json", "pq-issuer/templates/deployment.yaml"} {
			if _, ok := entries[f]; !ok {
				t.Errorf("the chart lacks %s", f)
			}
		}
	})

	t.Run("image holds the released binaries", func(t *testing.T) {
		dir := t.TempDir()
		for name, e := range readArchive(t, filepath.Join(dist, "pq-issuer-image.oci.tar")) {
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), e.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p, err := layout.FromPath(dir)
		if err != nil {
			t.Fatalf("the image tar is not an OCI layout: %v", err)
		}
		top, err := p.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		tm, err := top.IndexManifest()
		if err != nil || len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "pq-issuer:"+testVersion {
			t.Fatalf("index.json %+v (%v), want one index named pq-issuer:%s", tm, err, testVersion)
		}
		idx, err := top.ImageIndex(tm.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		var platforms []string
		for _, m := range im.Manifests {
			platform := m.Platform.String()
			platforms = append(platforms, platform)
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if v := cfg.Config.Labels["org.opencontainers.image.version"]; v != testVersion {
				t.Errorf("%s: version label %q, want %s", platform, v, testVersion)
			}
			layers, err := img.Layers()
			if err != nil || len(layers) != 1 {
				t.Fatalf("%s: %d layers (%v), want 1", platform, len(layers), err)
			}
			rc, err := layers[0].Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			entries := readTar(t, rc)
			rc.Close()
			if got, want := sha256Hex(entries["pq-issuer"].data), sha256File(t, filepath.Join(dist, "pq-issuer-"+strings.ReplaceAll(platform, "/", "-"))); got != want {
				t.Errorf("%s: the image's /pq-issuer (%s) is not the released binary (%s)", platform, got, want)
			}
		}
		if want := opts.controllerPlatforms; !slices.Equal(platforms, want) {
			t.Errorf("image platforms %q, want %q", platforms, want)
		}
	})
}

func TestReleaseTag(t *testing.T) {
	for _, tc := range []struct {
		name, version, tag, err string
	}{
		{name: "plain", version: "0.1.0", tag: "v0.1.0"},
		{name: "with v", version: "v0.1.0", tag: "v0.1.0"},
		{name: "pre-release", version: "1.0.0-rc.1", tag: "v1.0.0-rc.1"},
		{name: "build metadata", version: "1.0.0+abc", err: "not a release version"},
		{name: "not SemVer", version: "latest", err: "not a release version"},
		{name: "two parts", version: "1.0", err: "not a release version"},
		{name: "empty", version: "", err: "not a release version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tag, err := releaseTag(tc.version)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("releaseTag(%q) = %q, %v; want an error containing %q", tc.version, tag, err, tc.err)
				}
				return
			}
			if err != nil || tag != tc.tag {
				t.Fatalf("releaseTag(%q) = %q, %v; want %q", tc.version, tag, err, tc.tag)
			}
		})
	}
}

// sbomComponent is what the test reads of a CycloneDX component.
type sbomComponent struct {
	Name, Version string
	Evidence      struct {
		Licenses []struct {
			License struct {
				ID string `json:"id"`
			} `json:"license"`
		} `json:"licenses"`
	} `json:"evidence"`
}

func (c sbomComponent) licenses() []string {
	var ids []string
	for _, l := range c.Evidence.Licenses {
		ids = append(ids, l.License.ID)
	}
	return ids
}

// helmBinary is make's Helm (PQ_HELM) or one built from the module pinned in this go.mod.
func helmBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("PQ_HELM"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "helm")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "helm.sh/helm/v4/cmd/helm").CombinedOutput(); err != nil {
		t.Fatalf("building Helm from tools/go.mod (or run `make helm` and set PQ_HELM): %v\n%s", err, out)
	}
	return bin
}

// requiredVersion is the version of module that the root go.mod requires.
func requiredVersion(t *testing.T, module string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Version}}", module)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m %s in the root module: %v", module, err)
	}
	return strings.TrimSpace(string(out))
}

// checkExecutable fails unless data is a static executable for goos/goarch.
func checkExecutable(t *testing.T, name string, data []byte, goos, goarch string) {
	t.Helper()
	r := bytes.NewReader(data)
	var got string
	switch goos {
	case "linux":
		f, err := elf.NewFile(r)
		if err != nil {
			t.Fatalf("%s: not ELF: %v", name, err)
		}
		got = map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[f.Machine]
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s asks for a dynamic loader: not static", name)
			}
		}
	case "darwin":
		f, err := macho.NewFile(r)
		if err != nil {
			t.Fatalf("%s: not Mach-O: %v", name, err)
		}
		got = map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu]
	case "windows":
		f, err := pe.NewFile(r)
		if err != nil {
			t.Fatalf("%s: not PE: %v", name, err)
		}
		got = map[uint16]string{pe.IMAGE_FILE_MACHINE_AMD64: "amd64", pe.IMAGE_FILE_MACHINE_ARM64: "arm64"}[f.Machine]
	}
	if got != goarch {
		t.Errorf("%s: built for %q, want %s/%s", name, got, goos, goarch)
	}
}

func runBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// indexPlugin and the types below are krew's own (sigs.k8s.io/krew pkg/index, v1alpha2), so that the
// manifest is read the way krew reads it and not with the types that wrote it.
type indexPlugin struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Version          string          `json:"version,omitempty"`
		ShortDescription string          `json:"shortDescription,omitempty"`
		Description      string          `json:"description,omitempty"`
		Caveats          string          `json:"caveats,omitempty"`
		Homepage         string          `json:"homepage,omitempty"`
		Platforms        []indexPlatform `json:"platforms,omitempty"`
	} `json:"spec"`
}

type indexPlatform struct {
	URI      string                `json:"uri,omitempty"`
	Sha256   string                `json:"sha256,omitempty"`
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	Files    []indexFileOperation  `json:"files"`
	Bin      string                `json:"bin"`
}

type indexFileOperation struct {
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
}

// readKrewManifest decodes a krew manifest, refusing fields krew does not know.
func readKrewManifest(t *testing.T, name string) indexPlugin {
	t.Helper()
	var p indexPlugin
	if err := yaml.UnmarshalStrict(readFile(t, name), &p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

type entry struct {
	mode fs.FileMode
	data []byte
}

// readArchive returns the regular files of a .tar, .tar.gz, .tgz or .zip.
func readArchive(t *testing.T, name string) map[string]entry {
	t.Helper()
	data := readFile(t, name)
	switch {
	case strings.HasSuffix(name, ".zip"):
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		entries := map[string]entry{}
		for _, f := range zr.File {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s: %s: %v", name, f.Name, err)
			}
			entries[f.Name] = entry{f.Mode().Perm(), b}
		}
		return entries
	case strings.HasSuffix(name, ".tar"):
		return readTar(t, bytes.NewReader(data))
	default:
		gz, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return readTar(t, gz)
	}
}

func readTar(t *testing.T, r io.Reader) map[string]entry {
	t.Helper()
	entries := map[string]entry{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries[hdr.Name] = entry{fs.FileMode(hdr.Mode).Perm(), b}
	}
}

// readSums parses sha256sum output: "<hex>  <name>" per line.
func readSums(t *testing.T, name string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, name)))
	for sc.Scan() {
		sum, file, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("%s: line %q is not `<sha256>  <file>`", name, sc.Text())
		}
		sums[file] = sum
	}
	return sums
}

// walk lists the files under dir, slash-separated and sorted.
func walk(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256File(t *testing.T, name string) string { t.Helper(); return sha256Hex(readFile(t, name)) }

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

package localcluster_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// The README's shell blocks, each named by its first command line and run by a test: a block no
// test runs fails TestREADMECommands, so the README shows no command that was never run.
const (
	readmeMake         = "make demo"                                                                                                           // .ci/run: make test, which runs make demo
	readmeInstall      = "sha256sum --ignore-missing -c SHA256SUMS"                                                                            // TestPackagedChartInstalls
	readmeFirstIssuer  = `kubectl pq ca create --algorithm ML-DSA-65 --subject "CN=Mesh Root,O=Example" --duration 87600h --out-dir mesh-root` // TestREADMECommands
	readmeApprover     = "kubectl apply -f config/samples/approver-policy.yaml"                                                                // TestApproverPolicy
	readmeOfflineCA    = `kubectl pq ca create --algorithm ML-DSA-65 --subject "CN=Mesh Root,O=Example" --duration 87600h --out-dir root`      // TestREADMECommands
	readmeKubectlCompl = `printf '#!/bin/sh\nexec kubectl-pq __complete "$@"\n' > ~/bin/kubectl_complete-pq`                                   // TestREADMECommands
	readmePods         = "kubectl get podcertificaterequests -A"                                                                               // TestPodIdentities
	readmeCSR          = "kubectl pq csr --algorithm ML-DSA-65 --common-name api --dns api.team.svc"                                           // TestCertificateSigningRequests
)

// TestREADMECommands runs the README's commands as a reader would: the first issuer against the
// local control plane with the pq-issuer binary, the offline CA, and the completion helper.
func TestREADMECommands(t *testing.T) {
	blocks := readmeBlocks(t)
	for _, b := range blocks {
		if n := countPrefixed(b, readmeMake, readmeInstall, readmeFirstIssuer, readmeApprover, readmeOfflineCA, readmeKubectlCompl, readmePods, readmeCSR); n != 1 {
			t.Errorf("README block %q is run by %d tests: name it in readme_test.go and run it", firstLine(b), n)
		}
	}
	// .ci/run runs make test; make test's prerequisites are what else it runs.
	var ciRuns []string
	for line := range strings.Lines(string(readFile(t, filepath.Join("..", "..", "Makefile")))) {
		if prereqs, ok := strings.CutPrefix(line, "test:"); ok {
			ciRuns = append(strings.Fields(strings.Split(prereqs, "##")[0]), "test")
		}
	}
	for line := range strings.Lines(readmeBlock(t, readmeMake)) {
		if target := strings.Fields(line)[1]; !slices.Contains(ciRuns, target) {
			t.Errorf("README runs `make %s`, which .ci/run's make test (%v) does not run", target, ciRuns)
		}
	}

	pc := startPQCluster(t, localcluster.Options{})
	p := startPQProcess(t, pc, false)
	dir := t.TempDir()
	config, err := filepath.Abs(filepath.Join("..", "..", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(config, filepath.Join(dir, "config")); err != nil {
		t.Fatal(err)
	}
	t.Logf("The first issuer:\n%s", runREADMEBlock(t, pc, dir, readmeBlock(t, readmeFirstIssuer), nil))
	issuer := &v1alpha1.PQClusterIssuer{}
	getObj(t, pc.c, client.ObjectKey{Name: "mesh-ca"}, issuer)
	if ready := waitIssuer(t, pc.c, issuer, metav1.ConditionTrue, v1alpha1.ReasonVerified); !strings.Contains(ready.Message, "ML-DSA-65 CA CN=Mesh Root,O=Example") {
		t.Errorf("mesh-ca: %s, want the README's root", ready.Message)
	}

	offline := t.TempDir()
	out := runREADMEBlock(t, nil, offline, readmeBlock(t, readmeOfflineCA), nil)
	if !strings.Contains(out, "Subject:              CN=api") || !strings.Contains(out, "spiffe://cluster.local/ns/demo/sa/api") {
		t.Errorf("the offline CA block's inspect printed:\n%s", out)
	}
	for _, f := range []string{"root/tls.key", "issuing/tls.crt", "mesh-ca.yaml", "api/tls.crt"} {
		if _, err := os.Stat(filepath.Join(offline, f)); err != nil {
			t.Errorf("the offline CA block left no %s: %v", f, err)
		}
	}

	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	runREADMEBlock(t, nil, home, readmeBlock(t, readmeKubectlCompl), []string{"HOME=" + home})
	// kubectl runs kubectl_complete-pq for `kubectl pq <TAB>`: the plugin's commands come back.
	complete := exec.CommandContext(t.Context(), filepath.Join(binDir(t), "kubectl"), "__complete", "pq", "ca", "")
	complete.Env = append(os.Environ(), "PATH="+filepath.Join(home, "bin")+":"+readmePath(t))
	if got, err := complete.CombinedOutput(); err != nil || !strings.Contains(string(got), "intermediate") {
		t.Errorf("kubectl __complete pq ca: %v\n%s", err, got)
	}
	if t.Failed() {
		t.Logf("pq-issuer's log:\n%s", p.logs())
	}
}

// readmeBlocks returns the README's ```sh blocks.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	var blocks []string
	rest := string(readFile(t, filepath.Join("..", "..", "README.md")))
	for {
		_, after, found := strings.Cut(rest, "\n```sh\n")
		if !found {
			return blocks
		}
		block, tail, _ := strings.Cut(after, "\n```\n")
		blocks, rest = append(blocks, block+"\n"), tail
	}
}

// readmeBlock returns the README block whose first command is first.
func readmeBlock(t *testing.T, first string) string {
	t.Helper()
	for _, b := range readmeBlocks(t) {
		if countPrefixed(b, first) == 1 {
			return b
		}
	}
	t.Fatalf("the README has no block starting with %q", first)
	return ""
}

func countPrefixed(block string, firsts ...string) int {
	n := 0
	for _, f := range firsts {
		if strings.HasPrefix(firstLine(block), f) {
			n++
		}
	}
	return n
}

// firstLine is a block's first line that is not a comment.
func firstLine(block string) string {
	for line := range strings.Lines(block) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return ""
}

// readmePath is the PATH a README reader has: kubectl, kubectl-pq (so `kubectl pq` works) and Helm.
func readmePath(t *testing.T) string {
	t.Helper()
	kubectlPQ, err := buildKubectlPQ()
	if err != nil {
		t.Fatal(err)
	}
	helm, err := buildHelm()
	if err != nil {
		t.Fatal(err)
	}
	helmDir := t.TempDir() // make helm builds helm-<version>; a reader's is called helm
	if err := os.Symlink(helm, filepath.Join(helmDir, "helm")); err != nil {
		t.Fatal(err)
	}
	return strings.Join([]string{filepath.Dir(kubectlPQ), helmDir, binDir(t), os.Getenv("PATH")}, ":")
}

// runREADMEBlock runs a README block with bash (errexit, pipefail) in dir, against pc's cluster
// when pc is set, and returns its output.
func runREADMEBlock(t *testing.T, pc *pqCluster, dir, block string, env []string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "bash", "-euo", "pipefail", "-c", block)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PATH="+readmePath(t)), env...)
	if pc != nil {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+pc.kubeconfig)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("README block %q: %v\n%s", firstLine(block), err, out.String())
	}
	return out.String()
}

package localcluster_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/controllers"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
	"github.com/pq-issuer/pq-issuer/interop"
)

// pqCluster is a local control plane running pq-issuer's controllers, with the command-line tools
// a user would point at it.
type pqCluster struct {
	*localcluster.Cluster
	c             client.Client
	kubeconfig    string         // file for bin/kubectl
	metricsReader *metricsClient // made by metrics
}

// inProcessPQIssuer runs pq-issuer's controllers in the control plane's process, with the cluster
// resource namespace cert-manager.
var inProcessPQIssuer = []localcluster.Runner{localcluster.PQIssuer(localcluster.DefaultClusterResourceNamespace)}

// startPQCluster starts a local control plane like startCluster, with the tools a user would point
// at it; opts.Extra says where pq-issuer runs.
func startPQCluster(t *testing.T, opts localcluster.Options) *pqCluster {
	t.Helper()
	cluster := startCluster(t, opts)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, cluster.KubeConfig(), 0o600); err != nil {
		t.Fatal(err)
	}
	return &pqCluster{Cluster: cluster, c: cluster.Client(), kubeconfig: kubeconfig}
}

// kubectl runs bin/kubectl against the cluster and returns its output.
func (pc *pqCluster) kubectl(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	return run(t, stdin, filepath.Join(binDir(t), "kubectl"), append([]string{"--kubeconfig", pc.kubeconfig}, args...)...)
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// toolsDir holds binaries the tests build; TestMain creates and removes it.
var toolsDir string

// goBuild builds a command of this repository into toolsDir and returns its path.
func goBuild(pkg string) (string, error) {
	out, err := exec.Command("go", "build", "-o", toolsDir, pkg).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", pkg, err, out)
	}
	return filepath.Join(toolsDir, filepath.Base(pkg)), nil
}

var buildKubectlPQ = sync.OnceValues(func() (string, error) { return goBuild("github.com/pq-issuer/pq-issuer/cmd/kubectl-pq") })

// kubectlPQ runs pq-issuer's CLI, built from this repository once per test binary.
func kubectlPQ(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := buildKubectlPQ()
	if err != nil {
		t.Fatal(err)
	}
	return run(t, nil, bin, args...)
}

// offlineRoot makes an ML-DSA root CA on "the admin's machine" with kubectl-pq and returns its
// directory (tls.crt, tls.key).
func offlineRoot(t *testing.T, alg, cn string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	kubectlPQ(t, "ca", "create", "--algorithm", alg, "--subject", "CN="+cn+",O=pq-issuer e2e", "--duration", "8760h", "--out-dir", dir)
	return dir
}

// installCASecret puts the CA in caDir into the cluster as `kubectl pq ca secret | kubectl apply`
// does, and returns the Secret.
func (pc *pqCluster) installCASecret(t *testing.T, caDir, namespace, name string) *corev1.Secret {
	t.Helper()
	manifest := kubectlPQ(t, "ca", "secret", "--ca-dir", caDir, "--name", name, "--namespace", namespace)
	pc.kubectl(t, []byte(manifest), "apply", "-f", "-")
	secret := &corev1.Secret{}
	if err := pc.c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, secret); err != nil {
		t.Fatal(err)
	}
	return secret
}

// caSecretLabels mark a Secret as a CA Secret, as `kubectl pq ca secret` does.
func caSecretLabels() map[string]string {
	return map[string]string{v1alpha1.CASecretLabel: v1alpha1.CASecretLabelValue}
}

// cachedSecrets starts the cache of a manager made as the pq-issuer binary makes it (its controllers
// stay stopped) and returns the Secrets the cache holds, as sorted namespace/name.
func cachedSecrets(t *testing.T, pc *pqCluster) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	m, err := controllers.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := controllers.NewManager(ctx, pc.Config(), controllers.ManagerOptions{
		Options:            controllers.Options{ClusterResourceNamespace: pc.ClusterResourceNamespace(), MaxConcurrentReconciles: 1, Metrics: m},
		MetricsBindAddress: "0", HealthProbeBindAddress: "0", SkipNameValidation: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.GetCache().Start(ctx) }()
	defer func() { cancel(); <-stopped }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the manager's cache did not start")
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := mgr.GetCache().List(ctx, list); err != nil {
		t.Fatalf("listing Secrets from the manager's cache: %v", err)
	}
	var names []string
	for _, s := range list.Items {
		names = append(names, s.Namespace+"/"+s.Name)
	}
	slices.Sort(names)
	return names
}

// readyClusterIssuer installs the CA in caDir as Secret name of the cluster resource namespace,
// creates a PQClusterIssuer of the same name for it and waits until it is Ready.
func (pc *pqCluster) readyClusterIssuer(t *testing.T, caDir, name string) *v1alpha1.PQClusterIssuer {
	t.Helper()
	pc.installCASecret(t, caDir, pc.ClusterResourceNamespace(), name)
	issuer := pqClusterIssuer(name, name)
	create(t, pc.c, issuer)
	waitIssuer(t, pc.c, issuer, metav1.ConditionTrue, v1alpha1.ReasonVerified)
	return issuer
}

// kubectlPQCSR makes a key and CSR with `kubectl-pq csr args...` and returns the CSR's PEM.
func kubectlPQCSR(t *testing.T, args ...string) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "csr")
	kubectlPQ(t, append(append([]string{"csr"}, args...), "--out-dir", dir)...)
	return readFile(t, filepath.Join(dir, "csr.pem"))
}

func pqClusterIssuer(name, secret string) *v1alpha1.PQClusterIssuer {
	return &v1alpha1.PQClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.IssuerSpec{CASecretName: secret}}
}

func pqIssuer(namespace, name, secret string) *v1alpha1.PQIssuer {
	return &v1alpha1.PQIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: v1alpha1.IssuerSpec{CASecretName: secret}}
}

// waitIssuer waits until the issuer's Ready condition, for its current generation, has status and
// reason, and returns it.
func waitIssuer(t *testing.T, c client.Client, issuer v1alpha1.Issuer, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var ready *metav1.Condition
	what := fmt.Sprintf("%T %s Ready=%s reason %s", issuer, client.ObjectKeyFromObject(issuer), status, reason)
	waitFor(t, c, what, issuer, func() bool {
		ready = meta.FindStatusCondition(issuer.GetStatus().Conditions, v1alpha1.ConditionReady)
		return ready != nil && ready.ObservedGeneration == issuer.GetGeneration() && ready.Status == status && ready.Reason == reason
	})
	return ready
}

// pqCertificate is a Certificate for a pq-issuer issuer with an ECDSA P-256 key.
func pqCertificate(namespace, name, kind, issuer string, spec cmapi.CertificateSpec) *cmapi.Certificate {
	spec.SecretName = name
	spec.IssuerRef = cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: kind, Name: issuer}
	if spec.PrivateKey == nil {
		spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256}
	}
	return &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: spec}
}

// issuedSecret waits for crt to be Ready and returns its Secret, checked by verifyTLSSecret.
func issuedSecret(t *testing.T, c client.Client, crt *cmapi.Certificate, dnsName string) (*corev1.Secret, *x509.Certificate) {
	t.Helper()
	issueAndVerify(t, c, crt, dnsName)
	secret := &corev1.Secret{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, secret); err != nil {
		t.Fatal(err)
	}
	return secret, parseCertificate(t, secret.Name+" tls.crt", secret.Data[corev1.TLSCertKey])
}

// pemCerts parses every certificate of a PEM bundle.
func pemCerts(t *testing.T, what string, data []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("Parsing %s: %v", what, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		t.Fatalf("%s holds no certificate", what)
	}
	return certs
}

// wantSignatureAlgorithm checks that cert was signed with ML-DSA of the parameter set alg.
func wantSignatureAlgorithm(t *testing.T, what string, cert *x509.Certificate, alg string) {
	t.Helper()
	if got := cert.SignatureAlgorithm.String(); got != alg {
		t.Fatalf("%s is signed with %s, want %s", what, got, alg)
	}
}

// events returns the messages of the events about obj whose reason is reason, or of all events
// about obj when reason is "".
func events(t *testing.T, c client.Client, obj client.Object, reason string) []string {
	t.Helper()
	return eventsFrom(t, c, obj, "", reason)
}

// eventsFrom returns the messages of the events controller recorded about obj with reason; ""
// stands for any controller and any reason.
func eventsFrom(t *testing.T, c client.Client, obj client.Object, controller, reason string) []string {
	t.Helper()
	var list corev1.EventList
	if err := c.List(t.Context(), &list, client.InNamespace(obj.GetNamespace())); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.UID == obj.GetUID() && (controller == "" || e.ReportingController == controller) && (reason == "" || e.Reason == reason) {
			out = append(out, e.Message)
		}
	}
	return out
}

// waitEvent waits for exactly one event with reason about obj and returns its message.
func waitEvent(t *testing.T, c client.Client, obj client.Object, reason string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	for {
		if got := events(t, c, obj, reason); len(got) > 0 {
			if len(got) != 1 {
				t.Fatalf("%d events with reason %s about %s, want 1: %q", len(got), reason, client.ObjectKeyFromObject(obj), got)
			}
			return got[0]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("No event with reason %s about %s within %s", reason, client.ObjectKeyFromObject(obj), waitTimeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// nodeVerify has Node 26 / OpenSSL 3.5 verify each link of chainPEM (leaf first) up to rootPEM.
func nodeVerify(t *testing.T, what string, chainPEM, rootPEM []byte) {
	t.Helper()
	dir := t.TempDir()
	chain, root := writeTemp(t, dir, "chain.pem", chainPEM), writeTemp(t, dir, "root.pem", rootPEM)
	var out struct {
		Results map[string]struct {
			Error any `json:"error"`
			Links []struct {
				Subject     string `json:"subject"`
				CheckIssued bool   `json:"checkIssued"`
				Verify      bool   `json:"verify"`
			} `json:"links"`
		} `json:"results"`
	}
	manifest := map[string]any{"cases": []any{map[string]any{"name": what, "op": "verify", "chain": chain, "ca": root}}}
	nodeScript(t, "batch.mjs", manifest, &out)
	r := out.Results[what]
	if r.Error != nil || len(r.Links) == 0 {
		t.Fatalf("OpenSSL could not verify %s: %+v", what, r)
	}
	for _, l := range r.Links {
		if !l.CheckIssued || !l.Verify {
			t.Fatalf("OpenSSL 3.5 rejects a link of %s: %+v", what, r.Links)
		}
	}
}

// nodeScript runs one of interop/testdata's scripts with Node 26 on a JSON manifest and decodes
// its JSON output into out.
func nodeScript(t *testing.T, script string, manifest, out any) {
	t.Helper()
	node, testdata := nodeAndTestdata(t)
	data, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	path := writeTemp(t, t.TempDir(), "manifest.json", data)
	stdout := run(t, nil, node, filepath.Join(testdata, script), path)
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("%s printed %q: %v", script, stdout, err)
	}
}

// nodeAndTestdata returns Node 26 (installed if missing) and the directory of interop's scripts.
func nodeAndTestdata(t *testing.T) (node, testdata string) {
	t.Helper()
	node, _, err := interop.Node(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	root, err := interop.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return node, filepath.Join(root, "interop", "testdata")
}

func writeTemp(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func clientKey(obj client.Object) client.ObjectKey { return client.ObjectKeyFromObject(obj) }

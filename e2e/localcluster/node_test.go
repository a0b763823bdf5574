package localcluster_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestNodeWithReferenceSigner checks the node (the kubelet's pod certificate code) against
// Kubernetes' in-tree reference signer, without pq-issuer. A pod gets its key, its certificate and
// the signer's trust bundle as files, and a new key and certificate after beginRefreshAt. A denied
// request raises a pod event. NodeRestriction keeps the node to its own pods. A deleted pod's
// volume goes away with it, and Cluster.Stop ends the node and the signer.
func TestNodeWithReferenceSigner(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{})
	ctx, c := t.Context(), cluster.Client()
	node, err := cluster.StartNode(ctx, "node-a")
	if err != nil {
		t.Fatal(err)
	}
	const signer = "reference.example.com/signer"
	if _, err := cluster.StartReferenceSigner(ctx, signer); err != nil {
		t.Fatal(err)
	}
	// A second Node, without a node process, for pods the first node must not touch.
	other := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}
	create(t, c, other)
	create(t, c, namespace("workloads"))
	create(t, c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "workloads", Name: "app"}})
	pod := localcluster.PodWithIdentity("workloads", "app", "app", node.Name(), signer, "ECDSAP256", nil)
	create(t, c, pod)

	var first *refPodCredentials
	var firstPCR certificatesv1.PodCertificateRequest
	if !t.Run("the pod's volume holds its key, certificate and trust bundle", func(t *testing.T) {
		first = waitRefCredentials(t, node, pod, nil)
		if id := first.spiffeID(t); id != "spiffe://cluster.local/ns/workloads/sa/app" {
			t.Errorf("SPIFFE ID %q, want the pod's service account's", id)
		}
		if first.key.Curve != elliptic.P256() {
			t.Errorf("key on %s, want P-256 (keyType ECDSAP256)", first.key.Curve.Params().Name)
		}
		if len(first.roots) != 1 || first.roots[0].PublicKeyAlgorithm != x509.Ed25519 || !first.roots[0].IsCA {
			t.Errorf("trust bundle of %d certificates (first: %s, CA %t), want the reference signer's Ed25519 root",
				len(first.roots), first.roots[0].PublicKeyAlgorithm, first.roots[0].IsCA)
		}
		// The node projects what the signer published, and writes as the kubelet's AtomicWriter.
		var bundle certificatesv1.ClusterTrustBundle
		getObj(t, c, client.ObjectKey{Name: strings.Replace(signer, "/", ":", 1) + ":primary-bundle"}, &bundle)
		if got := pemCertsOf(t, []byte(bundle.Spec.TrustBundle)); len(got) != 1 || !got[0].Equal(first.roots[0]) {
			t.Errorf("the volume's trust bundle is not the signer's ClusterTrustBundle %s", bundle.Name)
		}
		dir := node.VolumeDir(pod, localcluster.IdentityVolume)
		for _, name := range []string{localcluster.CredentialBundle, localcluster.TrustBundle} {
			if target, err := os.Readlink(filepath.Join(dir, name)); err != nil || target != filepath.Join("..data", name) {
				t.Errorf("%s is not a symbolic link into ..data (target %q, %v)", name, target, err)
			}
		}
		pcrs := podCertificateRequests(t, c, pod)
		if len(pcrs) != 1 {
			t.Fatalf("PodCertificateRequests for the pod: %s, want one", dump(pcrs))
		}
		firstPCR = pcrs[0]
		if !meta.IsStatusConditionTrue(firstPCR.Status.Conditions, certificatesv1.PodCertificateRequestConditionTypeIssued) ||
			firstPCR.Spec.NodeName != "node-a" || firstPCR.Spec.ServiceAccountName != "app" || firstPCR.Spec.SignerName != signer {
			t.Errorf("PodCertificateRequest %s, want one Issued for node-a, service account app and %s", dump(firstPCR), signer)
		}
		if leaf := pemCertsOf(t, []byte(firstPCR.Status.CertificateChain))[0]; !leaf.Equal(first.leaf) {
			t.Error("the volume's certificate is not the one in the PodCertificateRequest's status")
		}
	}) {
		return
	}

	t.Run("a new key and certificate after beginRefreshAt", func(t *testing.T) {
		// The manager refreshes at beginRefreshAt plus up to 5 minutes of jitter. The node's clock
		// has stood still since the node started, some seconds ago, so this takes it 6 to 7
		// minutes past beginRefreshAt.
		if err := node.StepClock(ctx, time.Until(firstPCR.Status.BeginRefreshAt.Time)+7*time.Minute); err != nil {
			t.Fatal(err)
		}
		renewed := waitRefCredentials(t, node, pod, first.leaf)
		if renewed.key.Equal(first.key) || renewed.leaf.SerialNumber.Cmp(first.leaf.SerialNumber) == 0 {
			t.Error("the renewed credentials have the old key or serial number")
		}
		if id := renewed.spiffeID(t); id != "spiffe://cluster.local/ns/workloads/sa/app" {
			t.Errorf("renewed SPIFFE ID %q", id)
		}
		if pcrs := podCertificateRequests(t, c, pod); len(pcrs) < 2 {
			t.Errorf("PodCertificateRequests for the pod: %s, want the first and a renewal", dump(pcrs))
		}
	})

	t.Run("a denied request raises a pod event and leaves the volume unwritten", func(t *testing.T) {
		// No signer serves this name: the test denies the request as a signer would.
		denied := localcluster.PodWithIdentity("workloads", "denied", "app", node.Name(), "nobody.example.com/signer", "ECDSAP256", nil)
		create(t, c, denied)
		var pcr certificatesv1.PodCertificateRequest
		if !poll(t, waitTimeout, func() bool {
			pcrs := podCertificateRequests(t, c, denied)
			if len(pcrs) > 0 {
				pcr = pcrs[0]
			}
			return len(pcrs) > 0
		}) {
			t.Fatal("The node created no PodCertificateRequest for the pod")
		}
		pcr.Status.Conditions = []metav1.Condition{{
			Type: certificatesv1.PodCertificateRequestConditionTypeDenied, Status: metav1.ConditionTrue,
			Reason: "TestDenied", Message: "denied by the test", LastTransitionTime: metav1.Now(),
		}}
		if err := c.Status().Update(ctx, &pcr); err != nil {
			t.Fatal(err)
		}
		if msg := waitEvent(t, c, denied, certificatesv1.PodCertificateRequestConditionTypeDenied); !strings.Contains(msg, "TestDenied") {
			t.Errorf("Denied event %q does not give the reason", msg)
		}
		if _, err := os.Stat(node.VolumeDir(denied, localcluster.IdentityVolume)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the denied pod's volume exists (%v)", err)
		}
	})

	t.Run("NodeRestriction keeps the node to its own pods and their signers", func(t *testing.T) {
		elsewhere := localcluster.PodWithIdentity("workloads", "elsewhere", "app", other.Name, signer, "ECDSAP256", nil)
		create(t, c, elsewhere)
		var sa corev1.ServiceAccount
		getObj(t, c, client.ObjectKey{Namespace: "workloads", Name: "app"}, &sa)
		var self corev1.Node
		getObj(t, c, client.ObjectKey{Name: node.Name()}, &self)
		asNode, err := client.New(node.Config(), client.Options{Scheme: localcluster.NewScheme()})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name          string
			pod           *corev1.Pod
			node          *corev1.Node
			signer        string
			wantForbidden string // "" for allowed
		}{
			{"a pod on another node, for that node", elsewhere, other, signer, "which is not the requesting node"},
			{"a pod on another node, for itself", elsewhere, &self, signer, "is not running on node"},
			{"its own pod, for a signer the pod does not mount", pod, &self, "other.example.com/signer", "does not mount a podCertificate projected volume"},
			{"its own pod and signer", pod, &self, signer, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pcr := refPCRFor(t, tc.pod, &sa, tc.node, tc.signer)
				// NodeRestriction reads through the API server's informers: a pod or UID it has
				// not seen yet is a retryable error, not Forbidden.
				var err error
				poll(t, waitTimeout, func() bool {
					err = asNode.Create(ctx, pcr.DeepCopy(), client.DryRunAll)
					return err == nil || apierrors.IsForbidden(err)
				})
				switch {
				case tc.wantForbidden == "" && err != nil:
					t.Errorf("The node may not create a PodCertificateRequest for its own pod: %v", err)
				case tc.wantForbidden != "" && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.wantForbidden)):
					t.Errorf("Creating the PodCertificateRequest as the node: %v; want Forbidden mentioning %q", err, tc.wantForbidden)
				}
			})
		}
	})

	t.Run("a deleted pod goes away with its volume", func(t *testing.T) {
		// A graceful delete, which only the pod's node completes.
		if err := c.Delete(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if !poll(t, waitTimeout, func() bool {
			return apierrors.IsNotFound(c.Get(ctx, client.ObjectKeyFromObject(pod), &corev1.Pod{}))
		}) {
			t.Fatal("The node did not finish deleting the pod")
		}
		if _, err := os.Stat(node.VolumeDir(pod, localcluster.IdentityVolume)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the deleted pod's volume is still there (%v)", err)
		}
	})

	t.Run("Stop ends the node and the signer", func(t *testing.T) {
		if err := cluster.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, marker := range []string{"--node-name=" + node.Name(), "--signer-name=" + signer} {
			if left := processesFrom(t, binDir(t), marker); len(left) > 0 {
				t.Errorf("Processes with %s left running after Stop: %v", marker, left)
			}
		}
	})
}

// refPodCredentials is what the node wrote into a pod's volume: the credential bundle (the PKCS#8
// key, then the chain, leaf first) and the trust bundle.
type refPodCredentials struct {
	key   *ecdsa.PrivateKey
	leaf  *x509.Certificate
	chain []*x509.Certificate
	roots []*x509.Certificate
}

// waitRefCredentials waits until the node has written pod's volume with a certificate other than
// not (nil: any) that verifies against the trust bundle, and returns the credentials.
func waitRefCredentials(t *testing.T, node *localcluster.Node, pod *corev1.Pod, not *x509.Certificate) *refPodCredentials {
	t.Helper()
	var creds *refPodCredentials
	var err error
	if !poll(t, waitTimeout, func() bool {
		creds, err = readRefCredentials(node.VolumeDir(pod, localcluster.IdentityVolume))
		return err == nil && (not == nil || !creds.leaf.Equal(not))
	}) {
		t.Fatalf("Timed out after %s waiting for the node to write the credentials of pod %s (last: %v)", waitTimeout, pod.Name, err)
	}
	return creds
}

func readRefCredentials(dir string) (*refPodCredentials, error) {
	bundle, err := os.ReadFile(filepath.Join(dir, localcluster.CredentialBundle))
	if err != nil {
		return nil, err
	}
	trust, err := os.ReadFile(filepath.Join(dir, localcluster.TrustBundle))
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(bundle)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s does not start with a PRIVATE KEY block", localcluster.CredentialBundle)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is a %T, want ECDSA", parsed)
	}
	creds := &refPodCredentials{key: key}
	if creds.chain, err = parseCertificates(rest); err != nil || len(creds.chain) == 0 {
		return nil, fmt.Errorf("the chain in %s: %d certificates, %v", localcluster.CredentialBundle, len(creds.chain), err)
	}
	if creds.roots, err = parseCertificates(trust); err != nil || len(creds.roots) == 0 {
		return nil, fmt.Errorf("%s: %d certificates, %v", localcluster.TrustBundle, len(creds.roots), err)
	}
	creds.leaf = creds.chain[0]
	if !key.PublicKey.Equal(creds.leaf.PublicKey) {
		return nil, errors.New("the key does not match the leaf certificate")
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	for _, root := range creds.roots {
		roots.AddCert(root)
	}
	for _, cert := range creds.chain[1:] {
		intermediates.AddCert(cert)
	}
	if _, err := creds.leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("the chain does not verify against the trust bundle: %w", err)
	}
	return creds, nil
}

func (c *refPodCredentials) spiffeID(t *testing.T) string {
	t.Helper()
	if len(c.leaf.URIs) != 1 {
		t.Fatalf("leaf URIs %v, want one SPIFFE ID", c.leaf.URIs)
	}
	return c.leaf.URIs[0].String()
}

// parseCertificates parses a PEM bundle that holds only CERTIFICATE blocks.
func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs, nil
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a %s block among the certificates", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
}

func pemCertsOf(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	certs, err := parseCertificates(data)
	if err != nil || len(certs) == 0 {
		t.Fatalf("parsing a PEM certificate bundle: %d certificates, %v", len(certs), err)
	}
	return certs
}

// refPCRFor is the PodCertificateRequest the kubelet on node would create for pod and signer.
func refPCRFor(t *testing.T, pod *corev1.Pod, sa *corev1.ServiceAccount, node *corev1.Node, signer string) *certificatesv1.PodCertificateRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.PodCertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, GenerateName: "req-"},
		Spec: certificatesv1.PodCertificateRequestSpec{
			SignerName: signer,
			PodName:    pod.Name, PodUID: pod.UID,
			ServiceAccountName: sa.Name, ServiceAccountUID: sa.UID,
			NodeName: types.NodeName(node.Name), NodeUID: node.UID,
			StubPKCS10Request: csr,
		},
	}
}

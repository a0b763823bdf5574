package localcluster_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// csrKey is a key and CSR made by `kubectl pq csr` into a directory (tls.key, csr.pem).
type csrKey struct {
	dir string
	pem []byte
}

func newCSRKey(t *testing.T, algorithm string, args ...string) csrKey {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "key")
	kubectlPQ(t, append([]string{"csr", "--algorithm", algorithm, "--out-dir", dir}, args...)...)
	return csrKey{dir: dir, pem: readFile(t, filepath.Join(dir, "csr.pem"))}
}

// newCSR is a CertificateSigningRequest for signer with the request of key.
func newCSR(name, signer string, key csrKey, expiration time.Duration, usages ...certificatesv1.KeyUsage) *certificatesv1.CertificateSigningRequest {
	if len(usages) == 0 {
		usages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth}
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			SignerName: signer, Request: key.pem, Usages: usages, ExpirationSeconds: ptr.To(int32(expiration.Seconds())),
		},
	}
}

// approve approves the request as `kubectl certificate approve` does, through /approval.
func approve(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	setApproval(t, cs, name, certificatesv1.CertificateApproved, "E2EApproved", "approved by the e2e test")
}

func setApproval(t *testing.T, cs kubernetes.Interface, name string, typ certificatesv1.RequestConditionType, reason, message string) {
	t.Helper()
	csr, err := cs.CertificatesV1().CertificateSigningRequests().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: message,
	})
	if _, err := cs.CertificatesV1().CertificateSigningRequests().UpdateApproval(t.Context(), name, csr, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("%s CSR %s: %v", typ, name, err)
	}
}

// waitCSR waits until the request has a certificate or a Failed condition, and returns it.
func waitCSR(t *testing.T, c client.Client, name string) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: name}}
	waitFor(t, c, "CSR "+name+" issued or failed", csr, func() bool {
		return len(csr.Status.Certificate) > 0 || csrCondition(csr, certificatesv1.CertificateFailed) != nil
	}, func() string { return dump(eventsAbout(t, c, csr)) })
	return csr
}

func csrCondition(csr *certificatesv1.CertificateSigningRequest, typ certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i := range csr.Status.Conditions {
		if csr.Status.Conditions[i].Type == typ {
			return &csr.Status.Conditions[i]
		}
	}
	return nil
}

// wantFailed fails unless the request failed with reason and a message saying each of says.
func wantFailed(t *testing.T, csr *certificatesv1.CertificateSigningRequest, reason string, says ...string) {
	t.Helper()
	f := csrCondition(csr, certificatesv1.CertificateFailed)
	if f == nil || len(csr.Status.Certificate) > 0 {
		t.Fatalf("CSR %s: %s, want Failed %s", csr.Name, dump(csr.Status), reason)
	}
	t.Logf("CSR %s: Failed, reason %s: %s", csr.Name, f.Reason, f.Message)
	if f.Reason != reason {
		t.Errorf("CSR %s failed with reason %s (%q), want %s", csr.Name, f.Reason, f.Message, reason)
	}
	for _, s := range says {
		if !strings.Contains(f.Message, s) {
			t.Errorf("CSR %s: message %q does not say %q", csr.Name, f.Message, s)
		}
	}
}

func eventsAbout(t *testing.T, c client.Client, obj client.Object) []string {
	t.Helper()
	var list corev1.EventList
	if err := c.List(t.Context(), &list); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == obj.GetName() && e.InvolvedObject.Kind == "CertificateSigningRequest" {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

// issuedSecretOf is the issued request as a kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt),
// the shape the mutual-TLS helpers take.
func issuedSecretOf(t *testing.T, csr *certificatesv1.CertificateSigningRequest, key csrKey, rootPEM []byte) *corev1.Secret {
	t.Helper()
	return &corev1.Secret{Data: map[string][]byte{
		corev1.TLSCertKey: csr.Status.Certificate, corev1.TLSPrivateKeyKey: readFile(t, filepath.Join(key.dir, "tls.key")), cmmeta.TLSCAKey: rootPEM,
	}}
}

// asUser is a clientset acting as user in groups, impersonated by the administrator.
func asUser(t *testing.T, pc *pqCluster, user string, groups ...string) kubernetes.Interface {
	t.Helper()
	cfg := pc.Config()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestCertificateSigningRequests runs pq-issuer as a Kubernetes CSR API signer on the local control
// plane, whose kube-apiserver is built with Go 1.27 and so checks ML-DSA request signatures.
func TestCertificateSigningRequests(t *testing.T) {
	pc := startPQCluster(t, localcluster.Options{Extra: inProcessPQIssuer})
	c := pc.c
	admin, err := kubernetes.NewForConfig(pc.Config())
	if err != nil {
		t.Fatal(err)
	}
	create(t, c, namespace("team"))
	caDir := offlineRoot(t, "ML-DSA-65", "CSR Root")
	rootPEM := readFile(t, filepath.Join(caDir, "tls.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	mesh := pc.readyClusterIssuer(t, caDir, "csr-mesh")
	pc.installCASecret(t, caDir, "team", "team-ca")
	team := pqIssuer("team", "ca", "team-ca")
	team.Spec.Policy = &v1alpha1.IssuerPolicy{DNSNames: []string{"*.team.svc"}}
	create(t, c, team)
	waitIssuer(t, c, team, metav1.ConditionTrue, v1alpha1.ReasonVerified)
	signers := map[string]string{"PQClusterIssuer": "pqclusterissuers.pq-issuer.dev/" + mesh.Name, "PQIssuer": "pqissuers.pq-issuer.dev/team.ca"}

	// The requester of the next cases: a workload's service account, allowed to create CSRs.
	create(t, c, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "e2e-csr-creator"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get", "list", "watch"}},
	}})
	create(t, c, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "e2e-csr-creator"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "e2e-csr-creator"},
		Subjects: []rbacv1.Subject{{Kind: "Group", Name: "system:serviceaccounts"}}})
	app := asUser(t, pc, "system:serviceaccount:team:app", "system:serviceaccounts", "system:serviceaccounts:team")

	issued := map[string]*corev1.Secret{}
	t.Run("every key type, both issuer kinds: issued with the requested lifetime", func(t *testing.T) {
		for _, kind := range []string{"PQClusterIssuer", "PQIssuer"} {
			for _, alg := range []string{"ECDSA-P256", "Ed25519", "ML-DSA-44", "ML-DSA-65", "ML-DSA-87"} {
				name := strings.ToLower(kind + "-" + alg)
				key := newCSRKey(t, alg, "--dns", "api.team.svc")
				// Key encipherment asked for: no ML-DSA, ECDSA or Ed25519 leaf may carry it.
				csr := newCSR(name, signers[kind], key, 2*time.Hour, certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment,
					certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth)
				// The administrator holds every permission, `reference` on the PQIssuer too.
				if _, err := admin.CertificatesV1().CertificateSigningRequests().Create(t.Context(), csr, metav1.CreateOptions{}); err != nil {
					t.Fatalf("creating CSR %s: %v", name, err)
				}
				approve(t, admin, name)
				got := waitCSR(t, c, name)
				if len(got.Status.Certificate) == 0 {
					t.Fatalf("%s %s: %s", kind, alg, dump(got.Status))
				}
				chain := pemCerts(t, name, got.Status.Certificate)
				leaf := chain[0]
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
					t.Errorf("%s %s: the chain does not verify with Go: %v", kind, alg, err)
				}
				nodeVerify(t, name, got.Status.Certificate, rootPEM)
				if life := leaf.NotAfter.Sub(leaf.NotBefore); life != 2*time.Hour {
					t.Errorf("%s %s: lifetime %s, want expirationSeconds' 2h", kind, alg, life)
				}
				if want := x509.KeyUsageDigitalSignature; leaf.KeyUsage != want {
					t.Errorf("%s %s: key usage %v, want digitalSignature only (no encipherment)", kind, alg, leaf.KeyUsage)
				}
				if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
					t.Errorf("%s %s: extended key usage %v, want server and client auth", kind, alg, leaf.ExtKeyUsage)
				}
				if !slices.Equal(leaf.DNSNames, []string{"api.team.svc"}) || leaf.SignatureAlgorithm.String() != "ML-DSA-65" {
					t.Errorf("%s %s: DNS %q signed with %s", kind, alg, leaf.DNSNames, leaf.SignatureAlgorithm)
				}
				if ev := eventsAbout(t, c, got); len(ev) != 1 || !strings.HasPrefix(ev[0], "Issued: ") || !strings.Contains(ev[0], "Removed key usage keyEncipherment") {
					t.Errorf("%s %s: events %q, want one Issued saying key encipherment was removed", kind, alg, ev)
				}
				issued[kind+"/"+alg] = issuedSecretOf(t, got, key, rootPEM)
			}
		}
	})

	t.Run("an ML-DSA leaf and an ECDSA leaf complete mutual TLS, in Go and in OpenSSL", func(t *testing.T) {
		server, client := issued["PQClusterIssuer/ML-DSA-65"], issued["PQIssuer/ECDSA-P256"]
		if server == nil || client == nil {
			t.Fatal("no ML-DSA-65 or ECDSA certificate: the issuing case failed")
		}
		t.Logf("Go: %s", goMutualTLS(t, server, client, "api.team.svc"))
		t.Logf("OpenSSL: %s", nodeMutualTLS(t, server, client, "api.team.svc"))
	})

	t.Run("unapproved and denied requests are left alone", func(t *testing.T) {
		key := newCSRKey(t, "ECDSA-P256", "--dns", "api.team.svc")
		for _, name := range []string{"unapproved", "denied"} {
			if _, err := admin.CertificatesV1().CertificateSigningRequests().Create(t.Context(), newCSR(name, signers["PQClusterIssuer"], key, time.Hour), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		setApproval(t, admin, "denied", certificatesv1.CertificateDenied, "E2EDenied", "denied by the e2e test")
		// The signed requests above took well under this; pq-issuer has seen both.
		time.Sleep(3 * time.Second)
		for _, name := range []string{"unapproved", "denied"} {
			csr := &certificatesv1.CertificateSigningRequest{}
			getObj(t, c, client.ObjectKey{Name: name}, csr)
			if len(csr.Status.Certificate) > 0 || csrCondition(csr, certificatesv1.CertificateFailed) != nil || len(eventsAbout(t, c, csr)) > 0 {
				t.Errorf("CSR %s was touched: %s, events %q", name, dump(csr.Status), eventsAbout(t, c, csr))
			}
		}
	})

	t.Run("a requester without reference on a PQIssuer fails, naming the permission; with it, issued", func(t *testing.T) {
		key := newCSRKey(t, "ML-DSA-44", "--dns", "app.team.svc")
		if _, err := app.CertificatesV1().CertificateSigningRequests().Create(t.Context(), newCSR("no-reference", signers["PQIssuer"], key, time.Hour), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		approve(t, admin, "no-reference")
		wantFailed(t, waitCSR(t, c, "no-reference"), "DeniedReference", "system:serviceaccount:team:app", "reference", "signers", "pq-issuer.dev")

		create(t, c, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "use-ca"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"pq-issuer.dev"}, Resources: []string{"signers"}, Verbs: []string{"reference"}, ResourceNames: []string{"ca"}},
		}})
		create(t, c, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "use-ca"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "use-ca"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "team", Name: "app"}}})
		if _, err := app.CertificatesV1().CertificateSigningRequests().Create(t.Context(), newCSR("with-reference", signers["PQIssuer"], key, time.Hour), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		approve(t, admin, "with-reference")
		if got := waitCSR(t, c, "with-reference"); len(got.Status.Certificate) == 0 {
			t.Fatalf("with reference: %s", dump(got.Status))
		}
	})

	t.Run("refusals say why", func(t *testing.T) {
		tests := []struct {
			name, signer string
			key          csrKey
			usages       []certificatesv1.KeyUsage
			reason       string
			says         []string
		}{
			{name: "policy-violation", signer: signers["PQIssuer"], key: newCSRKey(t, "ECDSA-P256", "--dns", "api.other.svc"),
				reason: "PolicyViolation", says: []string{`"api.other.svc"`, "policy.dnsNames"}},
			{name: "cert-sign", signer: signers["PQClusterIssuer"], key: newCSRKey(t, "ML-DSA-65", "--dns", "api.team.svc"),
				usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageCertSign},
				reason: "PolicyViolation", says: []string{"keyCertSign"}},
		}
		for _, tc := range tests {
			if _, err := admin.CertificatesV1().CertificateSigningRequests().Create(t.Context(), newCSR(tc.name, tc.signer, tc.key, time.Hour, tc.usages...), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			approve(t, admin, tc.name)
			wantFailed(t, waitCSR(t, c, tc.name), tc.reason, tc.says...)
		}
		// A request whose signature does not verify never reaches pq-issuer: the API server
		// checks it, ML-DSA included.
		tampered := newCSRKey(t, "ML-DSA-65", "--dns", "api.team.svc")
		block, _ := pem.Decode(tampered.pem)
		block.Bytes[len(block.Bytes)-1] ^= 0xff
		tampered.pem = pem.EncodeToMemory(block)
		_, err := admin.CertificatesV1().CertificateSigningRequests().Create(t.Context(), newCSR("tampered", signers["PQClusterIssuer"], tampered, time.Hour), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) {
			t.Fatalf("creating a tampered ML-DSA CSR: %v, want Invalid from the API server", err)
		}
		msg := err.Error()
		t.Logf("The API server refused the tampered request: ...%s", msg[strings.LastIndex(msg, ": x509")+2:])
	})

	t.Run("requester-bound SPIFFE IDs", func(t *testing.T) {
		bound := pqClusterIssuer("csr-bound", "csr-mesh")
		bound.Spec.Policy = &v1alpha1.IssuerPolicy{SPIFFE: &v1alpha1.SPIFFEPolicy{RequesterBound: true}}
		create(t, c, bound)
		waitIssuer(t, c, bound, metav1.ConditionTrue, v1alpha1.ReasonVerified)
		signer := "pqclusterissuers.pq-issuer.dev/csr-bound"
		for _, tc := range []struct{ name, uri string }{
			{"own-spiffe-id", "spiffe://cluster.local/ns/team/sa/app"},
			{"other-spiffe-id", "spiffe://cluster.local/ns/team/sa/admin"},
		} {
			key := newCSRKey(t, "Ed25519", "--uri", tc.uri)
			if _, err := app.CertificatesV1().CertificateSigningRequests().Create(t.Context(), newCSR(tc.name, signer, key, time.Hour), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			approve(t, admin, tc.name)
		}
		if got := waitCSR(t, c, "own-spiffe-id"); len(got.Status.Certificate) == 0 {
			t.Errorf("own SPIFFE ID: %s", dump(got.Status))
		}
		wantFailed(t, waitCSR(t, c, "other-spiffe-id"), "PolicyViolation", "spiffe://cluster.local/ns/team/sa/admin", "system:serviceaccount:team:app")
	})

	t.Run("the README's two commands: kubectl pq csr --submit, kubectl certificate approve", func(t *testing.T) {
		pc.readyClusterIssuer(t, caDir, "mesh-ca")
		submitLine, approveLine, _ := strings.Cut(strings.TrimSpace(readmeBlock(t, readmeCSR)), "\n")
		dir := t.TempDir()
		submit := exec.CommandContext(t.Context(), "bash", "-euo", "pipefail", "-c", submitLine)
		submit.Dir = dir
		submit.Env = append(os.Environ(), "PATH="+readmePath(t), "KUBECONFIG="+pc.kubeconfig)
		var out bytes.Buffer
		submit.Stdout, submit.Stderr = &out, &out
		if err := submit.Start(); err != nil {
			t.Fatal(err)
		}
		// The approver's part, in another terminal, once the request exists.
		csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "api"}}
		waitFor(t, c, "CSR api created by kubectl pq", csr, func() bool { return true })
		t.Logf("%s\n%s", approveLine, runREADMEBlock(t, pc, dir, approveLine, nil))
		if err := submit.Wait(); err != nil {
			t.Fatalf("%s: %v\n%s", submitLine, err, out.String())
		}
		t.Logf("%s\n%s", submitLine, out.String())
		getObj(t, c, client.ObjectKey{Name: "api"}, csr)
		crt := readFile(t, filepath.Join(dir, "api", "tls.crt"))
		leaf := pemCerts(t, "tls.crt", crt)[0]
		if !slices.Equal(leaf.DNSNames, []string{"api.team.svc"}) || leaf.Subject.CommonName != "api" || !strings.Contains(leaf.PublicKeyAlgorithm.String(), "ML-DSA") {
			t.Errorf("kubectl pq wrote a certificate for %s %q with a %s key", leaf.Subject, leaf.DNSNames, leaf.PublicKeyAlgorithm)
		}
		if !bytes.Equal(crt, csr.Status.Certificate) {
			t.Error("api/tls.crt is not the CSR's status.certificate")
		}
	})
}

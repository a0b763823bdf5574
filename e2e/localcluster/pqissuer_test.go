package localcluster_test

import (
	"bytes"
	"crypto/mldsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
	"github.com/pq-issuer/pq-issuer/signer"
)

// TestPQIssuer runs pq-issuer's controllers next to cert-manager's on one local control plane and
// walks through what a platform team does with them: offline roots made with kubectl-pq, issuers of
// both kinds, Certificates with classical keys, a CertificateRequest with an ML-DSA key, a Gateway,
// a trust-manager Bundle, and the ways it goes wrong.
func TestPQIssuer(t *testing.T) {
	pc := startPQCluster(t, localcluster.Options{Extra: inProcessPQIssuer})
	c := pc.c
	crNS := pc.ClusterResourceNamespace()
	ns := "demo"
	create(t, c, namespace(ns))

	// The mesh CA every step below can use: an ML-DSA-65 root behind a PQClusterIssuer.
	meshRoot := offlineRoot(t, "ML-DSA-65", "Mesh Root")
	pc.installCASecret(t, meshRoot, crNS, "mesh-ca")
	mesh := pqClusterIssuer("mesh-ca", "mesh-ca")
	create(t, c, mesh)

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"PQClusterIssuer is Ready with the CA's algorithm and expiry", func(t *testing.T) {
			ready := waitIssuer(t, c, mesh, metav1.ConditionTrue, v1alpha1.ReasonVerified)
			if !strings.Contains(ready.Message, "ML-DSA-65 CA CN=Mesh Root") {
				t.Errorf("Ready message %q does not describe the CA", ready.Message)
			}
			if mesh.Status.Algorithm != "ML-DSA-65" || mesh.Status.CANotAfter == nil || time.Until(mesh.Status.CANotAfter.Time) < 364*24*time.Hour {
				t.Errorf("status = %+v, want algorithm ML-DSA-65 and a CA expiring in a year", mesh.Status)
			}
			out := pc.kubectl(t, nil, "get", "pqclusterissuers")
			if !strings.Contains(out, "mesh-ca") || !strings.Contains(out, "ML-DSA-65") || !strings.Contains(out, "CA EXPIRES") {
				t.Errorf("kubectl get pqclusterissuers shows no Algorithm / CA Expires columns:\n%s", out)
			}
			if got := waitEvent(t, c, mesh, v1alpha1.ReasonVerified); !strings.Contains(got, "Signing with ML-DSA-65") {
				t.Errorf("Verified event says %q", got)
			}
		}},
		{"ECDSA Certificates from the PQClusterIssuer verify in Go and OpenSSL and do mutual TLS across processes", func(t *testing.T) {
			server, serverCert := issuedSecret(t, c, pqCertificate(ns, "api-server", "PQClusterIssuer", "mesh-ca", cmapi.CertificateSpec{
				DNSNames: []string{"localhost", "api.demo.svc"}, IPAddresses: []string{"127.0.0.1"},
			}), "localhost")
			client, clientCert := issuedSecret(t, c, pqCertificate(ns, "web-client", "PQClusterIssuer", "mesh-ca", cmapi.CertificateSpec{
				URIs: []string{"spiffe://cluster.local/ns/demo/sa/web"}, Usages: []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageClientAuth},
			}), "")
			for what, cert := range map[string]*x509.Certificate{"server": serverCert, "client": clientCert} {
				wantSignatureAlgorithm(t, what+" certificate", cert, "ML-DSA-65")
				if cert.PublicKeyAlgorithm != x509.ECDSA {
					t.Errorf("%s certificate has a %s key, want the ECDSA key cert-manager generated", what, cert.PublicKeyAlgorithm)
				}
			}
			rootPEM := readFile(t, filepath.Join(meshRoot, "tls.crt"))
			if !bytes.Equal(server.Data[cmmeta.TLSCAKey], rootPEM) {
				t.Errorf("ca.crt is not the offline root")
			}
			nodeVerify(t, "server chain", server.Data[corev1.TLSCertKey], server.Data[cmmeta.TLSCAKey])
			nodeVerify(t, "client chain", client.Data[corev1.TLSCertKey], client.Data[cmmeta.TLSCAKey])

			if reply := goMutualTLS(t, server, client, "localhost"); !strings.Contains(reply, "spiffe://cluster.local/ns/demo/sa/web") || !strings.Contains(reply, "ML-DSA-65") {
				t.Errorf("Go server process replied %q", reply)
			}
			reply := nodeMutualTLS(t, server, client, "localhost")
			t.Logf("Node server process replied %q", reply)
		}},
		{"namespaced PQIssuer with an ML-DSA-44 CA and a SPIFFE URI", func(t *testing.T) {
			pc.installCASecret(t, offlineRoot(t, "ML-DSA-44", "Team Root"), ns, "team-ca")
			issuer := pqIssuer(ns, "team-ca", "team-ca")
			create(t, c, issuer)
			waitIssuer(t, c, issuer, metav1.ConditionTrue, v1alpha1.ReasonVerified)
			secret, cert := issuedSecret(t, c, pqCertificate(ns, "api", "PQIssuer", "team-ca", cmapi.CertificateSpec{
				URIs: []string{"spiffe://cluster.local/ns/demo/sa/api"}, DNSNames: []string{"api.demo.svc"},
			}), "api.demo.svc")
			wantSignatureAlgorithm(t, "api certificate", cert, "ML-DSA-44")
			if len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://cluster.local/ns/demo/sa/api" {
				t.Errorf("URI SANs = %v, want the SPIFFE ID", cert.URIs)
			}
			nodeVerify(t, "ML-DSA-44 chain", secret.Data[corev1.TLSCertKey], secret.Data[cmmeta.TLSCAKey])
		}},
		{"PQClusterIssuer with an ML-DSA-87 CA", func(t *testing.T) {
			pc.readyClusterIssuer(t, offlineRoot(t, "ML-DSA-87", "High Root"), "high-ca")
			secret, cert := issuedSecret(t, c, pqCertificate(ns, "vault", "PQClusterIssuer", "high-ca", cmapi.CertificateSpec{
				DNSNames: []string{"vault.demo.svc"},
			}), "vault.demo.svc")
			wantSignatureAlgorithm(t, "vault certificate", cert, "ML-DSA-87")
			nodeVerify(t, "ML-DSA-87 chain", secret.Data[corev1.TLSCertKey], secret.Data[cmmeta.TLSCAKey])
		}},
		{"intermediate CA under an offline kubectl-pq root: leaf + intermediate in tls.crt, root in ca.crt", func(t *testing.T) {
			root := offlineRoot(t, "ML-DSA-87", "Offline Root")
			issuing := filepath.Join(t.TempDir(), "issuing")
			kubectlPQ(t, "ca", "intermediate", "--ca-dir", root, "--algorithm", "ML-DSA-65", "--subject", "CN=Cluster Issuing CA", "--duration", "4380h", "--out-dir", issuing)
			pc.readyClusterIssuer(t, issuing, "issuing-ca")
			secret, _ := issuedSecret(t, c, pqCertificate(ns, "payments", "PQClusterIssuer", "issuing-ca", cmapi.CertificateSpec{
				DNSNames: []string{"payments.demo.svc"},
			}), "payments.demo.svc")
			chain := pemCerts(t, "tls.crt", secret.Data[corev1.TLSCertKey])
			if len(chain) != 2 || chain[1].Subject.CommonName != "Cluster Issuing CA" {
				t.Fatalf("tls.crt holds %d certificates, want the leaf and the intermediate", len(chain))
			}
			if ca := pemCerts(t, "ca.crt", secret.Data[cmmeta.TLSCAKey]); len(ca) != 1 || ca[0].Subject.CommonName != "Offline Root" {
				t.Fatalf("ca.crt is not the offline root alone")
			}
			wantSignatureAlgorithm(t, "leaf", chain[0], "ML-DSA-65")
			wantSignatureAlgorithm(t, "intermediate", chain[1], "ML-DSA-87")
			nodeVerify(t, "leaf → intermediate → root", secret.Data[corev1.TLSCertKey], secret.Data[cmmeta.TLSCAKey])
		}},
		{"duration 24h with renewBefore: cert-manager schedules the renewal, and a deleted Secret is re-issued", func(t *testing.T) {
			crt := pqCertificate(ns, "short", "PQClusterIssuer", "mesh-ca", cmapi.CertificateSpec{
				DNSNames: []string{"short.demo.svc"},
				Duration: &metav1.Duration{Duration: 24 * time.Hour}, RenewBefore: &metav1.Duration{Duration: 8 * time.Hour},
			})
			secret, before := issuedSecret(t, c, crt, "short.demo.svc")
			if got := before.NotAfter.Sub(before.NotBefore); got < 23*time.Hour || got > 25*time.Hour {
				t.Errorf("certificate is valid for %s, want 24h", got)
			}
			waitFor(t, c, "Certificate demo/short renewal time", crt, func() bool { return crt.Status.RenewalTime != nil })
			if want := before.NotAfter.Add(-8 * time.Hour); crt.Status.RenewalTime.Sub(want).Abs() > time.Second {
				t.Errorf("renewalTime = %s, want notAfter - renewBefore = %s", crt.Status.RenewalTime, want)
			}
			revision := ptr.Deref(crt.Status.Revision, 0)
			if err := c.Delete(t.Context(), secret); err != nil {
				t.Fatal(err)
			}
			waitFor(t, c, "Certificate demo/short re-issued", crt, func() bool {
				return ptr.Deref(crt.Status.Revision, 0) > revision && hasCondition(crt.Status.Conditions, cmapi.CertificateConditionReady)
			}, certificateRequests(t, c, ns))
			_, after := issuedSecret(t, c, crt, "short.demo.svc")
			if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
				t.Fatalf("re-issued certificate has the old serial %x", before.SerialNumber)
			}
		}},
		{"CertificateRequest with an ML-DSA-65 key from kubectl-pq csr: keyEncipherment dropped, the event says so", func(t *testing.T) {
			cr := request(ns, "mldsa-client", "mesh-ca", kubectlPQCSR(t, "--algorithm", "ML-DSA-65", "--common-name", "web", "--uri", "spiffe://cluster.local/ns/demo/sa/web"))
			cr.Spec.Duration = &metav1.Duration{Duration: 24 * time.Hour}
			cr.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageClientAuth}
			create(t, c, cr)
			waitRequest(t, c, cr, cmapi.CertificateRequestReasonIssued)
			cert := parseCertificate(t, "status.certificate", cr.Status.Certificate)
			if _, ok := cert.PublicKey.(*mldsa.PublicKey); !ok {
				t.Fatalf("certificate has a %T key, want ML-DSA", cert.PublicKey)
			}
			if cert.KeyUsage&x509.KeyUsageKeyEncipherment != 0 || cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
				t.Errorf("key usage = %v, want digitalSignature without keyEncipherment", signer.KeyUsageNames(cert.KeyUsage))
			}
			event := waitEvent(t, c, cr, cmapi.CertificateRequestReasonIssued)
			if !strings.Contains(event, "Removed key usage keyEncipherment") || !strings.Contains(event, "RFC 9881") {
				t.Errorf("Issued event does not explain the dropped usage: %q", event)
			}
			nodeVerify(t, "ML-DSA leaf", cr.Status.Certificate, cr.Status.CA)
			describe := pc.kubectl(t, nil, "describe", "certificaterequest", "-n", ns, cr.Name)
			for _, want := range []string{"Certificate issued by PQClusterIssuer mesh-ca with its ML-DSA-65 CA CN=Mesh Root", "Removed key usage keyEncipherment", "Normal  Issued"} {
				if !strings.Contains(describe, want) {
					t.Errorf("kubectl describe certificaterequest does not show %q:\n%s", want, describe)
				}
			}
		}},
		{"Gateway annotated with issuer-kind PQClusterIssuer gets its listener Secret from pq-issuer", func(t *testing.T) {
			createGateway(t, c, ns, "edge", "edge.demo.example", "edge-tls", map[string]string{
				cmapi.IngressIssuerNameAnnotationKey: "mesh-ca",
				cmapi.IssuerKindAnnotationKey:        "PQClusterIssuer",
				cmapi.IssuerGroupAnnotationKey:       v1alpha1.GroupVersion.Group,
			})
			crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "edge-tls"}}
			waitFor(t, c, "gateway-shim to create Certificate demo/edge-tls", crt, func() bool { return true })
			if ref := crt.Spec.IssuerRef; ref.Group != v1alpha1.GroupVersion.Group || ref.Kind != "PQClusterIssuer" || ref.Name != "mesh-ca" {
				t.Fatalf("gateway-shim's Certificate has issuerRef %+v, want PQClusterIssuer mesh-ca", ref)
			}
			_, cert := issuedSecret(t, c, crt, "edge.demo.example")
			wantSignatureAlgorithm(t, "edge certificate", cert, "ML-DSA-65")
		}},
		{"trust-manager Bundle distributes the ML-DSA root", func(t *testing.T) {
			publishAndVerifyBundle(t, c, crNS, "mesh-ca", ns)
			cm := &corev1.ConfigMap{}
			if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "mesh-ca"}, cm); err != nil {
				t.Fatal(err)
			}
			root := parseCertificate(t, "Bundle", []byte(cm.Data["ca-bundle.crt"]))
			if _, ok := root.PublicKey.(*mldsa.PublicKey); !ok || root.Subject.CommonName != "Mesh Root" {
				t.Fatalf("Bundle holds %s with a %T key, want the ML-DSA Mesh Root", root.Subject, root.PublicKey)
			}
		}},
		{"missing CA Secret: issuer NotReady SecretNotFound, request Pending, issued once the Secret appears", func(t *testing.T) {
			issuer := pqClusterIssuer("late-ca", "late-ca")
			create(t, c, issuer)
			ready := waitIssuer(t, c, issuer, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
			if !strings.Contains(ready.Message, "Secret cert-manager/late-ca not found") {
				t.Errorf("SecretNotFound message %q does not name the Secret", ready.Message)
			}
			crt := pqCertificate(ns, "late", "PQClusterIssuer", "late-ca", cmapi.CertificateSpec{DNSNames: []string{"late.demo.svc"}})
			create(t, c, crt)
			cr := waitRequestFor(t, c, crt, cmapi.CertificateRequestReasonPending)
			if msg := readyMessage(cr); !strings.Contains(msg, "Waiting for PQClusterIssuer late-ca to be ready") || !strings.Contains(msg, "not found") {
				t.Errorf("Pending message %q does not pass on the issuer's reason", msg)
			}
			pc.installCASecret(t, offlineRoot(t, "ML-DSA-65", "Late Root"), crNS, "late-ca")
			waitIssuer(t, c, issuer, metav1.ConditionTrue, v1alpha1.ReasonVerified)
			issuedSecret(t, c, crt, "late.demo.svc")
		}},
		{"CA Secret without the label: issuer SecretNotMarked until kubectl labels it, and again once the label is removed", func(t *testing.T) {
			dir := offlineRoot(t, "ML-DSA-65", "Unmarked Root")
			create(t, c, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: crNS, Name: "unmarked-ca"}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{corev1.TLSCertKey: readFile(t, filepath.Join(dir, "tls.crt")), corev1.TLSPrivateKeyKey: readFile(t, filepath.Join(dir, "tls.key"))},
			})
			issuer := pqClusterIssuer("unmarked-ca", "unmarked-ca")
			create(t, c, issuer)
			ready := waitIssuer(t, c, issuer, metav1.ConditionFalse, v1alpha1.ReasonSecretNotMarked)
			label := "kubectl label secret -n cert-manager unmarked-ca pq-issuer.dev/ca-secret=true"
			if !strings.Contains(ready.Message, label) || !strings.Contains(ready.Message, "`kubectl pq ca secret` writes the label") {
				t.Errorf("SecretNotMarked message %q does not say how to mark the Secret", ready.Message)
			}
			if got := waitEvent(t, c, issuer, v1alpha1.ReasonSecretNotMarked); got != ready.Message {
				t.Errorf("SecretNotMarked event %q differs from the condition message %q", got, ready.Message)
			}
			// The command from the message, as the operator runs it.
			pc.kubectl(t, nil, strings.Fields(strings.TrimPrefix(label, "kubectl "))...)
			waitIssuer(t, c, issuer, metav1.ConditionTrue, v1alpha1.ReasonVerified)
			pc.kubectl(t, nil, "label", "secret", "-n", crNS, "unmarked-ca", v1alpha1.CASecretLabel+"-")
			waitIssuer(t, c, issuer, metav1.ConditionFalse, v1alpha1.ReasonSecretNotMarked)
			if got := events(t, c, issuer, v1alpha1.ReasonSecretNotMarked); len(got) != 2 {
				t.Errorf("%d SecretNotMarked events, want 2 (before the label, after its removal): %q", len(got), got)
			}
		}},
		{"the controllers' cache holds the metadata of CA Secrets only", func(t *testing.T) {
			all := &metav1.PartialObjectMetadataList{}
			all.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
			if err := c.List(t.Context(), all); err != nil {
				t.Fatal(err)
			}
			var marked, unmarked []string
			for _, s := range all.Items {
				if s.Labels[v1alpha1.CASecretLabel] == v1alpha1.CASecretLabelValue {
					marked = append(marked, s.Namespace+"/"+s.Name)
				} else {
					unmarked = append(unmarked, s.Namespace+"/"+s.Name)
				}
			}
			if len(marked) < 3 || len(unmarked) < 3 {
				t.Fatalf("the cluster holds %d CA Secrets and %d others; the steps above should have made at least 3 of each", len(marked), len(unmarked))
			}
			cached := cachedSecrets(t, pc)
			slices.Sort(marked)
			if !slices.Equal(cached, marked) {
				t.Errorf("the cache holds Secrets %q, want exactly the CA Secrets %q (of %d Secrets)", cached, marked, len(all.Items))
			}
			t.Logf("cached %d CA Secrets of %d Secrets", len(cached), len(all.Items))
		}},
		{"tampered CSR: Failed, naming the bad signature, in kubectl describe too", func(t *testing.T) {
			cr := request(ns, "tampered", "mesh-ca", tamperCSR(t, kubectlPQCSR(t, "--algorithm", "ECDSA-P256", "--common-name", "mallory", "--dns", "mallory.demo.svc"), "mallory"))
			create(t, c, cr)
			waitRequest(t, c, cr, cmapi.CertificateRequestReasonFailed)
			if cr.Status.FailureTime == nil || len(cr.Status.Certificate) != 0 {
				t.Errorf("failed request has failureTime %v and %d certificate bytes", cr.Status.FailureTime, len(cr.Status.Certificate))
			}
			msg := readyMessage(cr)
			if !strings.Contains(msg, "BadCSRSignature") || !strings.Contains(msg, "signature") {
				t.Errorf("Failed message %q does not name the bad signature", msg)
			}
			describe := pc.kubectl(t, nil, "describe", "certificaterequest", "-n", ns, cr.Name)
			for _, want := range []string{"PQClusterIssuer mesh-ca cannot sign this request (BadCSRSignature)", "Warning  Failed"} {
				if !strings.Contains(describe, want) {
					t.Errorf("kubectl describe certificaterequest does not show %q:\n%s", want, describe)
				}
			}
		}},
		{"expired CA: issuer NotReady Expired", func(t *testing.T) {
			certPEM, keyPEM, err := signer.CreateRootCA(signer.CAOptions{
				Algorithm: signer.MLDSA65, Subject: pkix.Name{CommonName: "Old Root"}, Duration: 24 * time.Hour,
			}, time.Now().Add(-48*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			create(t, c, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: crNS, Name: "old-ca", Labels: caSecretLabels()}, Type: corev1.SecretTypeTLS,
				Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
			})
			issuer := pqClusterIssuer("old-ca", "old-ca")
			create(t, c, issuer)
			ready := waitIssuer(t, c, issuer, metav1.ConditionFalse, string(signer.ReasonExpired))
			if !strings.Contains(ready.Message, "expired at") || !strings.Contains(ready.Message, "cert-manager/old-ca") {
				t.Errorf("Expired message %q does not say which CA expired when", ready.Message)
			}
			if got := waitEvent(t, c, issuer, string(signer.ReasonExpired)); got != ready.Message {
				t.Errorf("Expired event %q differs from the condition message %q", got, ready.Message)
			}
		}},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			t.FailNow()
		}
	}
}

// waitRequest waits until the request's Ready condition has reason.
func waitRequest(t *testing.T, c client.Client, cr *cmapi.CertificateRequest, reason string) {
	t.Helper()
	waitFor(t, c, "CertificateRequest "+cr.Namespace+"/"+cr.Name+" Ready reason "+reason, cr, func() bool {
		return readyReason(cr) == reason
	})
}

// waitRequestFor waits until the Certificate's current CertificateRequest has reason and returns it.
func waitRequestFor(t *testing.T, c client.Client, crt *cmapi.Certificate, reason string) *cmapi.CertificateRequest {
	t.Helper()
	var found *cmapi.CertificateRequest
	waitFor(t, c, "a CertificateRequest of Certificate "+crt.Name+" with reason "+reason, crt, func() bool {
		var list cmapi.CertificateRequestList
		if err := c.List(t.Context(), &list, client.InNamespace(crt.Namespace)); err != nil {
			return false
		}
		for i, cr := range list.Items {
			if owner := metav1.GetControllerOf(&cr); owner != nil && owner.UID == crt.UID && readyReason(&cr) == reason {
				found = &list.Items[i]
				return true
			}
		}
		return false
	}, certificateRequests(t, c, crt.Namespace))
	return found
}

func readyCondition(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	for i, cond := range cr.Status.Conditions {
		if cond.Type == cmapi.CertificateRequestConditionReady {
			return &cr.Status.Conditions[i]
		}
	}
	return nil
}

func readyReason(cr *cmapi.CertificateRequest) string {
	if cond := readyCondition(cr); cond != nil {
		return cond.Reason
	}
	return ""
}

func readyMessage(cr *cmapi.CertificateRequest) string {
	if cond := readyCondition(cr); cond != nil {
		return cond.Message
	}
	return ""
}

// tamperCSR flips the case of the first letter of name in the CSR's subject, so its signature no
// longer verifies.
func tamperCSR(t *testing.T, csrPEM []byte, name string) []byte {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	if block == nil {
		t.Fatalf("no PEM in %q", csrPEM)
	}
	der := bytes.Clone(block.Bytes)
	i := bytes.Index(der, []byte(name))
	if i < 0 {
		t.Fatalf("CSR does not contain %q", name)
	}
	der[i] ^= 'a' - 'A'
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

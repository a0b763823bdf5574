package localcluster_test

import (
	"bytes"
	"context"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	trustapi "github.com/cert-manager/trust-manager/pkg/apis/trust/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestCertManagerPipeline proves the local control plane is the real cert-manager pipeline: each
// step needs a different set of cert-manager's (or trust-manager's) controllers to act. The steps
// build on each other, so the first failure stops the test.
func TestCertManagerPipeline(t *testing.T) {
	cluster := startCluster(t, localcluster.Options{})
	c := cluster.Client()
	const (
		ns         = "e2e"
		selfSigned = "e2e-selfsigned"
		caIssuer   = "e2e-ca"
		rootCA     = "e2e-root-ca"
	)
	create(t, c, namespace(ns))

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"SelfSigned ClusterIssuer issues a root CA", func(t *testing.T) {
			issuer := clusterIssuer(selfSigned, cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}})
			create(t, c, issuer)
			waitFor(t, c, "ClusterIssuer "+selfSigned+" Ready", issuer, func() bool { return issuerReady(issuer.Status.Conditions) })

			issueAndVerify(t, c, certificate(cluster.ClusterResourceNamespace(), rootCA, selfSigned, cmapi.CertificateSpec{
				CommonName: "e2e root CA",
				IsCA:       true,
			}), "")
		}},
		{"CA ClusterIssuer signs a leaf that chains to the root", func(t *testing.T) {
			issuer := clusterIssuer(caIssuer, cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: rootCA}})
			create(t, c, issuer)
			waitFor(t, c, "ClusterIssuer "+caIssuer+" Ready", issuer, func() bool { return issuerReady(issuer.Status.Conditions) })

			issueAndVerify(t, c, certificate(ns, "web", caIssuer, cmapi.CertificateSpec{
				DNSNames: []string{"web.e2e.example"},
			}), "web.e2e.example")
		}},
		{"deleting the Secret re-issues the Certificate", func(t *testing.T) {
			crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
			waitFor(t, c, "Secret e2e/web", secret, func() bool { return true })
			before := parseCertificate(t, "Secret e2e/web tls.crt", secret.Data[corev1.TLSCertKey])
			waitFor(t, c, "Certificate e2e/web", crt, func() bool { return true })
			revision := ptr.Deref(crt.Status.Revision, 0)

			if err := c.Delete(t.Context(), secret); err != nil {
				t.Fatalf("Deleting Secret e2e/web: %v", err)
			}
			waitFor(t, c, "Certificate e2e/web re-issued and Ready", crt, func() bool {
				return ptr.Deref(crt.Status.Revision, 0) > revision && hasCondition(crt.Status.Conditions, cmapi.CertificateConditionReady)
			}, certificateRequests(t, c, ns))

			secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
			waitFor(t, c, "Secret e2e/web re-created", secret, func() bool { return true })
			after := verifyTLSSecret(t, secret, "web.e2e.example")
			if after.SerialNumber.Cmp(before.SerialNumber) == 0 {
				t.Fatalf("Re-issued certificate has the old serial %s", before.SerialNumber)
			}
		}},
		{"gateway-shim creates a Certificate for an annotated Gateway", func(t *testing.T) {
			createGateway(t, c, ns, "shop", "shop.e2e.example", "shop-tls", map[string]string{
				cmapi.IngressClusterIssuerNameAnnotationKey: caIssuer,
			})

			crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-tls"}}
			waitFor(t, c, "gateway-shim to create Certificate e2e/shop-tls", crt, func() bool { return true })
			owner := metav1.GetControllerOf(crt)
			if owner == nil || owner.Kind != "Gateway" || owner.Name != "shop" {
				t.Fatalf("Certificate e2e/shop-tls is not controlled by Gateway shop:\n%s", dump(crt))
			}
			if crt.Spec.IssuerRef.Name != caIssuer || crt.Spec.IssuerRef.Kind != cmapi.ClusterIssuerKind {
				t.Fatalf("Certificate e2e/shop-tls has issuerRef %+v, want ClusterIssuer %s", crt.Spec.IssuerRef, caIssuer)
			}
			issueAndVerify(t, c, crt, "shop.e2e.example")
		}},
		{"trust-manager Bundle publishes the root CA to a ConfigMap", func(t *testing.T) {
			publishAndVerifyBundle(t, c, cluster.ClusterResourceNamespace(), rootCA, ns)
		}},
	}
	for _, step := range steps {
		if !t.Run(step.name, step.run) {
			t.FailNow()
		}
	}
}

// publishAndVerifyBundle creates a Bundle named after the CA Secret sourceSecret (in the trust
// namespace) and checks that trust-manager writes exactly that CA to the Bundle's ConfigMap in
// targetNamespace.
func publishAndVerifyBundle(t *testing.T, c client.Client, trustNamespace, sourceSecret, targetNamespace string) {
	t.Helper()
	bundle := &trustapi.Bundle{
		ObjectMeta: metav1.ObjectMeta{Name: sourceSecret},
		Spec: trustapi.BundleSpec{
			Sources: []trustapi.BundleSource{{Secret: &trustapi.SourceObjectKeySelector{Name: sourceSecret, Key: cmmeta.TLSCAKey}}},
			Target:  trustapi.BundleTarget{ConfigMap: &trustapi.TargetTemplate{Key: "ca-bundle.crt"}},
		},
	}
	create(t, c, bundle)
	source := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: trustNamespace, Name: sourceSecret}}
	waitFor(t, c, "Secret "+trustNamespace+"/"+sourceSecret, source, func() bool { return true })
	want := parseCertificate(t, sourceSecret+" ca.crt", source.Data[cmmeta.TLSCAKey])

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: targetNamespace, Name: bundle.Name}}
	what := "ConfigMap " + targetNamespace + "/" + bundle.Name + " from Bundle " + bundle.Name
	waitFor(t, c, what, cm, func() bool { return cm.Data["ca-bundle.crt"] != "" }, func() string {
		_ = c.Get(context.Background(), client.ObjectKeyFromObject(bundle), bundle)
		return dump(bundle)
	})
	got := parseCertificate(t, what, []byte(cm.Data["ca-bundle.crt"]))
	if !bytes.Equal(got.Raw, want.Raw) {
		t.Fatalf("%s holds %q, want the CA %q", what, got.Subject, want.Subject)
	}
}

// issueAndVerify creates crt unless it exists, waits for it to be Ready and checks its Secret.
func issueAndVerify(t *testing.T, c client.Client, crt *cmapi.Certificate, dnsName string) {
	t.Helper()
	if crt.ResourceVersion == "" {
		create(t, c, crt)
	}
	waitFor(t, c, "Certificate "+crt.Namespace+"/"+crt.Name+" Ready", crt, func() bool {
		return hasCondition(crt.Status.Conditions, cmapi.CertificateConditionReady)
	}, certificateRequests(t, c, crt.Namespace))

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: crt.Namespace, Name: crt.Spec.SecretName}}
	waitFor(t, c, "Secret "+crt.Namespace+"/"+crt.Spec.SecretName, secret, func() bool { return true })
	verifyTLSSecret(t, secret, dnsName)
}

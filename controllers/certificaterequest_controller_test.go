package controllers

import (
	"bytes"
	"context"
	"crypto/mldsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/internal/testkeys"
	"github.com/pq-issuer/pq-issuer/signer"
)

const (
	signedMetric = "pq_issuer_certificaterequests_signed_total"
	failedMetric = "pq_issuer_certificaterequests_failed_total"
)

var crKey = types.NamespacedName{Namespace: testNamespace, Name: crName}

// crFixture is what a CertificateRequest case builds its cluster from.
type crFixture struct {
	now time.Time
	// ca is the issuer's CA: a year-long ML-DSA-65 root unless the case replaces it.
	ca testCA
	// root is the trust anchor: ca itself unless ca is an intermediate.
	root testCA
}

// pqIssuerWith is a PQIssuer demo/mesh with its Secret holding ca.
func pqIssuerWith(ca testCA, opts ...issuerOption) []client.Object {
	return []client.Object{
		newPQIssuer(testNamespace, issuerName, opts...),
		newSecret(testNamespace, caSecret, withCAData(ca)),
	}
}

// pqClusterIssuerWith is a PQClusterIssuer mesh with its Secret, in the cluster resource
// namespace, holding ca.
func pqClusterIssuerWith(ca testCA, opts ...issuerOption) []client.Object {
	return []client.Object{
		newPQClusterIssuer(issuerName, opts...),
		newSecret(clusterResourceNamespace, caSecret, withCAData(ca)),
	}
}

// approvedRequest is an approved request in namespace demo for the PQIssuer mesh, with an ECDSA
// P-256 CSR, changed by opts.
func approvedRequest(t testing.TB, opts ...requestOption) *cmapi.CertificateRequest {
	base := []requestOption{withPQIssuerRef(PQIssuerKind, issuerName), withCSR(newCSRPEM(t, testkeys.New(t, "ECDSA-P256"))), withApproved()}
	return newCertificateRequest(testNamespace, crName, append(base, opts...)...)
}

// withRequestUsername sets the user the API server records as the request's creator.
func withRequestUsername(username string) requestOption {
	return func(cr *cmapi.CertificateRequest) { cr.Spec.Username = username }
}

// withCreated sets the creationTimestamp the API server would, at the second: the retry bound
// counts from it.
func withCreated(at time.Time) requestOption {
	return func(cr *cmapi.CertificateRequest) { cr.CreationTimestamp = metav1.NewTime(at.Truncate(time.Second)) }
}

// reconcileIssuers has the issuer controllers check every issuer in objs, as they would before the
// request is reconciled, and drops their events.
func reconcileIssuers(t testing.TB, env *testEnv, objs []client.Object) {
	t.Helper()
	for _, o := range objs {
		var kind IssuerKind
		switch o.(type) {
		case *v1alpha1.PQIssuer:
			kind = PQIssuerKind
		case *v1alpha1.PQClusterIssuer:
			kind = PQClusterIssuerKind
		default:
			continue
		}
		if _, err := env.reconcileIssuer(t, kind, client.ObjectKeyFromObject(o)); err != nil {
			t.Fatal(err)
		}
	}
	env.drainEvents()
}

// basicConstraintsCA is a CSR extension asking for CA:TRUE.
func basicConstraintsCA(t testing.TB) pkix.Extension {
	t.Helper()
	v, err := asn1.Marshal(struct {
		IsCA bool `asn1:"optional"`
	}{true})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: v}
}

func TestCertificateRequestReconcile(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name string
		// ca replaces the fixture's CA (and root).
		ca func(t *testing.T, now time.Time) (ca, root testCA)
		// cluster is the issuers and Secrets; the default is pqIssuerWith(fx.ca).
		cluster func(t *testing.T, fx *crFixture) []client.Object
		// skipIssuerReconcile leaves the issuers as built, unchecked.
		skipIssuerReconcile bool
		request             func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest
		// change runs after the issuers are checked, before the request is reconciled.
		change func(t *testing.T, env *testEnv, fx *crFixture)

		untouched   bool
		want        wantCondition
		wantFailed  bool // failureTime set, failed counter incremented
		wantIssued  bool
		wantRequeue time.Duration
		// check looks further at an issued leaf.
		check func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate)
	}{
		// Requests pq-issuer must leave alone.
		{
			name: "cert-manager Issuer is not ours",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withIssuerRef("cert-manager.io", "Issuer", issuerName))
			},
			untouched: true,
		},
		{
			name: "another external issuer's group",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withIssuerRef("awspca.cert-manager.io", "PQIssuer", issuerName))
			},
			untouched: true,
		},
		{
			name: "empty group means cert-manager's, even with our kind",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withIssuerRef("", "PQIssuer", issuerName))
			},
			untouched: true,
		},
		{
			name: "our group with an unknown kind",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withIssuerRef(v1alpha1.GroupVersion.Group, "PQSomethingElse", issuerName))
			},
			untouched: true,
		},
		{
			name: "not approved yet",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName), withCSR(newCSRPEM(t, testkeys.New(t, "ECDSA-P256"))))
			},
			untouched: true,
		},
		{
			name: "not approved yet and its issuer is missing",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return nil
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName), withCSR(newCSRPEM(t, testkeys.New(t, "ECDSA-P256"))))
			},
			untouched: true,
		},
		{
			name: "already issued by another writer",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withIssuedStatus([]byte("someone else's certificate")))
			},
			untouched: true,
		},
		{
			name: "already failed",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCondition(cmapi.CertificateRequestConditionReady, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonFailed, "failed before"))
			},
			untouched: true,
		},
		{
			name: "InvalidRequest set by another signer",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCondition(cmapi.CertificateRequestConditionInvalidRequest, cmmeta.ConditionTrue, "InvalidCSR", "refused elsewhere"))
			},
			untouched: true,
		},
		{
			name: "InvalidRequest and denied: not marked Denied over the other signer's verdict",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName), withDenied("policy", "no"),
					withCondition(cmapi.CertificateRequestConditionInvalidRequest, cmmeta.ConditionTrue, "InvalidCSR", "refused elsewhere"))
			},
			untouched: true,
		},
		{
			name: "InvalidRequest False is no verdict: signed",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCondition(cmapi.CertificateRequestConditionInvalidRequest, cmmeta.ConditionFalse, "Valid", "checked elsewhere"))
			},
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Certificate issued by PQIssuer mesh"}},
			wantIssued: true,
		},

		// Denied.
		{
			name: "denied",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName),
					withCSR(newCSRPEM(t, testkeys.New(t, "ECDSA-P256"))), withDenied("policy.example.com", "names outside the mesh"))
			},
			want: wantCondition{"False", cmapi.CertificateRequestReasonDenied, []string{
				"denied by an approval controller", "policy.example.com: names outside the mesh", "did not sign it"}},
			wantFailed: true,
		},
		{
			name: "denied for a PQClusterIssuer that does not exist",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return nil
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQClusterIssuerKind, "nope"), withDenied("policy", "no"))
			},
			want:       wantCondition{"False", cmapi.CertificateRequestReasonDenied, []string{"denied"}},
			wantFailed: true,
		},

		// Waiting for the issuer.
		{
			name: "PQIssuer missing",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return nil
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withPQIssuerRef(PQIssuerKind, "nope"))
			},
			want:        wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"Waiting for PQIssuer nope: it does not exist in namespace demo"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name: "PQIssuer exists only in another namespace",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				cr := approvedRequest(t)
				cr.Namespace = "team-b"
				return cr
			},
			want:        wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"Waiting for PQIssuer mesh: it does not exist in namespace team-b"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name: "PQClusterIssuer missing",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withPQIssuerRef(PQClusterIssuerKind, issuerName))
			},
			want:        wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"Waiting for PQClusterIssuer mesh: it does not exist; create it"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name: "PQIssuer missing long past the retry bound: still waiting, not Failed",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return nil
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCreated(fx.now.Add(-10*testMaxRetryDuration)))
			},
			want:        wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"Waiting for PQIssuer mesh: it does not exist"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name: "PQIssuer not ready",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return []client.Object{newPQIssuer(testNamespace, issuerName)}
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			want: wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{
				"Waiting for PQIssuer mesh to be ready: Secret demo/ca not found"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name: "PQClusterIssuer not ready",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return []client.Object{newPQClusterIssuer(issuerName), newSecret(clusterResourceNamespace, caSecret, withTLS(fx.ca.CertPEM, nil))}
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withPQIssuerRef(PQClusterIssuerKind, issuerName))
			},
			want: wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{
				"Waiting for PQClusterIssuer mesh to be ready: Secret cert-manager/ca: no tls.key"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name:                "PQIssuer not checked yet",
			skipIssuerReconcile: true,
			request:             func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			want:                wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"Waiting for PQIssuer mesh to be ready: it has not been checked yet"}},
			wantRequeue:         testPendingRecheck,
		},
		{
			name:    "PQIssuer spec changed since it was checked",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			change: func(t *testing.T, env *testEnv, fx *crFixture) {
				issuer := env.getIssuer(t, PQIssuerKind, types.NamespacedName{Namespace: testNamespace, Name: issuerName})
				issuer.SetGeneration(issuer.GetGeneration() + 1)
				issuer.GetSpec().MaxDuration = nil
				if err := env.Client.Update(context.Background(), issuer); err != nil {
					t.Fatal(err)
				}
			},
			want:        wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"it has not been checked yet"}},
			wantRequeue: testPendingRecheck,
		},

		// The CA changed after the issuer was checked: wait, do not fail.
		{
			name:    "Secret lost tls.key after the issuer was ready",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			change: func(t *testing.T, env *testEnv, fx *crFixture) {
				s := &corev1.Secret{}
				if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: caSecret}, s); err != nil {
					t.Fatal(err)
				}
				delete(s.Data, corev1.TLSPrivateKeyKey)
				if err := env.Client.Update(context.Background(), s); err != nil {
					t.Fatal(err)
				}
			},
			want: wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{
				"PQIssuer mesh cannot sign now: Secret demo/ca: no tls.key"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name:    "Secret holds another CA's key after the issuer was ready",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			change: func(t *testing.T, env *testEnv, fx *crFixture) {
				other := newRootCA(t, signer.MLDSA65, fx.now, 365*day)
				s := &corev1.Secret{}
				if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: caSecret}, s); err != nil {
					t.Fatal(err)
				}
				s.Data[corev1.TLSPrivateKeyKey] = other.KeyPEM
				if err := env.Client.Update(context.Background(), s); err != nil {
					t.Fatal(err)
				}
			},
			want:        wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"cannot sign now", "does not belong to the CA certificate"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name:    "CA Secret label removed after the issuer was ready: not signed",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			change: func(t *testing.T, env *testEnv, fx *crFixture) {
				s := &corev1.Secret{}
				if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: testNamespace, Name: caSecret}, s); err != nil {
					t.Fatal(err)
				}
				delete(s.Labels, v1alpha1.CASecretLabel)
				if err := env.Client.Update(context.Background(), s); err != nil {
					t.Fatal(err)
				}
			},
			want: wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{
				"PQIssuer mesh cannot sign now: Secret demo/ca: not marked as a CA Secret"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name:    "Secret deleted after the issuer was ready",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			change: func(t *testing.T, env *testEnv, fx *crFixture) {
				if err := env.Client.Delete(context.Background(), newSecret(testNamespace, caSecret)); err != nil {
					t.Fatal(err)
				}
			},
			want:        wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"PQIssuer mesh cannot sign now: Secret demo/ca not found"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name: "Secret deleted long past the retry bound: still waiting, not Failed",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCreated(fx.now.Add(-10*testMaxRetryDuration)))
			},
			change: func(t *testing.T, env *testEnv, fx *crFixture) {
				if err := env.Client.Delete(context.Background(), newSecret(testNamespace, caSecret)); err != nil {
					t.Fatal(err)
				}
			},
			want:        wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"PQIssuer mesh cannot sign now: Secret demo/ca not found"}},
			wantRequeue: testPendingRecheck,
		},
		{
			name:    "CA expired after the issuer was ready",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			change: func(t *testing.T, env *testEnv, fx *crFixture) {
				env.Clock.SetTime(fx.ca.NotAfter.Add(time.Hour))
			},
			want:        wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"cannot sign now", "expired at"}},
			wantRequeue: testPendingRecheck,
		},

		// Issued.
		{
			name:       "ECDSA P-256 CSR signed by a root CA",
			request:    func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Certificate issued by PQIssuer mesh with its ML-DSA-65 CA", "valid until"}},
			wantIssued: true,
			check: func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate) {
				if n := len(parseCertsPEM(t, cr.Status.Certificate)); n != 1 {
					t.Errorf("status.certificate holds %d certificates, want the leaf only", n)
				}
				if leaf.Subject.CommonName != csrCommonName || !slices.Equal(leaf.DNSNames, []string{csrCommonName, csrCommonName + ".cluster.local"}) {
					t.Errorf("leaf names %s %v, want the CSR's", leaf.Subject, leaf.DNSNames)
				}
				if leaf.IsCA {
					t.Error("the leaf is a CA")
				}
				// cert-manager's default usages, less keyEncipherment, which RFC 8813 forbids for ECDSA.
				if want := x509.KeyUsageDigitalSignature; leaf.KeyUsage != want {
					t.Errorf("key usage %v, want %v", leaf.KeyUsage, want)
				}
				// cert-manager's default duration, from the fake clock.
				if !leaf.NotBefore.Equal(fx.now.Truncate(time.Second)) {
					t.Errorf("notBefore %s, want the fake clock's %s", leaf.NotBefore, fx.now)
				}
				if got := leaf.NotAfter.Sub(leaf.NotBefore); got != cmapi.DefaultCertificateDuration {
					t.Errorf("validity %s, want cert-manager's default %s", got, cmapi.DefaultCertificateDuration)
				}
				if !strings.Contains(requestReady(cr).Message, leaf.SerialNumber.Text(16)) {
					t.Errorf("message %q does not name the serial %x", requestReady(cr).Message, leaf.SerialNumber)
				}
			},
		},
		{
			name: "ECDSA P-256 CSR signed by an intermediate CA",
			ca: func(t *testing.T, now time.Time) (testCA, testCA) {
				root := newRootCA(t, signer.MLDSA87, now, 2*365*day)
				return newIntermediateCA(t, root, signer.MLDSA65, now, 365*day), root
			},
			request:    func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Test Intermediate ML-DSA-65"}},
			wantIssued: true,
			check: func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate) {
				chain := parseCertsPEM(t, cr.Status.Certificate)
				if len(chain) != 2 || !bytes.Equal(chain[1].Raw, fx.ca.Certificate.Raw) {
					t.Errorf("status.certificate holds %d certificates, want the leaf and the intermediate", len(chain))
				}
				if ca := parseCertsPEM(t, cr.Status.CA); !bytes.Equal(ca[0].Raw, fx.root.Certificate.Raw) {
					t.Errorf("status.ca is %s, want the root", ca[0].Subject)
				}
			},
		},
		{
			name: "PQClusterIssuer signs a request in any namespace",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return pqClusterIssuerWith(fx.ca)
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				cr := approvedRequest(t, withPQIssuerRef(PQClusterIssuerKind, issuerName))
				cr.Namespace = "team-b"
				return cr
			},
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Certificate issued by PQClusterIssuer mesh"}},
			wantIssued: true,
		},
		{
			name: "ML-DSA-65 CSR asking for key encipherment",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(newCSRPEM(t, testkeys.New(t, "ML-DSA-65"))),
					withUsages(cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth, cmapi.UsageClientAuth))
			},
			want: wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{
				"Removed key usage keyEncipherment: RFC 9881 §5 forbids it for ML-DSA keys"}},
			wantIssued: true,
			check: func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate) {
				if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
					t.Errorf("key usage %v, want digitalSignature only", leaf.KeyUsage)
				}
				if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(leaf.ExtKeyUsage, want) {
					t.Errorf("extended key usage %v, want %v", leaf.ExtKeyUsage, want)
				}
				if pub, ok := leaf.PublicKey.(*mldsa.PublicKey); !ok || pub.Parameters() != mldsa.MLDSA65() {
					t.Errorf("leaf key %T, want an ML-DSA-65 key", leaf.PublicKey)
				}
			},
		},
		{
			name: "Ed25519 CSR with cert-manager's default usages",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(newCSRPEM(t, testkeys.New(t, "Ed25519"))))
			},
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Removed key usage keyEncipherment: RFC 8410 §5"}},
			wantIssued: true,
			check: func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate) {
				if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
					t.Errorf("key usage %v, want digitalSignature only", leaf.KeyUsage)
				}
			},
		},
		{
			name: "ML-DSA-87 CSR signed by an ML-DSA-44 CA",
			ca: func(t *testing.T, now time.Time) (testCA, testCA) {
				ca := newRootCA(t, signer.MLDSA44, now, 365*day)
				return ca, ca
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(newCSRPEM(t, testkeys.New(t, "ML-DSA-87"))), withUsages(cmapi.UsageDigitalSignature))
			},
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"with its ML-DSA-44 CA"}},
			wantIssued: true,
			check: func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate) {
				if strings.Contains(requestReady(cr).Message, "Removed") {
					t.Errorf("message %q mentions a removed usage, but none was asked for", requestReady(cr).Message)
				}
			},
		},
		{
			name: "duration capped by spec.maxDuration",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return pqIssuerWith(fx.ca, withMaxDuration(time.Hour))
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withDuration(48*time.Hour))
			},
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Validity shortened to the issuer's maximum duration"}},
			wantIssued: true,
			check: func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate) {
				if got := leaf.NotAfter.Sub(leaf.NotBefore); got != time.Hour {
					t.Errorf("validity %s, want the maxDuration 1h", got)
				}
			},
		},
		{
			name: "duration within spec.maxDuration",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return pqIssuerWith(fx.ca, withMaxDuration(2*time.Hour))
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withDuration(90*time.Minute))
			},
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, nil},
			wantIssued: true,
			check: func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate) {
				if got := leaf.NotAfter.Sub(leaf.NotBefore); got != 90*time.Minute {
					t.Errorf("validity %s, want the requested 90m", got)
				}
				if strings.Contains(requestReady(cr).Message, "shortened") {
					t.Errorf("message %q says the validity was shortened", requestReady(cr).Message)
				}
			},
		},
		{
			name: "duration capped by the CA's expiry",
			ca: func(t *testing.T, now time.Time) (testCA, testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, 10*day)
				return ca, ca
			},
			request:    func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Validity shortened to the CA's expiry", "renew the CA soon"}},
			wantIssued: true,
			check: func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate) {
				if !leaf.NotAfter.Equal(fx.ca.NotAfter) {
					t.Errorf("notAfter %s, want the CA's %s", leaf.NotAfter, fx.ca.NotAfter)
				}
			},
		},

		// Requests that can never be signed.
		{
			name: "tampered CSR",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(tamperCSR(t, newCSRPEM(t, testkeys.New(t, "ECDSA-P256")))))
			},
			want: wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{
				"PQIssuer mesh cannot sign this request (BadCSRSignature)", "signature does not verify"}},
			wantFailed: true,
		},
		{
			name: "tampered ML-DSA CSR",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(tamperCSR(t, newCSRPEM(t, testkeys.New(t, "ML-DSA-44")))))
			},
			want:       wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"BadCSRSignature", "tampered or corrupted"}},
			wantFailed: true,
		},
		{
			name: "spec.request is not a CSR",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR([]byte("hello")))
			},
			want:       wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"(InvalidCSR)", "the CSR in spec.request", "not PEM"}},
			wantFailed: true,
		},
		{
			name: "weak P-224 key",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(newCSRPEM(t, testkeys.New(t, "ECDSA-P224"))))
			},
			want:       wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"(WeakKey)", "P-224"}},
			wantFailed: true,
		},
		{
			name:       "spec.isCA is refused",
			request:    func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t, withIsCA(true)) },
			want:       wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"(PolicyViolation)", "isCA: true"}},
			wantFailed: true,
		},
		{
			name: "CSR naming nobody",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(newCSRPEM(t, testkeys.New(t, "ECDSA-P256"), func(r *x509.CertificateRequest) {
					r.Subject, r.DNSNames = pkix.Name{}, nil
				})))
			},
			want:       wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"(PolicyViolation)", "names nobody"}},
			wantFailed: true,
		},
		{
			name: "CSR asking for CA:TRUE without spec.isCA gets a leaf: no CSR extension is copied",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(newCSRPEM(t, testkeys.New(t, "ECDSA-P256"), withCSRExtension(basicConstraintsCA(t)))))
			},
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, nil},
			wantIssued: true,
			check: func(t *testing.T, fx *crFixture, cr *cmapi.CertificateRequest, leaf *x509.Certificate) {
				if leaf.IsCA || !leaf.BasicConstraintsValid {
					t.Errorf("isCA %v (basic constraints valid %v), want a leaf", leaf.IsCA, leaf.BasicConstraintsValid)
				}
			},
		},
		{
			name: "unknown usage",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withUsages(cmapi.UsageDigitalSignature, "teleportation"))
			},
			want:       wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"(PolicyViolation)", `unknown usage "teleportation"`}},
			wantFailed: true,
		},
		{
			name: "DNS name outside the issuer's policy",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return pqIssuerWith(fx.ca, withPolicy(&v1alpha1.IssuerPolicy{DNSNames: []string{"*.{namespace}.svc.cluster.local"}}))
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			want: wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"PQIssuer mesh cannot sign this request (PolicyViolation)",
				`the DNS name "` + csrCommonName + `" is not allowed: it matches none of the issuer's policy.dnsNames ["*.{namespace}.svc.cluster.local"]`}},
			wantFailed: true,
		},
		{
			name: "DNS names within the issuer's policy",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return pqIssuerWith(fx.ca, withPolicy(&v1alpha1.IssuerPolicy{DNSNames: []string{"*.{namespace}.svc", "*.{namespace}.svc.cluster.local"}}))
			},
			request:    func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest { return approvedRequest(t) },
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, nil},
			wantIssued: true,
		},
		{
			name: "namespace not selected by the PQClusterIssuer",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return append(pqClusterIssuerWith(fx.ca, withPolicy(&v1alpha1.IssuerPolicy{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"mesh": "on"}}})),
					newNamespace(testNamespace, map[string]string{"mesh": "off"}))
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withPQIssuerRef(PQClusterIssuerKind, issuerName))
			},
			want: wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"(PolicyViolation)",
				"namespace " + testNamespace + " is not selected by PQClusterIssuer mesh's spec.policy.namespaceSelector (mesh=on)"}},
			wantFailed: true,
		},
		{
			name: "namespace selected by the PQClusterIssuer",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return append(pqClusterIssuerWith(fx.ca, withPolicy(&v1alpha1.IssuerPolicy{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"mesh": "on"}}})),
					newNamespace(testNamespace, map[string]string{"mesh": "on"}))
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withPQIssuerRef(PQClusterIssuerKind, issuerName))
			},
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, nil},
			wantIssued: true,
		},
		{
			name: "requester-bound SPIFFE ID in a request cert-manager made for a Certificate",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return pqIssuerWith(fx.ca, withPolicy(&v1alpha1.IssuerPolicy{SPIFFE: &v1alpha1.SPIFFEPolicy{RequesterBound: true}}))
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(newCSRPEM(t, testkeys.New(t, "ECDSA-P256"), withCSRURI(t, "spiffe://cluster.local/ns/demo/sa/api"))),
					withRequestUsername("system:serviceaccount:cert-manager:cert-manager"))
			},
			want: wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"(PolicyViolation)", "policy.spiffe.requesterBound",
				`the requester system:serviceaccount:cert-manager:cert-manager may have only "spiffe://cluster.local/ns/cert-manager/sa/cert-manager"`}},
			wantFailed: true,
		},
		{
			name: "requester-bound SPIFFE ID in a request the workload's service account made",
			cluster: func(t *testing.T, fx *crFixture) []client.Object {
				return pqIssuerWith(fx.ca, withPolicy(&v1alpha1.IssuerPolicy{SPIFFE: &v1alpha1.SPIFFEPolicy{RequesterBound: true}}))
			},
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withCSR(newCSRPEM(t, testkeys.New(t, "ECDSA-P256"), withCSRURI(t, "spiffe://cluster.local/ns/demo/sa/api"))),
					withRequestUsername("system:serviceaccount:demo:api"))
			},
			want:       wantCondition{"True", cmapi.CertificateRequestReasonIssued, nil},
			wantIssued: true,
		},
		{
			name: "zero duration",
			request: func(t *testing.T, fx *crFixture) *cmapi.CertificateRequest {
				return approvedRequest(t, withDuration(0))
			},
			want:       wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"(PolicyViolation)", "requested duration 0s is under the 1h0m0s minimum"}},
			wantFailed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			fx := &crFixture{now: clk.Now()}
			if tc.ca != nil {
				fx.ca, fx.root = tc.ca(t, fx.now)
			} else {
				fx.ca = newRootCA(t, signer.MLDSA65, fx.now, 365*day)
				fx.root = fx.ca
			}
			var objs []client.Object
			if tc.cluster != nil {
				objs = tc.cluster(t, fx)
			} else {
				objs = pqIssuerWith(fx.ca)
			}
			original := tc.request(t, fx)
			env := newTestEnv(t, clk, withObjects(append(objs, original)...))
			if !tc.skipIssuerReconcile {
				reconcileIssuers(t, env, objs)
			}
			if tc.change != nil {
				tc.change(t, env, fx)
			}
			key := client.ObjectKeyFromObject(original)

			var first *cmapi.CertificateRequest
			for i := range 2 {
				result, err := env.reconcileRequest(t, key)
				if err != nil {
					t.Fatalf("reconcile %d: %v", i+1, err)
				}
				cr := env.getRequest(t, key)
				if tc.untouched {
					if result != (ctrl.Result{}) {
						t.Errorf("reconcile %d: result %+v, want none", i+1, result)
					}
					if !equality.Semantic.DeepEqual(cr.Status, original.Status) {
						t.Errorf("reconcile %d changed the status of a request that is not ours to touch: %+v", i+1, cr.Status)
					}
					env.expectEvents(t)
					continue
				}
				wantResult := ctrl.Result{RequeueAfter: tc.wantRequeue}
				if result != wantResult {
					t.Errorf("reconcile %d: result %+v, want %+v", i+1, result, wantResult)
				}
				checkRequestReady(t, cr, tc.want)
				if i == 0 {
					eventType := corev1.EventTypeWarning
					if tc.want.Status == "True" {
						eventType = corev1.EventTypeNormal
					}
					env.expectEvents(t, wantEvent{eventType, tc.want.Reason, tc.want.Contains})
					first = cr
				} else {
					// Nothing changed, and an issued request is never signed again.
					env.expectEvents(t)
					if !equality.Semantic.DeepEqual(cr.Status, first.Status) {
						t.Errorf("the second reconcile changed the status:\nfirst:  %+v\nsecond: %+v", first.Status, cr.Status)
					}
				}

				switch {
				case tc.wantFailed:
					if cr.Status.FailureTime == nil || !cr.Status.FailureTime.Time.Equal(env.Clock.Now().Truncate(time.Second)) {
						t.Errorf("failureTime %v, want the fake clock's %s", cr.Status.FailureTime, env.Clock.Now())
					}
				case cr.Status.FailureTime != nil:
					t.Errorf("failureTime %v set on a request that has not failed", cr.Status.FailureTime)
				}
				if !tc.wantIssued {
					if len(cr.Status.Certificate) != 0 || len(cr.Status.CA) != 0 {
						t.Errorf("status.certificate set on a request that was not issued")
					}
					continue
				}
				leaf := verifyIssued(t, cr, env.Clock.Now())
				if !bytes.Equal(cr.Status.CA, fx.root.TrustAnchorPEM()) {
					t.Errorf("status.ca is not the CA's trust anchor")
				}
				if tc.check != nil && i == 0 {
					tc.check(t, fx, cr, leaf)
				}
			}

			// Metrics: one signature or one failure, whatever the number of reconciles.
			if tc.wantIssued {
				kind, _ := issuerKindOf(original.Spec.IssuerRef)
				labels := map[string]string{"issuer_kind": kind.Name, "algorithm": string(fx.ca.Algorithm())}
				if v, _ := metricValue(t, env.Registry, signedMetric, labels); v != 1 {
					t.Errorf("%s%v = %v, want 1", signedMetric, labels, v)
				}
			} else if n := seriesCount(t, env.Registry, signedMetric); n != 0 {
				t.Errorf("%d %s series, want none", n, signedMetric)
			}
			if tc.wantFailed {
				if n := seriesCount(t, env.Registry, failedMetric); n != 1 {
					t.Fatalf("%d %s series, want 1", n, failedMetric)
				}
			} else if n := seriesCount(t, env.Registry, failedMetric); n != 0 {
				t.Errorf("%d %s series, want none", n, failedMetric)
			}
		})
	}
}

// TestCertificateRequestFailedMetric checks the labels of the failed counter.
func TestCertificateRequestFailedMetric(t *testing.T) {
	tests := []struct {
		name    string
		cluster func(ca testCA) []client.Object
		request *cmapi.CertificateRequest
		labels  map[string]string
	}{
		{
			name:    "denied with a ready issuer",
			cluster: func(ca testCA) []client.Object { return pqIssuerWith(ca) },
			request: newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName), withDenied("p", "no")),
			labels:  map[string]string{"issuer_kind": "PQIssuer", "algorithm": "ML-DSA-65", "reason": cmapi.CertificateRequestReasonDenied},
		},
		{
			name:    "denied without an issuer",
			cluster: func(testCA) []client.Object { return nil },
			request: newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQClusterIssuerKind, issuerName), withDenied("p", "no")),
			labels:  map[string]string{"issuer_kind": "PQClusterIssuer", "algorithm": "", "reason": cmapi.CertificateRequestReasonDenied},
		},
		{
			name:    "failed",
			cluster: func(ca testCA) []client.Object { return pqClusterIssuerWith(ca) },
			request: newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQClusterIssuerKind, issuerName), withApproved(), withCSR([]byte("x"))),
			labels:  map[string]string{"issuer_kind": "PQClusterIssuer", "algorithm": "ML-DSA-65", "reason": cmapi.CertificateRequestReasonFailed},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			objs := tc.cluster(newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour))
			env := newTestEnv(t, clk, withObjects(append(objs, tc.request)...))
			reconcileIssuers(t, env, objs)
			for range 2 {
				if _, err := env.reconcileRequest(t, crKey); err != nil {
					t.Fatal(err)
				}
			}
			if v, ok := metricValue(t, env.Registry, failedMetric, tc.labels); !ok || v != 1 {
				t.Errorf("%s%v = %v (present %v), want 1", failedMetric, tc.labels, v, ok)
			}
		})
	}
}

// TestCertificateRequestLifecycle: a request waits for its issuer, is issued as soon as the issuer
// is ready, and each change of its Ready condition emits exactly one event.
func TestCertificateRequestLifecycle(t *testing.T) {
	for _, kind := range issuerKinds {
		t.Run(kind.Name, func(t *testing.T) {
			clk := newTestClock(t)
			ctx := context.Background()
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			ikey := testIssuerKey(kind)
			env := newTestEnv(t, clk, withObjects(approvedRequest(t, withPQIssuerRef(kind, issuerName))))
			var issued []byte

			steps := []struct {
				name   string
				change func(t *testing.T)
				want   wantCondition
				// wantEvent is false when the condition must not change.
				wantEvent bool
			}{
				{
					name:      "issuer missing",
					want:      wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"does not exist"}},
					wantEvent: true,
				},
				{
					name:   "still missing a minute later",
					change: func(t *testing.T) { clk.Step(time.Minute) },
					want:   wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"does not exist"}},
				},
				{
					name: "issuer created without its Secret",
					change: func(t *testing.T) {
						if err := env.Client.Create(ctx, newIssuer(kind, ikey)); err != nil {
							t.Fatal(err)
						}
						if _, err := env.reconcileIssuer(t, kind, ikey); err != nil {
							t.Fatal(err)
						}
						env.drainEvents()
					},
					want:      wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"to be ready", "not found"}},
					wantEvent: true,
				},
				{
					name: "Secret created and the issuer ready",
					change: func(t *testing.T) {
						if err := env.Client.Create(ctx, newSecret(issuerSecretNamespace(kind, testNamespace), caSecret, withCAData(ca))); err != nil {
							t.Fatal(err)
						}
						if _, err := env.reconcileIssuer(t, kind, ikey); err != nil {
							t.Fatal(err)
						}
						env.drainEvents()
					},
					want:      wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Certificate issued by " + kind.Name}},
					wantEvent: true,
				},
				{
					name: "reconciled again after the Secret was deleted",
					change: func(t *testing.T) {
						if err := env.Client.Delete(ctx, newSecret(issuerSecretNamespace(kind, testNamespace), caSecret)); err != nil {
							t.Fatal(err)
						}
					},
					want: wantCondition{"True", cmapi.CertificateRequestReasonIssued, nil},
				},
			}
			for _, step := range steps {
				if step.change != nil {
					step.change(t)
				}
				if _, err := env.reconcileRequest(t, crKey); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				cr := env.getRequest(t, crKey)
				checkRequestReady(t, cr, step.want)
				eventType := corev1.EventTypeWarning
				if step.want.Status == "True" {
					eventType = corev1.EventTypeNormal
				}
				if step.wantEvent {
					env.expectEvents(t, wantEvent{eventType, step.want.Reason, step.want.Contains})
				} else {
					env.expectEvents(t)
				}
				if step.want.Status == "True" {
					if issued == nil {
						issued = cr.Status.Certificate
						verifyIssued(t, cr, clk.Now())
					} else if !bytes.Equal(issued, cr.Status.Certificate) {
						t.Errorf("%s: the certificate changed after it was issued", step.name)
					}
				}
				if t.Failed() {
					t.Fatalf("step %q failed", step.name)
				}
			}
		})
	}
}

// TestCertificateRequestWriteConflict drives CertificateRequestReconciler.write through a status
// patch that conflicts with another writer, the way the manager's client makes it happen: the
// reconciler reads the request from an informer cache that still holds the version from before the
// other writer (staleCache), while the API server has the new one. After a Conflict, the request
// must be read again from the API server (APIReader): read from the cache, the stale version
// conflicts again until the retries run out, and a request another writer finished would be signed
// again on the next reconcile.
func TestCertificateRequestWriteConflict(t *testing.T) {
	const otherCert = "-----BEGIN CERTIFICATE-----\nb3RoZXI=\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name string
		// otherWriter changes the request on the API server before pq-issuer's first status patch
		// reaches it (c is not intercepted). Nil: the patch is refused with a Conflict regardless.
		otherWriter func(t *testing.T, c client.Client, cr *cmapi.CertificateRequest)
		// conflicts is how many status patches fail with a Conflict before the API server
		// accepts them; -1: all of them.
		conflicts int
		// wantPatches counts status writes: each carries the one certificate signed, so more than
		// the conflicts plus one would be a second write of it.
		wantPatches int
		// wantAPIReads counts the reads from the API server, one after each Conflict.
		wantAPIReads int
		wantErr      bool
		// want is the Ready condition; zero: there must be none.
		want      wantCondition
		wantEvent bool
		// wantCertificate is otherCert when the other writer's certificate must survive.
		wantCertificate string
		wantAnnotation  bool
	}{
		{
			name: "metadata changed by another writer: retried on the latest version and issued once",
			otherWriter: func(t *testing.T, c client.Client, cr *cmapi.CertificateRequest) {
				cr.Annotations = map[string]string{"other": "writer"}
				if err := c.Update(context.Background(), cr); err != nil {
					t.Fatal(err)
				}
			},
			conflicts:      1,
			wantPatches:    2,
			wantAPIReads:   1,
			want:           wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Certificate issued"}},
			wantEvent:      true,
			wantAnnotation: true,
		},
		{
			name: "status changed by another writer to Pending: overwritten with the certificate",
			otherWriter: func(t *testing.T, c client.Client, cr *cmapi.CertificateRequest) {
				withCondition(cmapi.CertificateRequestConditionReady, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonPending, "someone else waits")(cr)
				if err := c.Status().Update(context.Background(), cr); err != nil {
					t.Fatal(err)
				}
			},
			conflicts:    1,
			wantPatches:  2,
			wantAPIReads: 1,
			want:         wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Certificate issued"}},
			wantEvent:    true,
		},
		{
			name:         "Conflict from the API server twice, then accepted",
			conflicts:    2,
			wantPatches:  3,
			wantAPIReads: 2,
			want:         wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"Certificate issued"}},
			wantEvent:    true,
		},
		{
			name: "already issued by another writer, the cache still pending: its certificate is kept, none written",
			otherWriter: func(t *testing.T, c client.Client, cr *cmapi.CertificateRequest) {
				withIssuedStatus([]byte(otherCert))(cr)
				if err := c.Status().Update(context.Background(), cr); err != nil {
					t.Fatal(err)
				}
			},
			conflicts:       1,
			wantPatches:     1,
			wantAPIReads:    1,
			want:            wantCondition{"True", cmapi.CertificateRequestReasonIssued, []string{"issued elsewhere"}},
			wantCertificate: otherCert,
		},
		{
			name: "failed by another writer, the cache still pending: the failure is kept",
			otherWriter: func(t *testing.T, c client.Client, cr *cmapi.CertificateRequest) {
				withCondition(cmapi.CertificateRequestConditionReady, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonFailed, "failed elsewhere")(cr)
				if err := c.Status().Update(context.Background(), cr); err != nil {
					t.Fatal(err)
				}
			},
			conflicts:    1,
			wantPatches:  1,
			wantAPIReads: 1,
			want:         wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"failed elsewhere"}},
		},
		{
			name: "InvalidRequest set by another signer, the cache without it: left alone",
			otherWriter: func(t *testing.T, c client.Client, cr *cmapi.CertificateRequest) {
				withCondition(cmapi.CertificateRequestConditionInvalidRequest, cmmeta.ConditionTrue, cmapi.CertificateRequestReasonFailed, "refused elsewhere")(cr)
				if err := c.Status().Update(context.Background(), cr); err != nil {
					t.Fatal(err)
				}
			},
			conflicts:    1,
			wantPatches:  1,
			wantAPIReads: 1,
		},
		{
			name:         "Conflict every time: the error is returned for a retry, no event",
			conflicts:    -1,
			wantPatches:  5, // retry.DefaultRetry
			wantAPIReads: 4,
			wantErr:      true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			objs := pqIssuerWith(ca)
			patches, conflicts := 0, 0
			env := newTestEnv(t, clk,
				withObjects(append(objs, approvedRequest(t))...),
				withInterceptor(interceptor.Funcs{
					SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
						cr, ok := obj.(*cmapi.CertificateRequest)
						if !ok {
							return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
						}
						patches++
						if tc.conflicts >= 0 && patches > tc.conflicts {
							return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
						}
						if tc.otherWriter == nil {
							return apierrors.NewConflict(cmapi.SchemeGroupVersion.WithResource("certificaterequests").GroupResource(), cr.Name, errors.New("the object has been modified"))
						}
						latest := &cmapi.CertificateRequest{}
						if err := c.Get(ctx, client.ObjectKeyFromObject(cr), latest); err != nil {
							return err
						}
						tc.otherWriter(t, c, latest)
						// pq-issuer's patch carries the resourceVersion it read: the fake API
						// server refuses it as the real one would.
						err := c.SubResource(sub).Patch(ctx, obj, patch, opts...)
						if !apierrors.IsConflict(err) {
							t.Errorf("the stale patch was not refused with a Conflict: %v", err)
						}
						conflicts++
						return err
					},
				}))
			reconcileIssuers(t, env, objs)
			r := env.requestReconciler()
			r.Client = freezeRequests(t, env.Client, crKey)
			api := &countingReader{Reader: decodingReader{env.Client}}
			r.APIReader = api

			_, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: crKey})
			if tc.wantErr {
				if !apierrors.IsConflict(err) {
					t.Fatalf("got error %v, want a Conflict", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if patches != tc.wantPatches {
				t.Errorf("%d status patches, want %d", patches, tc.wantPatches)
			}
			if api.gets != tc.wantAPIReads {
				t.Errorf("%d reads from the API server, want %d", api.gets, tc.wantAPIReads)
			}
			if tc.otherWriter != nil && conflicts != 1 {
				t.Errorf("%d conflicts, want 1", conflicts)
			}
			cr := env.getRequest(t, crKey)
			if tc.wantErr {
				if len(cr.Status.Conditions) != 1 || len(cr.Status.Certificate) != 0 {
					t.Errorf("status written despite the conflicts: %+v", cr.Status)
				}
				env.expectEvents(t)
				return
			}
			if tc.want.Status == "" {
				if c := requestReady(cr); c != nil || len(cr.Status.Certificate) != 0 || cr.Status.FailureTime != nil {
					t.Errorf("a request another signer refused was written to: Ready %+v, failureTime %v, %d certificate bytes",
						c, cr.Status.FailureTime, len(cr.Status.Certificate))
				}
			} else {
				checkRequestReady(t, cr, tc.want)
			}
			switch {
			case tc.wantCertificate != "":
				if string(cr.Status.Certificate) != tc.wantCertificate {
					t.Errorf("status.certificate is %q, want the other writer's", cr.Status.Certificate)
				}
			case tc.want.Reason == cmapi.CertificateRequestReasonIssued:
				verifyIssued(t, cr, clk.Now())
			}
			if tc.wantAnnotation && cr.Annotations["other"] != "writer" {
				t.Errorf("the other writer's annotation was lost: %v", cr.Annotations)
			}
			if tc.wantEvent {
				env.expectEvents(t, wantEvent{corev1.EventTypeNormal, cmapi.CertificateRequestReasonIssued, tc.want.Contains})
			} else {
				env.expectEvents(t)
			}
			// A signature whose result was dropped for another writer's is not counted as signed.
			wantSigned := 0
			if tc.wantEvent {
				wantSigned = 1
			}
			if n := seriesCount(t, env.Registry, signedMetric); n != wantSigned {
				t.Errorf("%d %s series, want %d", n, signedMetric, wantSigned)
			}

			// Once the cache has caught up, the finished request is left alone.
			before := patches
			if _, err := env.reconcileRequest(t, crKey); err != nil {
				t.Fatal(err)
			}
			if patches != before {
				t.Errorf("a finished request was patched again")
			}
			env.expectEvents(t)
		})
	}
}

// staleCache is an informer cache lagging behind the API server, read as the manager's client
// reads it: Get of a frozen CertificateRequest returns the version the cache held when it was
// frozen, whatever was written since; other reads and all writes go to the API server.
type staleCache struct {
	client.Client
	frozen map[types.NamespacedName]*cmapi.CertificateRequest
}

// freezeRequests returns a staleCache holding the current versions of the requests keys.
func freezeRequests(t testing.TB, c client.Client, keys ...types.NamespacedName) *staleCache {
	t.Helper()
	s := &staleCache{Client: c, frozen: map[types.NamespacedName]*cmapi.CertificateRequest{}}
	for _, key := range keys {
		cr := &cmapi.CertificateRequest{}
		if err := c.Get(context.Background(), key, cr); err != nil {
			t.Fatal(err)
		}
		s.frozen[key] = cr
	}
	return s
}

func (s *staleCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if cr, ok := obj.(*cmapi.CertificateRequest); ok {
		if frozen, ok := s.frozen[key]; ok {
			frozen.DeepCopyInto(cr)
			return nil
		}
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

// TestCertificateRequestGoneOrUnreadable covers a request deleted while it is signed and API
// errors that must be retried.
func TestCertificateRequestGoneOrUnreadable(t *testing.T) {
	errUnavailable := apierrors.NewServiceUnavailable("etcd is down")
	tests := []struct {
		name  string
		funcs func(t *testing.T) interceptor.Funcs
		// wantErr is the error Reconcile must return; nil: none.
		wantErr error
		// want is the Ready condition left on the request; nil: none.
		want      *wantCondition
		wantEvent bool
	}{
		{
			name:  "request does not exist",
			funcs: func(t *testing.T) interceptor.Funcs { return interceptor.Funcs{} },
		},
		{
			name: "request deleted before its status is written",
			funcs: func(t *testing.T) interceptor.Funcs {
				return interceptor.Funcs{
					SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
						if err := c.Delete(ctx, obj); err != nil {
							t.Fatal(err)
						}
						return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
					},
				}
			},
		},
		{
			name:    "request cannot be read",
			funcs:   func(*testing.T) interceptor.Funcs { return failGet[*cmapi.CertificateRequest](errUnavailable) },
			wantErr: errUnavailable,
		},
		{
			name:      "issuer cannot be read",
			funcs:     func(*testing.T) interceptor.Funcs { return failGet[*v1alpha1.PQIssuer](errUnavailable) },
			wantErr:   errUnavailable,
			want:      &wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"Signing with PQIssuer mesh failed and will be retried", "etcd is down"}},
			wantEvent: true,
		},
		{
			name:      "CA Secret cannot be read",
			funcs:     func(*testing.T) interceptor.Funcs { return failGet[*corev1.Secret](errUnavailable) },
			wantErr:   errUnavailable,
			want:      &wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"failed and will be retried", "reading Secret demo/ca"}},
			wantEvent: true,
		},
		{
			name: "status cannot be written",
			funcs: func(t *testing.T) interceptor.Funcs {
				return interceptor.Funcs{
					SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
						return errUnavailable
					},
				}
			},
			wantErr: errUnavailable,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			objs := []client.Object{newPQIssuer(testNamespace, issuerName,
				withIssuerReady("True", v1alpha1.ReasonVerified, "Signing", 1)), newSecret(testNamespace, caSecret, withCAData(ca))}
			if tc.name != "request does not exist" {
				objs = append(objs, approvedRequest(t, withCreated(clk.Now())))
			}
			env := newTestEnv(t, clk, withObjects(objs...), withInterceptor(tc.funcs(t)))

			_, err := env.reconcileRequest(t, crKey)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("got error %v, want %v", err, tc.wantErr)
			}
			if tc.want != nil {
				cr := &cmapi.CertificateRequest{}
				if err := env.Client.(interface{ Unwrap() client.WithWatch }).Unwrap().Get(context.Background(), crKey, cr); err != nil {
					t.Fatal(err)
				}
				checkRequestReady(t, cr, *tc.want)
				if cr.Status.FailureTime != nil {
					t.Error("a transient error set failureTime")
				}
			}
			if tc.wantEvent {
				env.expectEvents(t, wantEvent{corev1.EventTypeWarning, tc.want.Reason, tc.want.Contains})
			} else {
				env.expectEvents(t)
			}
		})
	}
}

// TestCertificateRequestRetryBound: a transient error is retried with backoff, the request
// Pending, until MaxRetryDuration after the request's creation; the first attempt after that fails
// the request with the last error and one event, and it is not touched again.
func TestCertificateRequestRetryBound(t *testing.T) {
	errDown := apierrors.NewServiceUnavailable("etcd is down")
	errStillDown := apierrors.NewServiceUnavailable("etcd is still down")
	isNamespace := func(obj client.Object) bool {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		return ok && m.Kind == "Namespace"
	}
	tests := []struct {
		name    string
		cluster func(ca testCA) []client.Object
		kind    IssuerKind
		// fails reports whether a Get of obj is the read the API server fails.
		fails func(obj client.Object) bool
		// wantRead names the failing read in the messages.
		wantRead string
	}{
		{
			name: "issuer cannot be read",
			cluster: func(ca testCA) []client.Object {
				return []client.Object{newPQIssuer(testNamespace, issuerName, withIssuerReady("True", v1alpha1.ReasonVerified, "Signing", 1)),
					newSecret(testNamespace, caSecret, withCAData(ca))}
			},
			kind:  PQIssuerKind,
			fails: func(obj client.Object) bool { _, ok := obj.(*v1alpha1.PQIssuer); return ok },
		},
		{
			name: "CA Secret cannot be read",
			cluster: func(ca testCA) []client.Object {
				return []client.Object{newPQIssuer(testNamespace, issuerName, withIssuerReady("True", v1alpha1.ReasonVerified, "Signing", 1)),
					newSecret(testNamespace, caSecret, withCAData(ca))}
			},
			kind:     PQIssuerKind,
			fails:    func(obj client.Object) bool { _, ok := obj.(*corev1.Secret); return ok },
			wantRead: "reading Secret demo/ca",
		},
		{
			name: "request's namespace cannot be read for the namespaceSelector",
			cluster: func(ca testCA) []client.Object {
				return []client.Object{
					newPQClusterIssuer(issuerName, withIssuerReady("True", v1alpha1.ReasonVerified, "Signing", 1),
						withPolicy(&v1alpha1.IssuerPolicy{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"mesh": "on"}}})),
					newSecret(clusterResourceNamespace, caSecret, withCAData(ca)),
					newNamespace(testNamespace, map[string]string{"mesh": "on"}),
				}
			},
			kind:     PQClusterIssuerKind,
			fails:    isNamespace,
			wantRead: "reading namespace demo",
		},
	}
	steps := []struct {
		name string
		// age is the request's age at this attempt, in MaxRetryDurations plus extra.
		age   time.Duration
		err   error // what the failing read returns; nil: it succeeds again
		want  wantCondition
		retry bool // the error is returned for a retry with backoff
		// wantEvent is false when the condition must not change.
		wantEvent bool
	}{
		{
			name: "first attempt", age: 0, err: errDown, retry: true, wantEvent: true,
			want: wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"failed and will be retried", "etcd is down"}},
		},
		{
			name: "at the bound: still retried", age: testMaxRetryDuration, err: errDown, retry: true,
			want: wantCondition{"False", cmapi.CertificateRequestReasonPending, []string{"failed and will be retried", "etcd is down"}},
		},
		{
			name: "past the bound: Failed with the last error", age: testMaxRetryDuration + time.Second, err: errStillDown, wantEvent: true,
			want: wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{
				"failed 30m1s after the request was created, past the controller's --max-retry-duration 30m0s, so it is not retried",
				"the last error:", "etcd is still down", "Fix the cause"}},
		},
		{
			name: "the API server is back: the failed request is left alone", age: 2 * testMaxRetryDuration,
			want: wantCondition{"False", cmapi.CertificateRequestReasonFailed, []string{"etcd is still down"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			created := clk.Now().Truncate(time.Second)
			ca := newRootCA(t, signer.MLDSA65, created, 365*24*time.Hour)
			var current error
			env := newTestEnv(t, clk,
				withObjects(append(tc.cluster(ca), approvedRequest(t, withPQIssuerRef(tc.kind, issuerName), withCreated(created)))...),
				withInterceptor(interceptor.Funcs{
					Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
						if current != nil && tc.fails(obj) {
							return current
						}
						return c.Get(ctx, key, obj, opts...)
					},
				}))
			var failedAt time.Time
			for _, step := range steps {
				current = step.err
				clk.SetTime(created.Add(step.age))
				_, err := env.reconcileRequest(t, crKey)
				switch {
				case step.retry && !errors.Is(err, step.err):
					t.Fatalf("%s: got error %v, want %v for a retry with backoff", step.name, err, step.err)
				case !step.retry && err != nil:
					t.Fatalf("%s: got error %v, want none", step.name, err)
				}
				cr := &cmapi.CertificateRequest{}
				if err := env.Client.(interface{ Unwrap() client.WithWatch }).Unwrap().Get(context.Background(), crKey, cr); err != nil {
					t.Fatal(err)
				}
				want := step.want
				if tc.wantRead != "" {
					want.Contains = append(slices.Clone(want.Contains), tc.wantRead)
				}
				checkRequestReady(t, cr, want)
				failed := step.want.Reason == cmapi.CertificateRequestReasonFailed
				switch {
				case failed && failedAt.IsZero():
					failedAt = clk.Now()
					fallthrough
				case failed:
					if cr.Status.FailureTime == nil || !cr.Status.FailureTime.Time.Equal(failedAt) {
						t.Errorf("%s: failureTime %v, want %s, when the bound was found passed", step.name, cr.Status.FailureTime, failedAt)
					}
					if strings.Contains(requestReady(cr).Message, "etcd is down") {
						t.Errorf("%s: message %q names an earlier error, want the last", step.name, requestReady(cr).Message)
					}
				case cr.Status.FailureTime != nil:
					t.Errorf("%s: failureTime set while the error is retried", step.name)
				}
				if step.wantEvent {
					env.expectEvents(t, wantEvent{corev1.EventTypeWarning, step.want.Reason, want.Contains})
				} else {
					env.expectEvents(t)
				}
				wantFailedSeries := 0
				if failed {
					wantFailedSeries = 1
				}
				if n := seriesCount(t, env.Registry, failedMetric); n != wantFailedSeries {
					t.Errorf("%s: %d %s series, want %d", step.name, n, failedMetric, wantFailedSeries)
				}
				if len(cr.Status.Certificate) != 0 {
					t.Errorf("%s: a certificate was issued", step.name)
				}
				if t.Failed() {
					t.Fatalf("step %q failed", step.name)
				}
			}
			if v, _ := metricValue(t, env.Registry, failedMetric, map[string]string{
				"issuer_kind": tc.kind.Name, "algorithm": "", "reason": cmapi.CertificateRequestReasonFailed}); v != 1 {
				t.Errorf("%s = %v, want 1 failure counted once", failedMetric, v)
			}
		})
	}
}

func TestRequestsForIssuer(t *testing.T) {
	pending := func(ns, name string, kind IssuerKind, issuer string) *cmapi.CertificateRequest {
		return newCertificateRequest(ns, name, withPQIssuerRef(kind, issuer), withApproved())
	}
	objs := []client.Object{
		pending(testNamespace, "a1", PQIssuerKind, "a"),
		pending(testNamespace, "a2", PQIssuerKind, "a"),
		newCertificateRequest(testNamespace, "a-issued", withPQIssuerRef(PQIssuerKind, "a"), withApproved(), withIssuedStatus([]byte("x"))),
		newCertificateRequest(testNamespace, "a-denied", withPQIssuerRef(PQIssuerKind, "a"),
			withDenied("p", "no"), withCondition(cmapi.CertificateRequestConditionReady, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonDenied, "denied")),
		pending(testNamespace, "b1", PQIssuerKind, "b"),
		pending("team-b", "a-elsewhere", PQIssuerKind, "a"),
		pending(testNamespace, "ca1", PQClusterIssuerKind, "a"),
		pending("team-b", "ca2", PQClusterIssuerKind, "a"),
		newCertificateRequest("team-b", "cm", withIssuerRef("cert-manager.io", "Issuer", "a"), withApproved()),
	}
	tests := []struct {
		name   string
		kind   IssuerKind
		issuer client.Object
		want   []string
	}{
		{"PQIssuer: unfinished requests of its namespace", PQIssuerKind, newPQIssuer(testNamespace, "a"), []string{"demo/a1", "demo/a2"}},
		{"PQIssuer of another namespace", PQIssuerKind, newPQIssuer("team-b", "a"), []string{"team-b/a-elsewhere"}},
		{"PQIssuer b", PQIssuerKind, newPQIssuer(testNamespace, "b"), []string{"demo/b1"}},
		{"PQIssuer nobody names", PQIssuerKind, newPQIssuer(testNamespace, "c"), nil},
		{"PQClusterIssuer: unfinished requests of every namespace", PQClusterIssuerKind, newPQClusterIssuer("a"), []string{"demo/ca1", "team-b/ca2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, newTestClock(t), withObjects(objs...))
			var got []string
			for _, r := range env.requestReconciler().requestsForIssuer(tc.kind)(context.Background(), tc.issuer) {
				got = append(got, r.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsFinished(t *testing.T) {
	ready := func(status cmmeta.ConditionStatus, reason string) requestOption {
		return withCondition(cmapi.CertificateRequestConditionReady, status, reason, "m")
	}
	tests := []struct {
		name string
		cr   *cmapi.CertificateRequest
		want bool
	}{
		{"new", newCertificateRequest(testNamespace, crName), false},
		{"approved", newCertificateRequest(testNamespace, crName, withApproved()), false},
		{"pending", newCertificateRequest(testNamespace, crName, ready(cmmeta.ConditionFalse, cmapi.CertificateRequestReasonPending)), false},
		{"issued", newCertificateRequest(testNamespace, crName, ready(cmmeta.ConditionTrue, cmapi.CertificateRequestReasonIssued)), true},
		{"failed", newCertificateRequest(testNamespace, crName, ready(cmmeta.ConditionFalse, cmapi.CertificateRequestReasonFailed)), true},
		{"denied", newCertificateRequest(testNamespace, crName, ready(cmmeta.ConditionFalse, cmapi.CertificateRequestReasonDenied)), true},
		{"certificate without a condition", newCertificateRequest(testNamespace, crName, func(cr *cmapi.CertificateRequest) { cr.Status.Certificate = []byte("x") }), true},
		{"invalid request", newCertificateRequest(testNamespace, crName, withApproved(),
			withCondition(cmapi.CertificateRequestConditionInvalidRequest, cmmeta.ConditionTrue, "InvalidCSR", "m")), true},
		{"InvalidRequest False", newCertificateRequest(testNamespace, crName, withApproved(),
			withCondition(cmapi.CertificateRequestConditionInvalidRequest, cmmeta.ConditionFalse, "Valid", "m")), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isFinished(tc.cr); got != tc.want {
				t.Errorf("isFinished = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIssuerKindOf(t *testing.T) {
	tests := []struct {
		name     string
		ref      cmmeta.IssuerReference
		wantOK   bool
		wantKind string
	}{
		{"PQIssuer", cmmeta.IssuerReference{Group: "pq-issuer.dev", Kind: "PQIssuer", Name: "x"}, true, "PQIssuer"},
		{"PQClusterIssuer", cmmeta.IssuerReference{Group: "pq-issuer.dev", Kind: "PQClusterIssuer", Name: "x"}, true, "PQClusterIssuer"},
		{"kind is case-sensitive", cmmeta.IssuerReference{Group: "pq-issuer.dev", Kind: "pqissuer", Name: "x"}, false, ""},
		{"empty kind", cmmeta.IssuerReference{Group: "pq-issuer.dev", Name: "x"}, false, ""},
		{"cert-manager Issuer", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "Issuer", Name: "x"}, false, ""},
		{"empty group", cmmeta.IssuerReference{Kind: "PQIssuer", Name: "x"}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, ok := issuerKindOf(tc.ref)
			if ok != tc.wantOK || kind.Name != tc.wantKind {
				t.Errorf("issuerKindOf = %q, %v; want %q, %v", kind.Name, ok, tc.wantKind, tc.wantOK)
			}
		})
	}
}

func TestSetupWithManagerNeedsClusterResourceNamespace(t *testing.T) {
	err := SetupWithManager(context.Background(), nil, Options{})
	if err == nil || !strings.Contains(err.Error(), "cluster resource namespace") {
		t.Errorf("got %v, want an error about the cluster resource namespace", err)
	}
}

func TestNewScheme(t *testing.T) {
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range []client.Object{&corev1.Secret{}, &cmapi.CertificateRequest{}, &v1alpha1.PQIssuer{}, &v1alpha1.PQClusterIssuer{}} {
		if gvks, _, err := scheme.ObjectKinds(obj); err != nil || len(gvks) == 0 {
			t.Errorf("the scheme does not know %T: %v", obj, err)
		}
	}
}

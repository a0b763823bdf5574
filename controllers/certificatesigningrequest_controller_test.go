package controllers

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/internal/testkeys"
	"github.com/pq-issuer/pq-issuer/signer"
)

const (
	signingRequestName = "api-client"
	// requesterSA is the default requester: the service account api of namespace demo.
	requesterSA = "system:serviceaccount:demo:api"

	csrSignedMetric = "pq_issuer_certificatesigningrequests_signed_total"
	csrFailedMetric = "pq_issuer_certificatesigningrequests_failed_total"
)

var signingRequestKey = types.NamespacedName{Name: signingRequestName}

type signingRequestOption func(*certificatesv1.CertificateSigningRequest)

// newSigningRequest is an approved CertificateSigningRequest for signerName with csrPEM, made by the
// service account demo/api (as the API server records it), asking for 24h and the usages of a TLS
// client and server.
func newSigningRequest(signerName string, csrPEM []byte, opts ...signingRequestOption) *certificatesv1.CertificateSigningRequest {
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: signingRequestName},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: csrPEM, SignerName: signerName, ExpirationSeconds: ptr.To[int32](86400),
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth},
		},
		Status: certificatesv1.CertificateSigningRequestStatus{Conditions: []certificatesv1.CertificateSigningRequestCondition{{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "ApprovedByTest", Message: "approved",
		}}},
	}
	withRequester(requesterSA)(csr)
	for _, o := range opts {
		o(csr)
	}
	return csr
}

// withRequester sets the user the API server records as the request's creator, with the groups
// it would record for such a user.
func withRequester(username string) signingRequestOption {
	return func(csr *certificatesv1.CertificateSigningRequest) {
		csr.Spec.Username, csr.Spec.UID = username, "uid-of-"+username
		csr.Spec.Groups = []string{"system:authenticated"}
		csr.Spec.Extra = nil
		if ns, _, ok := signer.ServiceAccountOf(username); ok {
			csr.Spec.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
			csr.Spec.Extra = map[string]certificatesv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"api-0"}}
		}
	}
}

func withExpirationSeconds(s *int32) signingRequestOption {
	return func(csr *certificatesv1.CertificateSigningRequest) { csr.Spec.ExpirationSeconds = s }
}

func withSigningUsages(usages ...certificatesv1.KeyUsage) signingRequestOption {
	return func(csr *certificatesv1.CertificateSigningRequest) { csr.Spec.Usages = usages }
}

func withoutApproval() signingRequestOption {
	return func(csr *certificatesv1.CertificateSigningRequest) { csr.Status.Conditions = nil }
}

// withSigningCondition adds a True condition, as an approver (Denied) or another signer (Failed) sets it.
func withSigningCondition(typ certificatesv1.RequestConditionType, reason string) signingRequestOption {
	return func(csr *certificatesv1.CertificateSigningRequest) {
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: "set by another writer", LastTransitionTime: metav1.Now(),
		})
	}
}

func withSigningCertificate(certPEM []byte) signingRequestOption {
	return func(csr *certificatesv1.CertificateSigningRequest) { csr.Status.Certificate = certPEM }
}

func withSigningCreated(at time.Time) signingRequestOption {
	return func(csr *certificatesv1.CertificateSigningRequest) {
		csr.CreationTimestamp = metav1.NewTime(at.Truncate(time.Second))
	}
}

// referenceRBAC answers the SubjectAccessReviews the reconciler makes as RBAC would for a requester
// bound to a Role in namespace demo with verb reference on pq-issuer.dev signers, resourceNames
// granted (which RBAC matches literally, "*" included), and records them.
type referenceRBAC struct {
	granted []string
	err     error
	reviews []authorizationv1.SubjectAccessReviewSpec
}

func (r *referenceRBAC) create(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
	sar, ok := obj.(*authorizationv1.SubjectAccessReview)
	if !ok {
		return c.Create(ctx, obj, opts...)
	}
	r.reviews = append(r.reviews, sar.Spec)
	if r.err != nil {
		return r.err
	}
	a := sar.Spec.ResourceAttributes
	sar.Status.Allowed = a != nil && a.Group == "pq-issuer.dev" && a.Resource == "signers" && a.Verb == "reference" &&
		a.Namespace == testNamespace && slices.Contains(r.granted, a.Name)
	return nil
}

// pqIssuer is the PQIssuer demo/mesh with its CA, for a table's cluster.
func pqIssuer(ca testCA) []client.Object { return pqIssuerWith(ca) }

func (e *testEnv) csrReconciler() *CertificateSigningRequestReconciler {
	return &CertificateSigningRequestReconciler{
		Client: e.Client, APIReader: decodingReader{e.Client}, CAs: e.CAs, Recorder: e.Recorder, Clock: e.Clock, Metrics: e.Metrics,
		ClusterResourceNamespace: clusterResourceNamespace,
		PendingRecheck:           testPendingRecheck,
		MaxRetryDuration:         testMaxRetryDuration,
	}
}

func (e *testEnv) getSigningRequest(t testing.TB) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	csr := &certificatesv1.CertificateSigningRequest{}
	if err := e.Client.Get(context.Background(), signingRequestKey, csr); err != nil {
		t.Fatalf("getting CertificateSigningRequest %s: %v", signingRequestName, err)
	}
	return csr
}

func TestCertificateSigningRequestReconcile(t *testing.T) {
	const hour = time.Hour
	ecdsa := testkeys.New(t, "ECDSA-P256")
	mldsa := testkeys.New(t, "ML-DSA-65")
	serverClient := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	selector := &v1alpha1.IssuerPolicy{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"pki": "pq"}}}
	nsPatterns := &v1alpha1.IssuerPolicy{DNSNames: []string{"*.{namespace}.svc", "*.{namespace}.svc.cluster.local"}}
	requesterBound := &v1alpha1.IssuerPolicy{SPIFFE: &v1alpha1.SPIFFEPolicy{RequesterBound: true}}
	tests := []struct {
		name    string
		cluster func(ca testCA) []client.Object // default: the PQClusterIssuer mesh
		request func(t *testing.T) *certificatesv1.CertificateSigningRequest
		granted []string // the signers the requester may reference in demo; default: mesh

		untouched bool   // no status, no event, no SubjectAccessReview
		waits     bool   // no status, one Warning WaitingForIssuer event, requeued
		failed    string // the reason of the Failed condition and of its Warning event
		contains  []string
		wantSARs  int
		wantLife  time.Duration
		wantKU    x509.KeyUsage
		wantEKU   []x509.ExtKeyUsage // default: server and client auth
		wantURI   string
	}{
		// Issued.
		{name: "ECDSA for a PQClusterIssuer: key encipherment removed", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa))
		}, contains: []string{"Issued by PQClusterIssuer mesh", "ML-DSA-65", "Removed key usage keyEncipherment: RFC 8813"},
			wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "Ed25519 for a PQIssuer the requester may reference", cluster: pqIssuer,
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(demoSigner, newCSRPEM(t, testkeys.New(t, "Ed25519")))
			}, contains: []string{"Issued by PQIssuer demo/mesh", "RFC 8410"}, wantSARs: 1, wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "ML-DSA-65 for a PQClusterIssuer: no key encipherment", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, mldsa))
		}, contains: []string{"Removed key usage keyEncipherment: RFC 9881"}, wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "ML-DSA-65 for a PQIssuer, the requester may reference all of the namespace's (*)", cluster: pqIssuer, granted: []string{"*"},
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(demoSigner, newCSRPEM(t, mldsa))
			}, contains: []string{"PQIssuer demo/mesh"}, wantSARs: 2, wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "a PQIssuer signs for another namespace's requester that may reference it", cluster: pqIssuer,
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(demoSigner, newCSRPEM(t, ecdsa), withRequester("system:serviceaccount:other:app"))
			}, wantSARs: 1, wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "a user's request for a PQClusterIssuer without namespaceSelector", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withRequester("alice"))
		}, wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "expirationSeconds unset: 90 days", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withExpirationSeconds(nil))
		}, wantLife: 2160 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "expirationSeconds unset: the issuer's maxDuration",
			cluster: func(ca testCA) []client.Object { return pqClusterIssuerWith(ca, withMaxDuration(720*hour)) },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withExpirationSeconds(nil))
			}, contains: []string{"Validity shortened to the issuer's maximum duration"}, wantLife: 720 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "expirationSeconds over the issuer's maxDuration",
			cluster: func(ca testCA) []client.Object { return pqClusterIssuerWith(ca, withMaxDuration(48*hour)) },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withExpirationSeconds(ptr.To[int32](7*24*3600)))
			}, contains: []string{"maximum duration"}, wantLife: 48 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "expirationSeconds under the 1h minimum: raised to 1h", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withExpirationSeconds(ptr.To[int32](600)))
		}, contains: []string{"raised from the requested expirationSeconds 600 to pq-issuer's minimum of 1h0m0s"}, wantLife: hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "only the usages asked for", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withSigningUsages(certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth))
		}, wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature, wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{name: "{namespace} is the requesting service account's",
			cluster: func(ca testCA) []client.Object { return pqClusterIssuerWith(ca, withPolicy(nsPatterns)) },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa))
			}, wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "namespaceSelector selects the requesting service account's namespace",
			cluster: func(ca testCA) []client.Object {
				return append(pqClusterIssuerWith(ca, withPolicy(selector)), newNamespace(testNamespace, map[string]string{"pki": "pq"}))
			},
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa))
			}, wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature},
		{name: "requester-bound SPIFFE ID of the requesting service account",
			cluster: func(ca testCA) []client.Object { return pqClusterIssuerWith(ca, withPolicy(requesterBound)) },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa, withCSRURI(t, "spiffe://cluster.local/ns/demo/sa/api")))
			}, wantLife: 24 * hour, wantKU: x509.KeyUsageDigitalSignature, wantURI: "spiffe://cluster.local/ns/demo/sa/api"},

		// Failed: final.
		{name: "a PQIssuer the requester may not reference", cluster: pqIssuer, granted: []string{"other"},
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(demoSigner, newCSRPEM(t, ecdsa), withRequester("system:serviceaccount:other:app"))
			}, failed: "DeniedReference", wantSARs: 2,
			contains: []string{"PQIssuer demo/mesh does not sign this request", "the requester system:serviceaccount:other:app may not reference it",
				`verb "reference" on resource "signers" in API group "pq-issuer.dev", namespace demo, name mesh (or *)`, "Role in demo", "RoleBinding"}},
		{name: "a PQIssuer that does not exist, which the requester may not reference", cluster: func(testCA) []client.Object { return nil }, granted: []string{"other"},
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(demoSigner, newCSRPEM(t, ecdsa))
			}, failed: "DeniedReference", wantSARs: 2, contains: []string{"may not reference it"}},
		{name: "a DNS name outside the policy",
			cluster: func(ca testCA) []client.Object {
				return pqClusterIssuerWith(ca, withPolicy(&v1alpha1.IssuerPolicy{DNSNames: []string{"*.example.com"}}))
			},
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa))
			}, failed: "PolicyViolation", contains: []string{`the DNS name "api.demo.svc" is not allowed`, "policy.dnsNames"}},
		{name: "{namespace} patterns and a user, who has no namespace",
			cluster: func(ca testCA) []client.Object { return pqClusterIssuerWith(ca, withPolicy(nsPatterns)) },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withRequester("alice"))
			}, failed: "PolicyViolation", contains: []string{`"api.demo.svc" is not allowed`}},
		{name: "namespaceSelector and a user", cluster: func(ca testCA) []client.Object { return pqClusterIssuerWith(ca, withPolicy(selector)) },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withRequester("alice"))
			}, failed: "PolicyViolation", contains: []string{"spec.policy.namespaceSelector", "the requester alice is not a service account"}},
		{name: "namespaceSelector and a node", cluster: func(ca testCA) []client.Object { return pqClusterIssuerWith(ca, withPolicy(selector)) },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withRequester("system:node:node-1"))
			}, failed: "PolicyViolation", contains: []string{"the requester system:node:node-1 is not a service account"}},
		{name: "namespaceSelector leaves the service account's namespace out",
			cluster: func(ca testCA) []client.Object {
				return append(pqClusterIssuerWith(ca, withPolicy(selector)), newNamespace(testNamespace, nil))
			},
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa))
			}, failed: "PolicyViolation", contains: []string{"namespace demo is not selected", "pki=pq", "the requester " + requesterSA}},
		{name: "requester-bound: another service account's SPIFFE ID",
			cluster: func(ca testCA) []client.Object { return pqClusterIssuerWith(ca, withPolicy(requesterBound)) },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa, withCSRURI(t, "spiffe://cluster.local/ns/demo/sa/api")), withRequester("system:serviceaccount:demo:web"))
			}, failed: "PolicyViolation", contains: []string{"policy.spiffe.requesterBound", `may have only "spiffe://cluster.local/ns/demo/sa/web"`}},
		{name: "requester-bound: a user's SPIFFE ID",
			cluster: func(ca testCA) []client.Object { return pqIssuerWith(ca, withPolicy(requesterBound)) },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(demoSigner, newCSRPEM(t, ecdsa, withCSRURI(t, "spiffe://cluster.local/ns/demo/sa/api")), withRequester("alice"))
			}, failed: "PolicyViolation", wantSARs: 1, contains: []string{`the requester "alice" is not a service account`}},
		{name: "a key type the policy does not allow",
			cluster: func(ca testCA) []client.Object {
				return pqClusterIssuerWith(ca, withPolicy(&v1alpha1.IssuerPolicy{KeyAlgorithms: []string{"ML-DSA"}}))
			},
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa))
			}, failed: "PolicyViolation", contains: []string{"the subject key is ECDSA", "allows only ML-DSA"}},
		{name: "a usage Kubernetes knows and pq-issuer does not", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withSigningUsages(certificatesv1.UsageDigitalSignature, certificatesv1.UsageMicrosoftSGC))
		}, failed: "PolicyViolation", contains: []string{`unknown usage "microsoft sgc"`}},
		{name: "a tampered CSR", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, tamperCSR(t, newCSRPEM(t, ecdsa)))
		}, failed: "BadCSRSignature", contains: []string{"spec.request", "does not verify"}},
		{name: "spec.request is not a CSR", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, []byte("not PEM"))
		}, failed: "InvalidCSR", contains: []string{"spec.request: the CSR is not PEM"}},

		// Waiting: no status.
		{name: "the PQClusterIssuer does not exist", cluster: func(testCA) []client.Object { return nil },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa))
			}, waits: true, contains: []string{"PQClusterIssuer mesh", "does not exist", "spec.signerName"}},
		{name: "the PQClusterIssuer is not ready", cluster: func(testCA) []client.Object { return []client.Object{newPQClusterIssuer(issuerName)} },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa))
			}, waits: true, contains: []string{"PQClusterIssuer mesh to be ready"}},
		{name: "the PQIssuer is not ready", cluster: func(testCA) []client.Object { return []client.Object{newPQIssuer(testNamespace, issuerName)} },
			request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
				return newSigningRequest(demoSigner, newCSRPEM(t, ecdsa))
			}, waits: true, wantSARs: 1, contains: []string{"PQIssuer demo/mesh to be ready"}},

		// Not ours, not yet, or answered.
		{name: "not approved", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withoutApproval())
		}, untouched: true},
		{name: "denied", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withoutApproval(), withSigningCondition(certificatesv1.CertificateDenied, "DeniedByTest"))
		}, untouched: true},
		{name: "failed", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withSigningCondition(certificatesv1.CertificateFailed, "Other"))
		}, untouched: true},
		{name: "already issued", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(clusterSigner, newCSRPEM(t, ecdsa), withSigningCertificate([]byte("issued elsewhere")))
		}, untouched: true},
		{name: "another signer's request", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest(certificatesv1.KubeAPIServerClientSignerName, newCSRPEM(t, ecdsa))
		}, untouched: true},
		{name: "a PQIssuer signer name without namespace", request: func(t *testing.T) *certificatesv1.CertificateSigningRequest {
			return newSigningRequest("pqissuers.pq-issuer.dev/"+issuerName, newCSRPEM(t, ecdsa))
		}, untouched: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			now := clk.Now()
			ca := newRootCA(t, signer.MLDSA65, now, 365*24*hour)
			cluster := pqClusterIssuerWith(ca)
			if tc.cluster != nil {
				cluster = tc.cluster(ca)
			}
			rbac := &referenceRBAC{granted: tc.granted}
			if rbac.granted == nil {
				rbac.granted = []string{issuerName}
			}
			csr := tc.request(t)
			env := newTestEnv(t, clk, withObjects(append(cluster, csr)...), withInterceptor(interceptor.Funcs{Create: rbac.create}))
			reconcileIssuers(t, env, cluster)
			before := env.getSigningRequest(t)
			r := env.csrReconciler()

			res, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: signingRequestKey})
			if err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			got := env.getSigningRequest(t)
			if len(rbac.reviews) != tc.wantSARs {
				t.Errorf("%d SubjectAccessReviews, want %d", len(rbac.reviews), tc.wantSARs)
			}
			switch {
			case tc.untouched:
				if got.ResourceVersion != before.ResourceVersion || res != (ctrl.Result{}) {
					t.Errorf("the request was written (%+v) or requeued (%+v)", got.Status, res)
				}
				env.expectEvents(t)
				return
			case tc.waits:
				if got.ResourceVersion != before.ResourceVersion {
					t.Errorf("a waiting request got a status: %+v", got.Status)
				}
				if res.RequeueAfter != testPendingRecheck {
					t.Errorf("requeue after %s, want %s", res.RequeueAfter, testPendingRecheck)
				}
				env.expectEvents(t, wantEvent{Type: "Warning", Reason: "WaitingForIssuer", Contains: tc.contains})
				return
			}
			if res != (ctrl.Result{}) {
				t.Errorf("result %+v, want none", res)
			}
			kind, _, _ := issuerOfSigner(got.Spec.SignerName)
			if tc.failed != "" {
				checkSigningRequestFailed(t, got, tc.failed, tc.contains)
				env.expectEvents(t, wantEvent{Type: "Warning", Reason: tc.failed, Contains: tc.contains})
				if v, _ := metricValue(t, env.Registry, csrFailedMetric, map[string]string{"issuer_kind": kind.Name, "reason": tc.failed}); v != 1 {
					t.Errorf("%s = %v, want 1", csrFailedMetric, v)
				}
			} else {
				if !reflect.DeepEqual(got.Status.Conditions, before.Status.Conditions) {
					t.Errorf("conditions %+v, want the approval alone", got.Status.Conditions)
				}
				wantEKU := tc.wantEKU
				if wantEKU == nil {
					wantEKU = serverClient
				}
				checkSigningRequestCertificate(t, got, ca, now, tc.wantLife, tc.wantKU, wantEKU, tc.wantURI)
				env.expectEvents(t, wantEvent{Type: "Normal", Reason: "Issued", Contains: tc.contains})
				if v, _ := metricValue(t, env.Registry, csrSignedMetric, map[string]string{"issuer_kind": kind.Name, "algorithm": "ML-DSA-65"}); v != 1 {
					t.Errorf("%s = %v, want 1", csrSignedMetric, v)
				}
			}

			// Answered once: another reconcile writes nothing and says nothing.
			if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: signingRequestKey}); err != nil {
				t.Fatalf("second Reconcile: %v", err)
			}
			if again := env.getSigningRequest(t); again.ResourceVersion != got.ResourceVersion {
				t.Errorf("the second reconcile wrote the request again: %+v", again.Status)
			}
			env.expectEvents(t)
		})
	}
}

// checkSigningRequestFailed checks the one condition pq-issuer adds: Failed, True, with reason and
// a message saying contains, beside the approval, and no certificate.
func checkSigningRequestFailed(t *testing.T, csr *certificatesv1.CertificateSigningRequest, reason string, contains []string) {
	t.Helper()
	if len(csr.Status.Certificate) != 0 {
		t.Error("a failed request carries a certificate")
	}
	conds := csr.Status.Conditions
	if len(conds) != 2 || conds[0].Type != certificatesv1.CertificateApproved {
		t.Fatalf("conditions %+v, want Approved then Failed", conds)
	}
	c := conds[1]
	if c.Type != certificatesv1.CertificateFailed || c.Status != corev1.ConditionTrue || c.Reason != reason || c.LastTransitionTime.IsZero() || c.LastUpdateTime.IsZero() {
		t.Fatalf("condition %s=%s reason %s (%q), want Failed=True reason %s with times", c.Type, c.Status, c.Reason, c.Message, reason)
	}
	for _, s := range contains {
		if !strings.Contains(c.Message, s) {
			t.Errorf("message %q does not say %q", c.Message, s)
		}
	}
}

// checkSigningRequestCertificate checks status.certificate as a client would: the leaf for the
// CSR's key, then the intermediates, verifying to the CA, with the lifetime, usages and SPIFFE ID
// expected.
func checkSigningRequestCertificate(t *testing.T, csr *certificatesv1.CertificateSigningRequest, ca testCA, now time.Time, life time.Duration, ku x509.KeyUsage, eku []x509.ExtKeyUsage, uri string) {
	t.Helper()
	chain := parseCertsPEM(t, csr.Status.Certificate)
	leaf := chain[0]
	req, err := signer.ParseCSR(csr.Spec.Request)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(req.PublicKey) {
		t.Error("the leaf's key is not the CSR's")
	}
	if d := leaf.NotBefore.Sub(now); d > 0 || d < -time.Second {
		t.Errorf("notBefore %s, want now %s", leaf.NotBefore, now)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != life {
		t.Errorf("lifetime %s, want %s", got, life)
	}
	if leaf.KeyUsage != ku || !slices.Equal(leaf.ExtKeyUsage, eku) {
		t.Errorf("key usage %v, extended %v; want %v, %v", signer.KeyUsageNames(leaf.KeyUsage), leaf.ExtKeyUsage, signer.KeyUsageNames(ku), eku)
	}
	var uris []string
	for _, u := range leaf.URIs {
		uris = append(uris, u.String())
	}
	if want := []string{uri}; uri != "" && !slices.Equal(uris, want) || uri == "" && len(uris) != 0 {
		t.Errorf("URIs %q, want %q", uris, uri)
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca.Certificate)
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the leaf does not verify against the CA: %v", err)
	}
}

// TestCertificateSigningRequestIntermediateChain: status.certificate is the leaf and the
// intermediates, without the root, as the API's clients expect.
func TestCertificateSigningRequestIntermediateChain(t *testing.T) {
	clk := newTestClock(t)
	root := newRootCA(t, signer.MLDSA87, clk.Now(), 2*365*24*time.Hour)
	ca := newIntermediateCA(t, root, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
	cluster := pqClusterIssuerWith(ca)
	env := newTestEnv(t, clk, withObjects(append(cluster, newSigningRequest(clusterSigner, newCSRPEM(t, testkeys.New(t, "ECDSA-P256"))))...))
	reconcileIssuers(t, env, cluster)
	if _, err := env.csrReconciler().Reconcile(context.Background(), reconcile.Request{NamespacedName: signingRequestKey}); err != nil {
		t.Fatal(err)
	}
	got := env.getSigningRequest(t)
	chain := parseCertsPEM(t, got.Status.Certificate)
	if len(chain) != 2 || !chain[1].Equal(ca.Certificate) {
		t.Fatalf("status.certificate holds %d certificates, want the leaf and the intermediate", len(chain))
	}
	checkSigningRequestCertificate(t, got, root, clk.Now(), 24*time.Hour, x509.KeyUsageDigitalSignature,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, "")
	env.expectEvents(t, wantEvent{Type: "Normal", Reason: "Issued"})
}

// TestCertificateSigningRequestReferenceReview: the SubjectAccessReviews ask about the requester
// exactly as the API server recorded it, for the issuer's name and then "*".
func TestCertificateSigningRequestReferenceReview(t *testing.T) {
	clk := newTestClock(t)
	ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
	cluster := pqIssuerWith(ca)
	csr := newSigningRequest(demoSigner, newCSRPEM(t, testkeys.New(t, "ECDSA-P256")))
	rbac := &referenceRBAC{}
	env := newTestEnv(t, clk, withObjects(append(cluster, csr)...), withInterceptor(interceptor.Funcs{Create: rbac.create}))
	reconcileIssuers(t, env, cluster)
	if _, err := env.csrReconciler().Reconcile(context.Background(), reconcile.Request{NamespacedName: signingRequestKey}); err != nil {
		t.Fatal(err)
	}
	var want []authorizationv1.SubjectAccessReviewSpec
	for _, name := range []string{issuerName, "*"} {
		want = append(want, authorizationv1.SubjectAccessReviewSpec{
			User: requesterSA, UID: "uid-of-" + requesterSA, Groups: csr.Spec.Groups,
			Extra: map[string]authorizationv1.ExtraValue{"authentication.kubernetes.io/pod-name": {"api-0"}},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: testNamespace, Verb: "reference", Group: "pq-issuer.dev", Version: "*", Resource: "signers", Name: name,
			},
		})
	}
	if !reflect.DeepEqual(rbac.reviews, want) {
		t.Errorf("SubjectAccessReviews\n%+v\nwant\n%+v", rbac.reviews, want)
	}
	checkSigningRequestFailed(t, env.getSigningRequest(t), "DeniedReference", nil)
	env.expectEvents(t, wantEvent{Type: "Warning", Reason: "DeniedReference"})
}

// TestCertificateSigningRequestRetryBound: a transient error is retried with backoff, without a
// status or an event, until MaxRetryDuration after the request's creation; then it fails.
func TestCertificateSigningRequestRetryBound(t *testing.T) {
	errDown := apierrors.NewServiceUnavailable("the API server is restarting")
	tests := []struct {
		name       string
		age        time.Duration
		wantFailed bool
	}{
		{name: "young request: retried", age: time.Minute},
		{name: "just within the bound: retried", age: testMaxRetryDuration - time.Second},
		{name: "past the bound: failed", age: testMaxRetryDuration + time.Minute, wantFailed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			cluster := pqIssuerWith(ca)
			csr := newSigningRequest(demoSigner, newCSRPEM(t, testkeys.New(t, "ECDSA-P256")), withSigningCreated(clk.Now().Add(-tc.age)))
			rbac := &referenceRBAC{err: errDown}
			env := newTestEnv(t, clk, withObjects(append(cluster, csr)...), withInterceptor(interceptor.Funcs{Create: rbac.create}))
			reconcileIssuers(t, env, cluster)
			before := env.getSigningRequest(t)
			_, err := env.csrReconciler().Reconcile(context.Background(), reconcile.Request{NamespacedName: signingRequestKey})
			got := env.getSigningRequest(t)
			if !tc.wantFailed {
				if !errors.Is(err, errDown) {
					t.Errorf("error %v, want the transient one returned for a retry", err)
				}
				if got.ResourceVersion != before.ResourceVersion {
					t.Errorf("status written while retrying: %+v", got.Status)
				}
				env.expectEvents(t)
				return
			}
			if err != nil {
				t.Fatalf("error %v, want none once failed", err)
			}
			contains := []string{"PQIssuer demo/mesh", "--max-retry-duration 30m0s", "the API server is restarting", "create a new CertificateSigningRequest"}
			checkSigningRequestFailed(t, got, "SigningFailed", contains)
			env.expectEvents(t, wantEvent{Type: "Warning", Reason: "SigningFailed", Contains: contains})
			if v, _ := metricValue(t, env.Registry, csrFailedMetric, map[string]string{"issuer_kind": "PQIssuer", "reason": "SigningFailed"}); v != 1 {
				t.Errorf("%s = %v, want 1", csrFailedMetric, v)
			}
		})
	}
}

// TestCertificateSigningRequestsForIssuer: an issuer's change wakes its approved, unanswered
// requests only.
func TestCertificateSigningRequestsForIssuer(t *testing.T) {
	clk := newTestClock(t)
	csrPEM := newCSRPEM(t, testkeys.New(t, "ECDSA-P256"))
	named := func(name string) signingRequestOption {
		return func(csr *certificatesv1.CertificateSigningRequest) { csr.Name = name }
	}
	env := newTestEnv(t, clk, withObjects(
		newSigningRequest(clusterSigner, csrPEM),
		newSigningRequest(clusterSigner, csrPEM, named("unapproved"), withoutApproval()),
		newSigningRequest(clusterSigner, csrPEM, named("issued"), withSigningCertificate([]byte("issued"))),
		newSigningRequest(clusterSigner, csrPEM, named("failed"), withSigningCondition(certificatesv1.CertificateFailed, "Other")),
		newSigningRequest("pqclusterissuers.pq-issuer.dev/other", csrPEM, named("other-issuer")),
		newSigningRequest(demoSigner, csrPEM, named("namespaced")),
	))
	r := env.csrReconciler()
	got := r.requestsForIssuer(PQClusterIssuerKind)(context.Background(), newPQClusterIssuer(issuerName))
	if want := []reconcile.Request{{NamespacedName: signingRequestKey}}; !slices.Equal(got, want) {
		t.Errorf("requests for the PQClusterIssuer %v, want %v", got, want)
	}
	got = r.requestsForIssuer(PQIssuerKind)(context.Background(), newPQIssuer(testNamespace, issuerName))
	if want := []reconcile.Request{{NamespacedName: types.NamespacedName{Name: "namespaced"}}}; !slices.Equal(got, want) {
		t.Errorf("requests for the PQIssuer %v, want %v", got, want)
	}
}

// TestCertificateSigningRequestWriteConflict: when another writer answered the request between the
// read and the write, the conflict is resolved by reading the API server, and pq-issuer's answer is
// dropped; a conflict from a metadata change is retried and the request issued once.
func TestCertificateSigningRequestWriteConflict(t *testing.T) {
	tests := []struct {
		name        string
		otherWriter func(t *testing.T, c client.Client, csr *certificatesv1.CertificateSigningRequest)
		wantUpdates int
		wantIssued  bool
		wantEvents  []wantEvent
	}{
		{
			name: "failed by another writer: dropped",
			otherWriter: func(t *testing.T, c client.Client, csr *certificatesv1.CertificateSigningRequest) {
				withSigningCondition(certificatesv1.CertificateFailed, "Other")(csr)
				if err := c.Status().Update(context.Background(), csr); err != nil {
					t.Fatal(err)
				}
			},
			wantUpdates: 1,
		},
		{
			name: "labels changed: retried on the latest version, issued once",
			otherWriter: func(t *testing.T, c client.Client, csr *certificatesv1.CertificateSigningRequest) {
				csr.Labels = map[string]string{"other": "writer"}
				if err := c.Update(context.Background(), csr); err != nil {
					t.Fatal(err)
				}
			},
			wantUpdates: 2,
			wantIssued:  true,
			wantEvents:  []wantEvent{{Type: "Normal", Reason: "Issued"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			cluster := pqClusterIssuerWith(ca)
			csr := newSigningRequest(clusterSigner, newCSRPEM(t, testkeys.New(t, "ECDSA-P256")))
			updates, raced := 0, false
			env := newTestEnv(t, clk, withObjects(append(cluster, csr)...), withInterceptor(interceptor.Funcs{
				SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					if _, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
						updates++
						if !raced {
							raced = true
							latest := &certificatesv1.CertificateSigningRequest{}
							if err := c.Get(ctx, client.ObjectKeyFromObject(obj), latest); err != nil {
								t.Fatal(err)
							}
							tc.otherWriter(t, c, latest)
						}
					}
					return c.SubResource(sub).Update(ctx, obj, opts...)
				},
			}))
			reconcileIssuers(t, env, cluster)
			if _, err := env.csrReconciler().Reconcile(context.Background(), reconcile.Request{NamespacedName: signingRequestKey}); err != nil {
				t.Fatal(err)
			}
			got := env.getSigningRequest(t)
			if issued := len(got.Status.Certificate) > 0; issued != tc.wantIssued {
				t.Errorf("issued %v, want %v (conditions %+v)", issued, tc.wantIssued, got.Status.Conditions)
			}
			if !tc.wantIssued && (len(got.Status.Conditions) != 2 || got.Status.Conditions[1].Reason != "Other") {
				t.Errorf("conditions %+v, want the approval and the other writer's failure alone", got.Status.Conditions)
			}
			if updates != tc.wantUpdates {
				t.Errorf("%d status updates, want %d", updates, tc.wantUpdates)
			}
			env.expectEvents(t, tc.wantEvents...)
			if n := seriesCount(t, env.Registry, csrSignedMetric) + seriesCount(t, env.Registry, csrFailedMetric); n != len(tc.wantEvents) {
				t.Errorf("%d signed or failed series, want %d", n, len(tc.wantEvents))
			}
		})
	}
}

// TestCertificateSigningRequestGone: a request deleted before its status is written is dropped
// without an error or an event.
func TestCertificateSigningRequestGone(t *testing.T) {
	clk := newTestClock(t)
	ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
	cluster := pqClusterIssuerWith(ca)
	csr := newSigningRequest(clusterSigner, newCSRPEM(t, testkeys.New(t, "ECDSA-P256")))
	gone := apierrors.NewNotFound(schema.GroupResource{Group: "certificates.k8s.io", Resource: "certificatesigningrequests"}, signingRequestName)
	env := newTestEnv(t, clk, withObjects(append(cluster, csr)...), withInterceptor(interceptor.Funcs{
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			if _, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
				return gone
			}
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	}))
	reconcileIssuers(t, env, cluster)
	if _, err := env.csrReconciler().Reconcile(context.Background(), reconcile.Request{NamespacedName: signingRequestKey}); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	env.expectEvents(t)
	if n := seriesCount(t, env.Registry, csrSignedMetric); n != 0 {
		t.Errorf("%d %s series for a request never written, want none", n, csrSignedMetric)
	}
}

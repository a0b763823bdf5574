package controllers

import (
	"reflect"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

func TestSlimCertificateRequest(t *testing.T) {
	csr, cert, ca := []byte("CSR PEM"), []byte("CERT PEM"), []byte("CA PEM")
	withCA := func(cr *cmapi.CertificateRequest) { cr.Status.CA = ca }
	// What cert-manager and the API server put on every request, and what a slimmed one drops.
	asWritten := func(cr *cmapi.CertificateRequest) {
		cr.UID, cr.ResourceVersion, cr.CreationTimestamp = "uid-1", "42", metav1.Now()
		cr.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "cert-manager-certificates-request-manager"}}
		cr.Annotations = map[string]string{cmapi.CertificateNameKey: "api", cmapi.CertificateRequestRevisionAnnotationKey: "1"}
		cr.Labels = map[string]string{"app": "api"}
		cr.OwnerReferences = []metav1.OwnerReference{{Kind: "Certificate", Name: "api"}}
		cr.Spec.Username, cr.Spec.UID = "system:serviceaccount:cert-manager:cert-manager", "sa-uid"
		cr.Spec.Groups = []string{"system:serviceaccounts", "system:authenticated"}
		cr.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment}
		cr.Spec.Duration = &metav1.Duration{Duration: time.Hour}
	}
	withFailureTime := func(cr *cmapi.CertificateRequest) { cr.Status.FailureTime = &metav1.Time{} }
	for _, tc := range []struct {
		name         string
		cr           *cmapi.CertificateRequest
		wantKept     bool // spec.request kept
		wantFinished bool // isFinished on the cached copy
	}{
		{
			name:     "pending request for a PQClusterIssuer keeps its CSR",
			cr:       newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQClusterIssuerKind, issuerName), withCSR(csr), withApproved()),
			wantKept: true,
		},
		{
			name:     "request for a PQIssuer waiting for approval keeps its CSR",
			cr:       newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName), withCSR(csr)),
			wantKept: true,
		},
		{
			name:         "issued request drops CSR, certificate and CA, and still reads as finished",
			cr:           newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName), withCSR(csr), withIssuedStatus(cert), withCA),
			wantFinished: true,
		},
		{
			name: "failed request is slimmed",
			cr: newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName), withCSR(csr), withFailureTime,
				withCondition(cmapi.CertificateRequestConditionReady, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonFailed, "bad CSR")),
			wantFinished: true,
		},
		{
			name: "denied request is slimmed",
			cr: newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName), withCSR(csr), withDenied("policy", "no"),
				withCondition(cmapi.CertificateRequestConditionReady, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonDenied, "no")),
			wantFinished: true,
		},
		{
			name: "a certificate without a final condition is kept, so the request stays finished",
			cr: newCertificateRequest(testNamespace, crName, withPQIssuerRef(PQIssuerKind, issuerName), withCSR(csr),
				func(cr *cmapi.CertificateRequest) { cr.Status.Certificate = cert }),
			wantKept: true, wantFinished: true,
		},
		{
			name: "pending request for cert-manager's CA issuer is slimmed",
			cr:   newCertificateRequest(testNamespace, crName, withIssuerRef("cert-manager.io", "ClusterIssuer", "ca"), withCSR(csr), withApproved()),
		},
		{
			name: "same kind name in another group is slimmed",
			cr:   newCertificateRequest(testNamespace, crName, withIssuerRef("example.com", "PQClusterIssuer", issuerName), withCSR(csr)),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asWritten(tc.cr)
			before := tc.cr.DeepCopy()
			got, err := slimCertificateRequest(tc.cr)
			if err != nil {
				t.Fatal(err)
			}
			cr := got.(*cmapi.CertificateRequest)
			if cr.ManagedFields != nil {
				t.Error("managed fields kept")
			}
			if kept := cr.Spec.Request != nil; kept != tc.wantKept {
				t.Errorf("spec.request kept = %v, want %v", kept, tc.wantKept)
			}
			if !tc.wantKept {
				wantMeta := metav1.ObjectMeta{Name: before.Name, Namespace: before.Namespace, UID: before.UID, ResourceVersion: before.ResourceVersion}
				if !reflect.DeepEqual(cr.ObjectMeta, wantMeta) || !reflect.DeepEqual(cr.Spec, cmapi.CertificateRequestSpec{IssuerRef: before.Spec.IssuerRef}) ||
					cr.Status.Certificate != nil || cr.Status.CA != nil {
					t.Errorf("a slimmed request kept more than name, namespace, UID, resourceVersion, issuerRef and conditions: %+v", cr)
				}
				for i, c := range cr.Status.Conditions {
					b := before.Status.Conditions[i]
					if c != (cmapi.CertificateRequestCondition{Type: b.Type, Status: b.Status, Reason: b.Reason}) {
						t.Errorf("slimmed condition %d = %+v, want type, status and reason of %+v", i, c, b)
					}
				}
			}
			if got := isFinished(cr); got != tc.wantFinished {
				t.Errorf("isFinished on the cached copy = %v, want %v", got, tc.wantFinished)
			}
			if cr.Name != before.Name || cr.Spec.IssuerRef != before.Spec.IssuerRef || len(cr.Status.Conditions) != len(before.Status.Conditions) {
				t.Errorf("name, issuerRef or conditions changed: %+v", cr)
			}
		})
	}

	t.Run("a tombstone passes through", func(t *testing.T) {
		in := toolscache.DeletedFinalStateUnknown{Key: "demo/api-1"}
		got, err := slimCertificateRequest(in)
		if err != nil || got != in {
			t.Errorf("got %v, %v; want the tombstone unchanged", got, err)
		}
	})
}

func TestSlimCertificateSigningRequest(t *testing.T) {
	csrPEM, chain := []byte("CSR PEM"), []byte("CHAIN PEM")
	// What the API server and a kubelet put on every request, and what a slimmed one drops.
	asWritten := func(csr *certificatesv1.CertificateSigningRequest) {
		csr.UID, csr.ResourceVersion, csr.CreationTimestamp = "uid-1", "42", metav1.Now()
		csr.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
		csr.Annotations = map[string]string{"note": "x"}
		csr.GenerateName = "csr-"
	}
	approved := withSigningCondition(certificatesv1.CertificateApproved, "AutoApproved")
	for _, tc := range []struct {
		name         string
		csr          *certificatesv1.CertificateSigningRequest
		wantKept     bool // spec.request kept
		wantFinished bool // csrIsFinished on the cached copy
	}{
		{name: "approved request for a PQClusterIssuer is kept whole", csr: newSigningRequest(clusterSigner, csrPEM), wantKept: true},
		{name: "request for a PQIssuer waiting for approval is kept whole", csr: newSigningRequest(demoSigner, csrPEM, withoutApproval()), wantKept: true},
		{name: "issued request of ours is slimmed and still reads as issued", csr: newSigningRequest(clusterSigner, csrPEM, withSigningCertificate(chain)), wantFinished: true},
		{name: "failed request of ours is slimmed", csr: newSigningRequest(clusterSigner, csrPEM, withSigningCondition(certificatesv1.CertificateFailed, "PolicyViolation")), wantFinished: true},
		{name: "denied request of ours is slimmed", csr: newSigningRequest(demoSigner, csrPEM, withoutApproval(), withSigningCondition(certificatesv1.CertificateDenied, "Denied")), wantFinished: true},
		{name: "a node's client request, pending, is slimmed",
			csr: newSigningRequest(certificatesv1.KubeAPIServerClientKubeletSignerName, csrPEM, withoutApproval(), withRequester("system:node:node-1"))},
		{name: "a node's serving request, issued, is slimmed",
			csr: newSigningRequest(certificatesv1.KubeletServingSignerName, csrPEM, withoutApproval(), approved, withSigningCertificate(chain)), wantFinished: true},
		{name: "a pq-issuer-like name of another domain is slimmed", csr: newSigningRequest("pqclusterissuers.example.com/"+issuerName, csrPEM)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asWritten(tc.csr)
			before := tc.csr.DeepCopy()
			got, err := slimCertificateSigningRequest(tc.csr)
			if err != nil {
				t.Fatal(err)
			}
			csr := got.(*certificatesv1.CertificateSigningRequest)
			if csr.ManagedFields != nil {
				t.Error("managed fields kept")
			}
			if kept := csr.Spec.Request != nil; kept != tc.wantKept {
				t.Errorf("spec.request kept = %v, want %v", kept, tc.wantKept)
			}
			if !tc.wantKept {
				wantMeta := metav1.ObjectMeta{Name: before.Name, UID: before.UID, ResourceVersion: before.ResourceVersion}
				if !reflect.DeepEqual(csr.ObjectMeta, wantMeta) || !reflect.DeepEqual(csr.Spec, certificatesv1.CertificateSigningRequestSpec{SignerName: before.Spec.SignerName}) {
					t.Errorf("a slimmed request kept more than name, UID, resourceVersion, signerName and conditions: %+v", csr)
				}
				if len(before.Status.Certificate) > 0 && string(csr.Status.Certificate) != slimmedCertificate || len(before.Status.Certificate) == 0 && csr.Status.Certificate != nil {
					t.Errorf("status.certificate %q, want the marker exactly when there was one", csr.Status.Certificate)
				}
				if len(csr.Status.Conditions) != len(before.Status.Conditions) {
					t.Fatalf("conditions %+v, want %d", csr.Status.Conditions, len(before.Status.Conditions))
				}
				for i, c := range csr.Status.Conditions {
					b := before.Status.Conditions[i]
					if c != (certificatesv1.CertificateSigningRequestCondition{Type: b.Type, Status: b.Status, Reason: b.Reason}) {
						t.Errorf("slimmed condition %d = %+v, want type, status and reason of %+v", i, c, b)
					}
				}
			}
			if got := csrIsFinished(csr); got != tc.wantFinished {
				t.Errorf("csrIsFinished on the cached copy = %v, want %v", got, tc.wantFinished)
			}
			if csrIsApproved(csr) != csrIsApproved(before) || csr.Spec.SignerName != before.Spec.SignerName {
				t.Errorf("approval or signer name changed: %+v", csr)
			}
		})
	}

	t.Run("a tombstone passes through", func(t *testing.T) {
		in := toolscache.DeletedFinalStateUnknown{Key: "csr-1"}
		got, err := slimCertificateSigningRequest(in)
		if err != nil || got != in {
			t.Errorf("got %v, %v; want the tombstone unchanged", got, err)
		}
	})
}

func TestSlimSecretMetadata(t *testing.T) {
	in := &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: testNamespace, Name: "mesh-ca", UID: "uid-1", ResourceVersion: "42", Generation: 3,
			Labels:          map[string]string{"controller.cert-manager.io/fao": "true", v1alpha1.CASecretLabel: "true"},
			Annotations:     map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"kind":"Secret"}`},
			OwnerReferences: []metav1.OwnerReference{{Name: "api"}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "cert-manager"}},
		},
	}
	got, err := slimSecretMetadata(in)
	if err != nil {
		t.Fatal(err)
	}
	want := metav1.ObjectMeta{Namespace: testNamespace, Name: "mesh-ca", UID: "uid-1", ResourceVersion: "42",
		Labels: map[string]string{v1alpha1.CASecretLabel: "true"}}
	if m := got.(*metav1.PartialObjectMetadata); !reflect.DeepEqual(m.ObjectMeta, want) || m.Kind != "Secret" {
		t.Errorf("got %+v, want only %+v", m, want)
	}
	tombstone := toolscache.DeletedFinalStateUnknown{Key: "demo/mesh-ca"}
	if got, err := slimSecretMetadata(tombstone); err != nil || got != tombstone {
		t.Errorf("got %v, %v; want the tombstone unchanged", got, err)
	}
}

func TestSlimPodCertificateRequest(t *testing.T) {
	key := testkeys.New(t, "ECDSA-P256")
	issued := func(p *certificatesv1.PodCertificateRequest) {
		p.Status.Conditions = []metav1.Condition{{Type: "Issued", Status: metav1.ConditionTrue, Reason: "Issued", Message: "Issued by ..."}}
		p.Status.CertificateChain = "CHAIN PEM"
	}
	for _, tc := range []struct {
		name         string
		pcr          *certificatesv1.PodCertificateRequest
		wantKept     bool // the stub CSR kept
		wantFinished bool // pcrIsFinished on the cached copy
	}{
		{name: "unanswered request for a PQClusterIssuer is kept whole", pcr: newPCR(t, testNamespace, clusterSigner, key), wantKept: true},
		{name: "unanswered request for a PQIssuer is kept whole", pcr: newPCR(t, testNamespace, demoSigner, key), wantKept: true},
		{name: "issued request of ours is slimmed and still reads as answered", pcr: newPCR(t, testNamespace, clusterSigner, key, issued), wantFinished: true},
		{name: "another signer's request is slimmed", pcr: newPCR(t, testNamespace, "example.com/mesh", key)},
		{name: "another signer's issued request is slimmed", pcr: newPCR(t, testNamespace, "example.com/mesh", key, issued), wantFinished: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.pcr.UID, tc.pcr.ResourceVersion, tc.pcr.ManagedFields = "uid-1", "42", []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
			before := tc.pcr.DeepCopy()
			got, err := slimPodCertificateRequest(tc.pcr)
			if err != nil {
				t.Fatal(err)
			}
			pcr := got.(*certificatesv1.PodCertificateRequest)
			if pcr.ManagedFields != nil {
				t.Error("managed fields kept")
			}
			if kept := pcr.Spec.StubPKCS10Request != nil; kept != tc.wantKept {
				t.Errorf("stub CSR kept = %v, want %v", kept, tc.wantKept)
			}
			if got := pcrIsFinished(pcr); got != tc.wantFinished {
				t.Errorf("pcrIsFinished = %v on the cached copy, want %v", got, tc.wantFinished)
			}
			if pcr.Spec.SignerName != before.Spec.SignerName || pcr.Namespace != before.Namespace || pcr.Name != before.Name || pcr.ResourceVersion != before.ResourceVersion {
				t.Errorf("lost what the index and the watch read: %+v", pcr.ObjectMeta)
			}
			if !tc.wantKept && (pcr.Status.CertificateChain != "" || pcr.Spec.PodName != "") {
				t.Errorf("a slimmed request kept its chain or pod: %+v", pcr)
			}
		})
	}
}

package controllers

import (
	"unique"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// The controllers' cache holds the CertificateRequests of pq-issuer's issuers (every request of the
// cluster where the CRD refuses the field selector, request_selector.go), every
// CertificateSigningRequest, and the metadata of CA Secrets (manager.go's secretCache): at 10,000
// Certificates that is 10,000 requests of 10-20 KB (an ML-DSA-65 signature alone is 3,309 bytes)
// and a few Secrets. These transforms keep only what the controllers read, so memory follows the
// number of objects, not their size.

// slimCertificateRequest keeps, of a finished request or one for another issuer, its name,
// issuerRef and condition types, statuses and reasons (what the issuer index, the issuer watch and
// isFinished read), in a new object so that nothing else of the decoded one stays referenced. A
// pending request for our issuers stays whole: it is what gets signed.
func slimCertificateRequest(obj any) (any, error) {
	cr, ok := obj.(*cmapi.CertificateRequest)
	if !ok {
		return obj, nil
	}
	cr.ManagedFields = nil
	_, ours := issuerKindOf(cr.Spec.IssuerRef)
	if ours && !finishedByCondition(cr) {
		return cr, nil
	}
	ref := cr.Spec.IssuerRef
	slim := &cmapi.CertificateRequest{
		TypeMeta: cr.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: cr.Name, Namespace: intern(cr.Namespace), UID: cr.UID,
			ResourceVersion: cr.ResourceVersion},
		Spec: cmapi.CertificateRequestSpec{IssuerRef: cmmeta.IssuerReference{
			Name: intern(ref.Name), Kind: intern(ref.Kind), Group: intern(ref.Group)}},
		Status: cmapi.CertificateRequestStatus{FailureTime: cr.Status.FailureTime},
	}
	if len(cr.Status.Conditions) > 0 {
		slim.Status.Conditions = make([]cmapi.CertificateRequestCondition, len(cr.Status.Conditions))
		for i, c := range cr.Status.Conditions {
			slim.Status.Conditions[i] = cmapi.CertificateRequestCondition{
				Type: cmapi.CertificateRequestConditionType(intern(string(c.Type))), Status: cmmeta.ConditionStatus(intern(string(c.Status))),
				Reason: intern(c.Reason)}
		}
	}
	return slim, nil
}

// slimCertificateSigningRequest keeps, of a Kubernetes CertificateSigningRequest for another signer
// or a finished one of ours, its name, signer name, condition types, statuses and reasons, and that
// it has a certificate (what the signer-name index, the issuer watch and csrIsFinished read): the
// cache holds every request of the cluster, node client and serving certificates among them, a
// few per node and renewal. An unfinished request for pq-issuer's signers stays whole: it is what
// gets signed.
func slimCertificateSigningRequest(obj any) (any, error) {
	csr, ok := obj.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return obj, nil
	}
	csr.ManagedFields = nil
	if _, _, ours := issuerOfSigner(csr.Spec.SignerName); ours && !csrIsFinished(csr) {
		return csr, nil
	}
	slim := &certificatesv1.CertificateSigningRequest{
		TypeMeta:   csr.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Name: csr.Name, UID: csr.UID, ResourceVersion: csr.ResourceVersion},
		Spec:       certificatesv1.CertificateSigningRequestSpec{SignerName: intern(csr.Spec.SignerName)},
	}
	if len(csr.Status.Certificate) > 0 {
		// Nothing reads a cached certificate; the marker only says there is one.
		slim.Status.Certificate = []byte(slimmedCertificate)
	}
	if len(csr.Status.Conditions) > 0 {
		slim.Status.Conditions = make([]certificatesv1.CertificateSigningRequestCondition, len(csr.Status.Conditions))
		for i, c := range csr.Status.Conditions {
			slim.Status.Conditions[i] = certificatesv1.CertificateSigningRequestCondition{
				Type: certificatesv1.RequestConditionType(intern(string(c.Type))), Status: corev1.ConditionStatus(intern(string(c.Status))),
				Reason: intern(c.Reason)}
		}
	}
	return slim, nil
}

// slimPodCertificateRequest keeps, of a PodCertificateRequest for another signer or an answered one
// of ours, its name, namespace, signer name and condition types, statuses and reasons (what the
// signer-name index, the issuer watch and pcrIsFinished read): every pod of the cluster that mounts
// a podCertificate volume has requests, with a stub CSR and, once issued, a chain of up to 100 KiB.
// An unanswered request for pq-issuer's signers stays whole: it is what gets signed.
func slimPodCertificateRequest(obj any) (any, error) {
	pcr, ok := obj.(*certificatesv1.PodCertificateRequest)
	if !ok {
		return obj, nil
	}
	pcr.ManagedFields = nil
	if _, _, ours := issuerOfSigner(pcr.Spec.SignerName); ours && !pcrIsFinished(pcr) {
		return pcr, nil
	}
	slim := &certificatesv1.PodCertificateRequest{
		TypeMeta:   pcr.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Namespace: pcr.Namespace, Name: pcr.Name, UID: pcr.UID, ResourceVersion: pcr.ResourceVersion},
		Spec:       certificatesv1.PodCertificateRequestSpec{SignerName: intern(pcr.Spec.SignerName)},
	}
	if len(pcr.Status.Conditions) > 0 {
		slim.Status.Conditions = make([]metav1.Condition, len(pcr.Status.Conditions))
		for i, c := range pcr.Status.Conditions {
			slim.Status.Conditions[i] = metav1.Condition{Type: intern(c.Type), Status: metav1.ConditionStatus(intern(string(c.Status))), Reason: intern(c.Reason)}
		}
	}
	return slim, nil
}

// slimmedCertificate stands for the certificate of a slimmed CertificateSigningRequest.
const slimmedCertificate = "slimmed by pq-issuer's cache"

// slimSecretMetadata keeps of a CA Secret's metadata what the issuer watch and CASource read: name,
// namespace, UID, resourceVersion and the CA Secret label, without the annotations and other labels
// tools such as kubectl apply leave.
func slimSecretMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	slim := metav1.ObjectMeta{Name: m.Name, Namespace: intern(m.Namespace), UID: m.UID, ResourceVersion: m.ResourceVersion}
	if v, ok := m.Labels[v1alpha1.CASecretLabel]; ok {
		slim.Labels = map[string]string{v1alpha1.CASecretLabel: intern(v)}
	}
	m.ObjectMeta = slim
	m.APIVersion, m.Kind = intern(m.APIVersion), intern(m.Kind)
	return m, nil
}

// intern shares one copy of strings that repeat across thousands of cached objects (namespaces,
// issuer names, condition reasons): the decoder allocates each anew.
func intern(s string) string { return unique.Make(s).Value() }

// finishedByCondition is isFinished without looking at the certificate, so that a request whose
// certificate the cache dropped still reads as finished.
func finishedByCondition(cr *cmapi.CertificateRequest) bool {
	// InvalidRequest=True is a signer's verdict that the request can never be signed: cert-manager
	// fails the issuance on it and its own issuers stop there. pq-issuer does the same: no signature,
	// no status of its own over that verdict, no event.
	if cr.Status.FailureTime != nil || apiutil.CertificateRequestHasInvalidRequest(cr) {
		return true
	}
	ready := apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
	return ready != nil && (ready.Reason == cmapi.CertificateRequestReasonIssued ||
		ready.Reason == cmapi.CertificateRequestReasonFailed || ready.Reason == cmapi.CertificateRequestReasonDenied)
}

package controllers

import (
	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
)

// slimCertificateRequest is the cache transform of CertificateRequests. The informer holds every
// request of the cluster, most of them finished or for other issuers; a request with its CSR,
// certificate and CA is 10-20 KB (an ML-DSA-65 signature alone is 3,309 bytes), so at 10,000
// requests the full objects would dominate the controller's memory. Kept: metadata, issuerRef and
// conditions (what the index, the issuer watch and isFinished read), and the whole object of a
// pending request for our issuers, which is what gets signed.
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
	cr.Spec.Request = nil
	cr.Status.Certificate, cr.Status.CA = nil, nil
	return cr, nil
}

// finishedByCondition is isFinished without looking at the certificate, so that a request whose
// certificate the cache dropped still reads as finished.
func finishedByCondition(cr *cmapi.CertificateRequest) bool {
	if cr.Status.FailureTime != nil {
		return true
	}
	ready := apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
	return ready != nil && (ready.Reason == cmapi.CertificateRequestReasonIssued ||
		ready.Reason == cmapi.CertificateRequestReasonFailed || ready.Reason == cmapi.CertificateRequestReasonDenied)
}

package controllers

import (
	"crypto/x509"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// templateFromRequest turns a request into a certificate template with cert-manager's own helpers,
// so duration, usages and isCA mean exactly what they mean for cert-manager's CA issuer. csr has
// been checked by signer.ParseCSR (size, key policy, proof of possession). The validity starts at
// now, the reconciler's clock.
func templateFromRequest(cr *cmapi.CertificateRequest, csr *x509.CertificateRequest, now time.Time) (*x509.Certificate, error) {
	keyUsage, extKeyUsage, err := pki.KeyUsagesForCertificateOrCertificateRequest(cr.Spec.Usages, cr.Spec.IsCA)
	if err != nil {
		return nil, err
	}
	return pki.CertificateTemplateFromCSR(csr,
		overrideDuration(now, apiutil.DefaultCertDuration(cr.Spec.Duration)),
		pki.CertificateTemplateValidateAndOverrideBasicConstraints(cr.Spec.IsCA, nil),
		pki.CertificateTemplateValidateAndOverrideKeyUsages(keyUsage, extKeyUsage),
	)
}

// overrideDuration is pki.CertificateTemplateOverrideDuration with the reconciler's clock instead of
// time.Now, which would disagree with the time ca.Sign checks the validity at.
func overrideDuration(now time.Time, duration time.Duration) pki.CertificateTemplateValidatorMutator {
	return func(_ *x509.CertificateRequest, cert *x509.Certificate) error {
		cert.NotBefore = now
		cert.NotAfter = now.Add(duration)
		return nil
	}
}

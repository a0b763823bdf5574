package signer

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"time"
)

// TrustAnchor is a root certificate as relying parties' trust stores hold it.
type TrustAnchor struct {
	// PEM is the certificate as one CERTIFICATE block without headers, re-encoded from its DER so
	// that the same certificate always compares equal.
	PEM string
	// Subject is the certificate's subject, e.g. "CN=Mesh Root,O=Example".
	Subject string
	// NotAfter is when the certificate expires: after it, it anchors nothing.
	NotAfter time.Time
}

// ParseTrustAnchor reads one PEM CA certificate (CA.TrustAnchorPEM, or a trust anchor published
// before). It refuses what a ClusterTrustBundle refuses: anything but exactly one CERTIFICATE
// block, and a certificate that is not a CA.
func ParseTrustAnchor(certPEM []byte) (TrustAnchor, error) {
	block, rest := pem.Decode(certPEM)
	if block == nil {
		return TrustAnchor{}, newError(ReasonInvalidCertificate, "the trust anchor is not PEM: expected '-----BEGIN CERTIFICATE-----'")
	}
	if block.Type != "CERTIFICATE" || len(block.Headers) > 0 {
		return TrustAnchor{}, newError(ReasonInvalidCertificate, "the trust anchor is a %q PEM block with %d headers; it must be a CERTIFICATE block without headers", block.Type, len(block.Headers))
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return TrustAnchor{}, newError(ReasonInvalidCertificate, "the trust anchor has data after its certificate; it must be one certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return TrustAnchor{}, newError(ReasonInvalidCertificate, "the trust anchor cannot be parsed: %v", err)
	}
	if !c.BasicConstraintsValid || !c.IsCA {
		return TrustAnchor{}, newError(ReasonNotACA, "the trust anchor %s is not a CA certificate (basicConstraints CA:TRUE is missing)", c.Subject)
	}
	return TrustAnchor{PEM: string(encodeCert(c.Raw)), Subject: c.Subject.String(), NotAfter: c.NotAfter}, nil
}

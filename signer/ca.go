package signer

import (
	"bytes"
	"crypto/mldsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"
)

// maxChainPEMSize bounds tls.crt: a chain of ten ML-DSA-87 certificates is
// about 100 KiB of PEM.
const maxChainPEMSize = 1 << 20

// CA is a loaded, checked ML-DSA certificate authority: the issuing
// certificate, the rest of its chain as found in tls.crt, and its key.
type CA struct {
	// Certificate is the issuing CA certificate (the first in tls.crt).
	Certificate *x509.Certificate
	// Chain is tls.crt in order: Certificate, then each issuer up to the root.
	Chain []*x509.Certificate
	Key   *Key
	// NotAfter is the earliest expiry in the chain: nothing issued may outlive it.
	NotAfter time.Time

	intermediatesPEM []byte // what follows the leaf in status.certificate
	trustAnchorPEM   []byte // status.ca
}

// Algorithm reports the CA key's parameter set.
func (ca *CA) Algorithm() Algorithm { return ca.Key.alg }

// TrustAnchorPEM is the certificate relying parties should trust: the root if
// tls.crt includes it, otherwise the topmost certificate it has.
func (ca *CA) TrustAnchorPEM() []byte { return ca.trustAnchorPEM }

// Describe summarises the CA for a status message.
func (ca *CA) Describe() string {
	return fmt.Sprintf("%s CA %s, expires %s", ca.Algorithm(), ca.Certificate.Subject, ca.NotAfter.UTC().Format(time.DateOnly))
}

// LoadCA parses and checks a CA from the PEM contents of a kubernetes.io/tls
// Secret. It accepts a CA whose key is ML-DSA, whose certificate is a CA
// with keyCertSign, that is valid at now, and whose chain (if any) is in
// order, each certificate signed by the next.
func LoadCA(certPEM, keyPEM []byte, now time.Time) (*CA, error) {
	chain, err := parseChain(certPEM)
	if err != nil {
		return nil, err
	}
	issuing := chain[0]
	if err := checkCACertificate(issuing, "the CA certificate", now); err != nil {
		return nil, err
	}
	// Only the issuing CA signs with pq-issuer; the CAs above it may use any
	// algorithm their relying parties accept.
	caPub, ok := issuing.PublicKey.(*mldsa.PublicKey)
	if !ok {
		return nil, newError(ReasonUnsupportedAlgorithm, "the CA certificate %s has a %s key; pq-issuer signs only with ML-DSA keys (create a CA with 'kubectl pq ca create')", issuing.Subject, spkiAlgorithmName(issuing.RawSubjectPublicKeyInfo, issuing.PublicKey))
	}
	if err := checkChain(chain, now); err != nil {
		return nil, err
	}

	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !key.matches(caPub) {
		return nil, newError(ReasonKeyMismatch, "the private key (%s) does not belong to the CA certificate %s (%s): tls.key and tls.crt must be a pair", key.alg, issuing.Subject, algorithmFromParams(caPub.Parameters()))
	}

	ca := &CA{Certificate: issuing, Chain: chain, Key: key, NotAfter: issuing.NotAfter}
	for _, c := range chain {
		if c.NotAfter.Before(ca.NotAfter) {
			ca.NotAfter = c.NotAfter
		}
	}
	// status.ca is the topmost certificate of tls.crt (the root when the
	// file includes it, as with cert-manager's CA issuer); the certificates
	// below it travel with the leaf in status.certificate.
	top := len(chain) - 1
	for _, c := range chain[:top] {
		ca.intermediatesPEM = append(ca.intermediatesPEM, encodeCert(c.Raw)...)
	}
	ca.trustAnchorPEM = encodeCert(chain[top].Raw)
	return ca, nil
}

func parseChain(certPEM []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(certPEM)) == 0 {
		return nil, newError(ReasonCertificateMissing, "the CA certificate is empty")
	}
	if len(certPEM) > maxChainPEMSize {
		return nil, newError(ReasonInvalidCertificate, "the CA certificate file is %d bytes, more than the %d-byte limit", len(certPEM), maxChainPEMSize)
	}
	var chain []*x509.Certificate
	rest := certPEM
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, newError(ReasonInvalidCertificate, "the CA certificate file has a %q PEM block at position %d; it must hold only CERTIFICATE blocks", block.Type, len(chain)+1)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, newError(ReasonInvalidCertificate, "certificate %d in the CA certificate file cannot be parsed: %v", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if len(chain) == 0 {
		return nil, newError(ReasonInvalidCertificate, "the CA certificate is not PEM: expected '-----BEGIN CERTIFICATE-----'")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, newError(ReasonInvalidCertificate, "the CA certificate file has data that is not PEM after certificate %d", len(chain))
	}
	return chain, nil
}

// ValidAt reports whether every certificate of the chain is valid at now,
// for a CA loaded earlier and kept while its Secret is unchanged.
func (ca *CA) ValidAt(now time.Time) error {
	for i, c := range ca.Chain {
		what := "the CA certificate"
		if i > 0 {
			what = fmt.Sprintf("chain certificate %d", i+1)
		}
		if err := checkValidity(c, what, now); err != nil {
			return err
		}
	}
	return nil
}

// checkCACertificate checks that c can sign certificates today. what names
// it in messages.
func checkCACertificate(c *x509.Certificate, what string, now time.Time) error {
	if oid := spkiOID(c.RawSubjectPublicKeyInfo); isHashMLDSA(oid) {
		return newError(ReasonHashMLDSA, "%s %s has a HashML-DSA key (%s), which RFC 9881 §8.3 forbids in certificates", what, c.Subject, oid)
	}
	if !c.BasicConstraintsValid || !c.IsCA {
		return newError(ReasonNotACA, "%s %s is not a CA certificate (basicConstraints CA:TRUE is missing)", what, c.Subject)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return newError(ReasonNotACA, "%s %s may not sign certificates: its key usage lacks keyCertSign", what, c.Subject)
	}
	return checkValidity(c, what, now)
}

func checkValidity(c *x509.Certificate, what string, now time.Time) error {
	if now.Before(c.NotBefore) {
		return newError(ReasonNotYetValid, "%s %s is not valid until %s", what, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return newError(ReasonExpired, "%s %s expired at %s; renew the CA (in Kubernetes: update its Secret)", what, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkChain checks that each certificate is issued by the next one and
// that no pathLen constraint forbids the CAs below it, so every leaf we
// issue verifies.
func checkChain(chain []*x509.Certificate, now time.Time) error {
	for i := 1; i < len(chain); i++ {
		child, parent := chain[i-1], chain[i]
		if err := checkCACertificate(parent, fmt.Sprintf("chain certificate %d", i+1), now); err != nil {
			return err
		}
		if err := child.CheckSignatureFrom(parent); err != nil {
			return newError(ReasonBrokenChain, "certificate %d (%s) in the CA certificate file is not signed by certificate %d (%s): list the CA certificate first, then each issuer up to the root (%v)", i, child.Subject, i+1, parent.Subject, err)
		}
		if limit, ok := maxPathLen(parent); ok && i > limit {
			return newError(ReasonBrokenChain, "certificate %d (%s) allows %d intermediate CA(s) below it (pathLen), but the CA certificate file has %d: certificates issued from it would not verify", i+1, parent.Subject, limit, i)
		}
	}
	return nil
}

// maxPathLen reports a CA's pathLen constraint, if it has one.
func maxPathLen(c *x509.Certificate) (int, bool) {
	if c.MaxPathLen > 0 || (c.MaxPathLen == 0 && c.MaxPathLenZero) {
		return c.MaxPathLen, true
	}
	return 0, false
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

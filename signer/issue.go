package signer

import (
	"crypto"
	"crypto/ed25519"
	"crypto/mldsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
)

// Request is what the CA is asked to sign.
type Request struct {
	// Template carries subject, SANs, key usages, isCA and validity, e.g.
	// from cert-manager's pki.CertificateTemplateFromCertificateRequest or
	// TemplateFromCSR. It is copied, never modified.
	Template *x509.Certificate
	// PublicKey is the subject's key, from a CSR checked by ParseCSR.
	PublicKey crypto.PublicKey
	// MaxDuration caps the validity; zero means only the CA's expiry caps it.
	MaxDuration time.Duration
	// AllowCA permits issuing CA certificates. Off by default: a workload
	// issuer that mints sub-CAs lets any requester issue for any name.
	AllowCA bool
}

// Cap says why NotAfter is earlier than requested.
type Cap string

const (
	CapNone        Cap = ""
	CapMaxDuration Cap = "MaxDuration"
	CapCAExpiry    Cap = "CAExpiry"
)

// Issued is a signed certificate with everything a caller needs to publish
// it and to tell the user what was adjusted.
type Issued struct {
	Certificate *x509.Certificate
	// ChainPEM is the leaf followed by the intermediates (status.certificate).
	ChainPEM []byte
	// CAPEM is the trust anchor (status.ca).
	CAPEM []byte
	// DroppedKeyUsages are the usages removed because the subject key can
	// only sign (RFC 9881 §5 for ML-DSA, RFC 8410 §5 for Ed25519).
	DroppedKeyUsages x509.KeyUsage
	// Capped says whether and why NotAfter was shortened.
	Capped Cap
}

// encipherUsages cannot apply to a signature-only key, which can neither
// encipher nor agree keys.
const encipherUsages = x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment |
	x509.KeyUsageKeyAgreement | x509.KeyUsageEncipherOnly | x509.KeyUsageDecipherOnly

// signOnlyRule names the rule that forbids encipherUsages for pub's
// algorithm, or "" when the algorithm may use them. cert-manager puts
// "key encipherment" in its default usages whatever the key type.
func signOnlyRule(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *mldsa.PublicKey:
		return "RFC 9881 §5 forbids it for ML-DSA keys, which only sign"
	case ed25519.PublicKey:
		return "RFC 8410 §5 forbids it for Ed25519 keys, which only sign"
	}
	return ""
}

// Sign issues a certificate for req, signed by the CA key with hedged
// ML-DSA, and checks the result before returning it.
func (ca *CA) Sign(req Request, now time.Time) (*Issued, error) {
	if req.Template == nil {
		return nil, errors.New("signer: request has no template")
	}
	if err := checkPublicKey(req.PublicKey, nil); err != nil {
		return nil, err
	}
	tmpl := *req.Template
	out := &Issued{}

	if tmpl.IsCA && !req.AllowCA {
		return nil, newError(ReasonPolicyViolation, "the request asks for a CA certificate (isCA: true), which this issuer does not sign")
	}
	// A leaf that names nobody authenticates nobody; cert-manager's pki helpers would sign it.
	if !tmpl.IsCA && len(tmpl.DNSNames)+len(tmpl.IPAddresses)+len(tmpl.URIs)+len(tmpl.EmailAddresses) == 0 && tmpl.Subject.CommonName == "" {
		return nil, newError(ReasonPolicyViolation, "the request names nobody: it has no common name and no DNS, IP, URI or email SAN; add the workload's names")
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now
	}
	if !tmpl.NotAfter.After(tmpl.NotBefore) {
		return nil, newError(ReasonPolicyViolation, "the requested validity is empty (notAfter %s is not after notBefore %s); request a positive duration",
			tmpl.NotAfter.UTC().Format(time.RFC3339), tmpl.NotBefore.UTC().Format(time.RFC3339))
	}
	if tmpl.NotBefore.Before(ca.Certificate.NotBefore) {
		tmpl.NotBefore = ca.Certificate.NotBefore
	}
	if req.MaxDuration > 0 {
		if limit := tmpl.NotBefore.Add(req.MaxDuration); tmpl.NotAfter.After(limit) {
			tmpl.NotAfter, out.Capped = limit, CapMaxDuration
		}
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter, out.Capped = ca.NotAfter, CapCAExpiry
	}
	if !tmpl.NotAfter.After(now) {
		return nil, newError(ReasonPolicyViolation, "the certificate would already be expired (notAfter %s)", tmpl.NotAfter.UTC().Format(time.RFC3339))
	}

	if signOnlyRule(req.PublicKey) != "" {
		out.DroppedKeyUsages = tmpl.KeyUsage & encipherUsages
		tmpl.KeyUsage &^= encipherUsages
	}

	serial, err := randomSerial(rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	ski, err := subjectKeyID(req.PublicKey)
	if err != nil {
		return nil, err
	}
	tmpl.SubjectKeyId = ski
	tmpl.AuthorityKeyId = nil // crypto/x509 takes it from the CA's SKI

	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.Certificate, req.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	cert, err := ca.checkIssued(der, &tmpl, req.PublicKey)
	if err != nil {
		return nil, err
	}
	out.Certificate = cert
	out.ChainPEM = append(encodeCert(der), ca.intermediatesPEM...)
	out.CAPEM = ca.trustAnchorPEM
	return out, nil
}

// checkIssued parses the certificate back and checks it says what was asked.
// crypto/x509.CreateCertificate has already verified the ML-DSA signature
// over these TBS bytes with the standard library; here circl, the other
// implementation, verifies the parsed bytes, which costs a seventh of a
// second standard-library verification and also catches a fault in either.
func (ca *CA) checkIssued(der []byte, tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("signer: the issued certificate does not parse: %w", err)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	switch {
	case !ca.Key.verify(cert.RawTBSCertificate, cert.Signature):
		return nil, errors.New("signer: the issued certificate's signature does not verify")
	case !pub.(equaler).Equal(cert.PublicKey):
		return nil, errors.New("signer: the issued certificate carries the wrong public key")
	case cert.SerialNumber.Cmp(tmpl.SerialNumber) != 0, !cert.NotAfter.Equal(tmpl.NotAfter.Truncate(time.Second)),
		string(cert.RawIssuer) != string(ca.Certificate.RawSubject):
		return nil, errors.New("signer: the issued certificate differs from its template")
	case cert.KeyUsage&encipherUsages != 0 && signOnlyRule(cert.PublicKey) != "":
		return nil, errors.New("signer: the issued certificate gives a signature-only key an encipherment usage")
	}
	return cert, nil
}

// randomSerial returns a positive serial with 128 bits of entropy (RFC 5280
// allows 20 octets; CA/B Forum asks for at least 64 random bits).
func randomSerial(r io.Reader) (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(r, limit)
		if err != nil {
			return nil, fmt.Errorf("generating a serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID is RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256
// of the subjectPublicKey bits.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	bits, err := spkiKeyBits(spki)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(bits)
	return sum[:20], nil
}

// KeyUsageNames lists the names of the usages in ku, for messages.
func KeyUsageNames(ku x509.KeyUsage) []string {
	var names []string
	for _, u := range keyUsages {
		if ku&u.usage != 0 {
			names = append(names, u.rfcName)
		}
	}
	return names
}

// Notes are the user-facing sentences about what was adjusted, for an event.
func (i *Issued) Notes() []string {
	var notes []string
	if i.DroppedKeyUsages != 0 {
		notes = append(notes, fmt.Sprintf("Removed key usage %s: %s", strings.Join(KeyUsageNames(i.DroppedKeyUsages), ", "), signOnlyRule(i.Certificate.PublicKey)))
	}
	switch i.Capped {
	case CapMaxDuration:
		notes = append(notes, fmt.Sprintf("Validity shortened to the issuer's maxDuration: notAfter %s", i.Certificate.NotAfter.UTC().Format(time.RFC3339)))
	case CapCAExpiry:
		notes = append(notes, fmt.Sprintf("Validity shortened to the CA's expiry: notAfter %s; renew the CA soon", i.Certificate.NotAfter.UTC().Format(time.RFC3339)))
	}
	return notes
}

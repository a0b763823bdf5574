package signer

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"
)

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
	// DroppedKeyUsages are the usages removed because the subject key
	// cannot serve them (see keyProfiles).
	DroppedKeyUsages x509.KeyUsage
	// Capped says whether and why NotAfter was shortened.
	Capped Cap
}

// Issue builds the certificate req asks for within pol (see build) and signs it with the CA key,
// hedged ML-DSA; the result is parsed back and checked before it is returned. It is the only way
// pq-issuer makes a leaf, whichever path the request came by.
func (ca *CA) Issue(req LeafRequest, pol Policy, now time.Time) (*Issued, error) {
	tmpl, out, err := ca.build(req, &pol, now)
	if err != nil {
		return nil, err
	}
	pub := req.CSR.PublicKey
	if tmpl.SerialNumber, err = randomSerial(rand.Reader); err != nil {
		return nil, err
	}
	if tmpl.SubjectKeyId, err = subjectKeyID(pub); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing the certificate: %w", err)
	}
	cert, err := ca.checkIssued(der, tmpl, pub)
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
	case cert.KeyUsage&^profileOf(keyFamily(pub)).usages != 0, cert.IsCA, string(cert.RawSubject) != string(tmpl.RawSubject):
		return nil, errors.New("signer: the issued certificate has a usage its key cannot serve, is a CA, or has another subject")
	}
	// Only the extensions the builder decides: no request can smuggle one in.
	for _, ext := range cert.Extensions {
		if !slices.ContainsFunc(leafExtensions, ext.Id.Equal) {
			return nil, fmt.Errorf("signer: the issued certificate carries extension %s, which the builder never adds", ext.Id)
		}
		if ext.Id.Equal(oidSubjectAltName) && (len(tmpl.ExtraExtensions) != 1 || string(ext.Value) != string(tmpl.ExtraExtensions[0].Value)) {
			return nil, errors.New("signer: the issued certificate's SANs differ from the ones built")
		}
	}
	return cert, nil
}

// leafExtensions are the only extensions a leaf has: SKI, key usage, SAN, basic constraints, AKI
// and extended key usage.
var leafExtensions = []asn1.ObjectIdentifier{
	{2, 5, 29, 14}, {2, 5, 29, 15}, oidSubjectAltName, {2, 5, 29, 19}, {2, 5, 29, 35}, {2, 5, 29, 37},
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
		notes = append(notes, fmt.Sprintf("Removed key usage %s: %s", strings.Join(KeyUsageNames(i.DroppedKeyUsages), ", "), profileOf(keyFamily(i.Certificate.PublicKey)).rule))
	}
	switch i.Capped {
	case CapMaxDuration:
		notes = append(notes, fmt.Sprintf("Validity shortened to the issuer's maximum duration: notAfter %s", i.Certificate.NotAfter.UTC().Format(time.RFC3339)))
	case CapCAExpiry:
		notes = append(notes, fmt.Sprintf("Validity shortened to the CA's expiry: notAfter %s; renew the CA soon", i.Certificate.NotAfter.UTC().Format(time.RFC3339)))
	}
	return notes
}

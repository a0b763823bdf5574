package signer

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/mldsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
)

// MaxCSRSize bounds a PEM CSR. The largest legitimate one (ML-DSA-87 key and
// signature, many SANs) is far below it.
const MaxCSRSize = 64 << 10

// RSA key sizes we sign: below the minimum is weak, above the maximum is a
// denial-of-service vector for every verifier.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// ParseCSR decodes a PEM certificate signing request and proves possession
// of its private key by verifying its signature. It accepts RSA (2048-8192
// bits), ECDSA P-256/P-384/P-521, Ed25519 and ML-DSA-44/65/87 keys.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > MaxCSRSize {
		return nil, newError(ReasonInvalidCSR, "the CSR is %d bytes, more than the %d-byte limit", len(data), MaxCSRSize)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, newError(ReasonInvalidCSR, "the CSR is not PEM: expected '-----BEGIN CERTIFICATE REQUEST-----'")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, newError(ReasonInvalidCSR, "the CSR PEM block is %q, expected \"CERTIFICATE REQUEST\"", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, newError(ReasonInvalidCSR, "the CSR has data after its PEM block; send exactly one CERTIFICATE REQUEST")
	}
	return ParseCSRDER(block.Bytes)
}

// ParseCSRDER is ParseCSR for a DER request, such as a PodCertificateRequest's stubPKCS10Request.
func ParseCSRDER(der []byte) (*x509.CertificateRequest, error) {
	if len(der) > MaxCSRSize {
		return nil, newError(ReasonInvalidCSR, "the CSR is %d bytes, more than the %d-byte limit", len(der), MaxCSRSize)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, newError(ReasonInvalidCSR, "the CSR cannot be parsed: %v", err)
	}
	if err := checkPublicKey(csr.PublicKey, csr.RawSubjectPublicKeyInfo); err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, newError(ReasonBadCSRSignature, "the CSR's %s signature does not verify with its own public key, so it does not prove possession of the private key (tampered or corrupted request): %v", csr.SignatureAlgorithm, err)
	}
	return csr, nil
}

// checkPublicKey enforces the key types and sizes we sign. rawSPKI names
// algorithms that crypto/x509 does not parse (such as HashML-DSA).
func checkPublicKey(pub crypto.PublicKey, rawSPKI []byte) error {
	if oid := spkiOID(rawSPKI); isHashMLDSA(oid) {
		return newError(ReasonHashMLDSA, "the public key is HashML-DSA (%s), which RFC 9881 §8.3 forbids in certificates; use a pure ML-DSA key", oid)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		if bits < minRSABits {
			return newError(ReasonWeakKey, "the RSA key is %d bits; the minimum is %d", bits, minRSABits)
		}
		if bits > maxRSABits {
			return newError(ReasonUnsupportedKey, "the RSA key is %d bits; the maximum is %d", bits, maxRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return newError(ReasonWeakKey, "the ECDSA curve %s is not accepted; use P-256, P-384 or P-521", k.Curve.Params().Name)
		}
	case ed25519.PublicKey, *mldsa.PublicKey:
	default:
		return newError(ReasonUnsupportedKey, "the public key is %s; pq-issuer signs RSA (2048-8192 bits), ECDSA P-256/P-384/P-521, Ed25519 and ML-DSA-44/65/87 keys", spkiAlgorithmName(rawSPKI, pub))
	}
	return nil
}

type subjectPublicKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// spkiOID returns the algorithm OID of a DER SubjectPublicKeyInfo, or nil.
func spkiOID(der []byte) asn1.ObjectIdentifier {
	var spki subjectPublicKeyInfo
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil
	}
	return spki.Algorithm.Algorithm
}

// spkiKeyBits returns the subjectPublicKey bits of a DER SubjectPublicKeyInfo.
func spkiKeyBits(der []byte) ([]byte, error) {
	var spki subjectPublicKeyInfo
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("parsing the public key: %w", err)
	}
	return spki.PublicKey.RightAlign(), nil
}

func spkiAlgorithmName(der []byte, pub crypto.PublicKey) string {
	if oid := spkiOID(der); oid != nil {
		return OIDName(oid)
	}
	return fmt.Sprintf("%T", pub)
}

// keyFamily names the family of a key that checkPublicKey accepted.
func keyFamily(pub crypto.PublicKey) KeyAlgorithm {
	switch pub.(type) {
	case *rsa.PublicKey:
		return KeyRSA
	case *ecdsa.PublicKey:
		return KeyECDSA
	case ed25519.PublicKey:
		return KeyEd25519
	}
	return KeyMLDSA
}

// Package signer is pq-issuer's certificate authority: it loads ML-DSA CA
// keys (RFC 9881), checks certificate signing requests and issues
// certificates. It has no Kubernetes imports so that the controllers, the
// kubectl-pq CLI and the tests share one implementation.
package signer

import (
	"crypto/mldsa"
	"encoding/asn1"
	"fmt"
	"strings"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
)

// Algorithm names an ML-DSA parameter set as FIPS 204 and RFC 9881 spell it.
type Algorithm string

const (
	MLDSA44 Algorithm = "ML-DSA-44"
	MLDSA65 Algorithm = "ML-DSA-65"
	MLDSA87 Algorithm = "ML-DSA-87"
)

// Algorithms lists the supported parameter sets, weakest first.
func Algorithms() []Algorithm { return []Algorithm{MLDSA44, MLDSA65, MLDSA87} }

// ParseAlgorithm accepts "ML-DSA-65", "mldsa65" and similar spellings.
func ParseAlgorithm(s string) (Algorithm, error) {
	norm := strings.ToUpper(strings.NewReplacer("-", "", "_", "", " ", "").Replace(s))
	for _, a := range Algorithms() {
		if strings.ReplaceAll(string(a), "-", "") == norm {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown algorithm %q: use one of ML-DSA-44, ML-DSA-65, ML-DSA-87", s)
}

// RFC 9881 §2: one OID names both the key and the signature algorithm.
var (
	oidMLDSA44 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 17}
	oidMLDSA65 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}
	oidMLDSA87 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 19}
	// HashML-DSA (FIPS 204 §5.4) must not appear in PKIX (RFC 9881 §8.3).
	oidHashMLDSA44 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 32}
	oidHashMLDSA65 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 33}
	oidHashMLDSA87 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 34}

	oidRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidECDSA   = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
)

func algorithmFromOID(oid asn1.ObjectIdentifier) (Algorithm, bool) {
	switch {
	case oid.Equal(oidMLDSA44):
		return MLDSA44, true
	case oid.Equal(oidMLDSA65):
		return MLDSA65, true
	case oid.Equal(oidMLDSA87):
		return MLDSA87, true
	}
	return "", false
}

func isHashMLDSA(oid asn1.ObjectIdentifier) bool {
	return oid.Equal(oidHashMLDSA44) || oid.Equal(oidHashMLDSA65) || oid.Equal(oidHashMLDSA87)
}

// OIDName names a key algorithm OID: the ML-DSA family (which OpenSSL 3.0
// and crypto/x509 before Go 1.27 cannot name) and the classical keys an
// operator is likely to paste by mistake.
func OIDName(oid asn1.ObjectIdentifier) string {
	if alg, ok := algorithmFromOID(oid); ok {
		return string(alg)
	}
	switch {
	case oid.Equal(oidHashMLDSA44):
		return "HashML-DSA-44 with SHA-512 (forbidden in certificates by RFC 9881 §8.3)"
	case oid.Equal(oidHashMLDSA65):
		return "HashML-DSA-65 with SHA-512 (forbidden in certificates by RFC 9881 §8.3)"
	case oid.Equal(oidHashMLDSA87):
		return "HashML-DSA-87 with SHA-512 (forbidden in certificates by RFC 9881 §8.3)"
	case oid.Equal(oidRSA):
		return "RSA"
	case oid.Equal(oidECDSA):
		return "ECDSA"
	case oid.Equal(oidEd25519):
		return "Ed25519"
	}
	return "OID " + oid.String()
}

// IsMLDSAFamily reports whether oid is pure ML-DSA or HashML-DSA.
func IsMLDSAFamily(oid asn1.ObjectIdentifier) bool {
	_, ok := algorithmFromOID(oid)
	return ok || isHashMLDSA(oid)
}

// params returns the standard library's parameter set, used for everything
// but the private-key operations.
func (a Algorithm) params() mldsa.Parameters {
	switch a {
	case MLDSA44:
		return mldsa.MLDSA44()
	case MLDSA87:
		return mldsa.MLDSA87()
	default:
		return mldsa.MLDSA65()
	}
}

func algorithmFromParams(p mldsa.Parameters) Algorithm { return Algorithm(p.String()) }

// scheme returns circl's implementation, the signing engine (about 4x faster
// than crypto/mldsa at signing on the hardware we measured).
func (a Algorithm) scheme() sign.Scheme {
	switch a {
	case MLDSA44:
		return mldsa44.Scheme()
	case MLDSA87:
		return mldsa87.Scheme()
	default:
		return mldsa65.Scheme()
	}
}

// signHedged signs with fresh randomness mixed in (FIPS 204 hedged variant),
// which circl only exposes per parameter set.
func (a Algorithm) signHedged(sk sign.PrivateKey, msg, ctx []byte) ([]byte, error) {
	sig := make([]byte, a.scheme().SignatureSize())
	var err error
	switch k := sk.(type) {
	case *mldsa44.PrivateKey:
		err = mldsa44.SignTo(k, msg, ctx, true, sig)
	case *mldsa65.PrivateKey:
		err = mldsa65.SignTo(k, msg, ctx, true, sig)
	case *mldsa87.PrivateKey:
		err = mldsa87.SignTo(k, msg, ctx, true, sig)
	default:
		return nil, fmt.Errorf("signer: %T is not a circl ML-DSA key", sk)
	}
	return sig, err
}

package signer

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"strings"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

func TestParseCSR(t *testing.T) {
	for _, kind := range []string{"RSA-2048", "ECDSA-P256", "ECDSA-P384", "ECDSA-P521", "Ed25519", "ML-DSA-44", "ML-DSA-65", "ML-DSA-87"} {
		t.Run("accepts "+kind, func(t *testing.T) {
			csr, err := ParseCSR(csrPEM(t, testkeys.New(t, kind)))
			if err != nil {
				t.Fatal(err)
			}
			if csr.URIs[0].String() != "spiffe://cluster.local/ns/demo/sa/api" {
				t.Fatalf("URI SAN %v", csr.URIs)
			}
		})
	}

	mldsa44 := csrDER(t, testkeys.New(t, "ML-DSA-44"))
	tests := []struct {
		name       string
		in         []byte
		wantReason Reason
		wantText   string
	}{
		{"empty", nil, ReasonInvalidCSR, "not PEM"},
		{"not PEM", []byte("garbage"), ReasonInvalidCSR, "not PEM"},
		{"DER instead of PEM", mldsa44, ReasonInvalidCSR, "not PEM"},
		{"wrong PEM type", derToPEM("CERTIFICATE", mldsa44), ReasonInvalidCSR, `"CERTIFICATE"`},
		{"two CSRs", append(derToPEM("CERTIFICATE REQUEST", mldsa44), derToPEM("CERTIFICATE REQUEST", mldsa44)...), ReasonInvalidCSR, "exactly one"},
		{"truncated DER", derToPEM("CERTIFICATE REQUEST", mldsa44[:len(mldsa44)/2]), ReasonInvalidCSR, "cannot be parsed"},
		{"1 MiB of junk", bytes.Repeat([]byte{'x'}, 1<<20), ReasonInvalidCSR, "limit"},
		{"tampered ML-DSA signature", derToPEM("CERTIFICATE REQUEST", flipLastByte(mldsa44)), ReasonBadCSRSignature, "does not verify"},
		{"tampered ECDSA subject", derToPEM("CERTIFICATE REQUEST", tamperSubject(t, csrDER(t, testkeys.New(t, "ECDSA-P256")))), ReasonBadCSRSignature, "possession"},
		{"RSA-1024", csrPEM(t, testkeys.New(t, "RSA-1024")), ReasonWeakKey, "1024 bits"},
		{"ECDSA P-224", csrPEM(t, testkeys.New(t, "ECDSA-P224")), ReasonWeakKey, "P-224"},
		{"HashML-DSA key", derToPEM("CERTIFICATE REQUEST", asHashMLDSA(mldsa44)), ReasonHashMLDSA, "RFC 9881"},
		{"unknown key algorithm", derToPEM("CERTIFICATE REQUEST", withSPKIOID(mldsa44, []byte{0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01})), ReasonUnsupportedKey, "OID 1.3.6.1.4.1.99999.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCSR(tc.in)
			wantReason(t, err, tc.wantReason)
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("message %q does not mention %q", err, tc.wantText)
			}
		})
	}
}

func flipLastByte(der []byte) []byte {
	out := append([]byte{}, der...)
	out[len(out)-1] ^= 0xff
	return out
}

// tamperSubject changes one letter of the CN, leaving the signature as it was.
func tamperSubject(t *testing.T, der []byte) []byte {
	i := bytes.Index(der, []byte("api.demo.svc"))
	if i < 0 {
		t.Fatal("CN not found in CSR")
	}
	out := append([]byte{}, der...)
	out[i] = 'b'
	return out
}

// asHashMLDSA relabels the SPKI of an ML-DSA-44 CSR as HashML-DSA-44: the
// first ML-DSA-44 OID in a CSR is the key's (the signature's comes last).
func asHashMLDSA(der []byte) []byte {
	return withSPKIOID(der, []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x20})
}

// withSPKIOID replaces the content of the ML-DSA-44 key OID with another
// 9-byte OID, so every DER length stays valid.
func withSPKIOID(der, oid []byte) []byte {
	mldsa44 := []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11}
	out := append([]byte{}, der...)
	copy(out[bytes.Index(der, mldsa44)+2:], oid)
	return out
}

func TestCSRWithoutSANsOrCN(t *testing.T) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"x"}}}, testkeys.New(t, "ECDSA-P256"))
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(derToPEM("CERTIFICATE REQUEST", der))
	if err != nil {
		t.Fatal(err)
	}
	_, err = newRoot(t, MLDSA65, 24*time.Hour).Issue(LeafRequest{CSR: csr, Duration: time.Hour}, Policy{}, fixedNow)
	wantReason(t, err, ReasonPolicyViolation)
}

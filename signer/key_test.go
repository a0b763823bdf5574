package signer

import (
	"bytes"
	"crypto"
	"crypto/mldsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign"

	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

func TestParsePrivateKeyVectors(t *testing.T) {
	rfc := "rfc9881-lamps-wg/"
	bc := func(level, format string) string {
		oids := map[string]string{"44": "17", "65": "18", "87": "19"}
		return "hackathon-bc/ml-dsa-" + level + "-2.16.840.1.101.3.4.3." + oids[level] + "_" + format + "_priv.der"
	}
	bcHash := func(level, format string) string {
		oids := map[string]string{"44": "32", "65": "33", "87": "34"}
		return "hackathon-bc/ml-dsa-" + level + "-with-sha512-2.16.840.1.101.3.4.3." + oids[level] + "_" + format + "_priv.der"
	}
	tests := []struct {
		name       string
		file       string
		der        bool
		wantAlg    Algorithm
		wantReason Reason
	}{
		{name: "RFC 44 seed", file: rfc + "ML-DSA-44-seed.priv.pem", wantAlg: MLDSA44},
		{name: "RFC 65 seed", file: rfc + "ML-DSA-65-seed.priv.pem", wantAlg: MLDSA65},
		{name: "RFC 87 seed", file: rfc + "ML-DSA-87-seed.priv.pem", wantAlg: MLDSA87},
		{name: "RFC 44 both", file: rfc + "ML-DSA-44-both.priv.pem", wantAlg: MLDSA44},
		{name: "RFC 65 both", file: rfc + "ML-DSA-65-both.priv.pem", wantAlg: MLDSA65},
		{name: "RFC 87 both", file: rfc + "ML-DSA-87-both.priv.pem", wantAlg: MLDSA87},
		{name: "RFC 44 expanded only", file: rfc + "ML-DSA-44-expanded.priv.pem", wantReason: ReasonUnsupportedKeyFormat},
		{name: "RFC 65 expanded only", file: rfc + "ML-DSA-65-expanded.priv.pem", wantReason: ReasonUnsupportedKeyFormat},
		{name: "RFC 87 expanded only", file: rfc + "ML-DSA-87-expanded.priv.pem", wantReason: ReasonUnsupportedKeyFormat},
		{name: "RFC bad-1 both inconsistent", file: rfc + "bad-ML-DSA-44-1.priv.pem", wantReason: ReasonKeyInconsistent},
		// bad-2 and bad-3 are expanded-only keys; we refuse that format before
		// any consistency question arises.
		{name: "RFC bad-2 expanded wrong tr", file: rfc + "bad-ML-DSA-44-2.priv.pem", wantReason: ReasonUnsupportedKeyFormat},
		{name: "RFC bad-3 expanded wrong t0", file: rfc + "bad-ML-DSA-44-3.priv.pem", wantReason: ReasonUnsupportedKeyFormat},
		{name: "BC 44 seed", file: bc("44", "seed"), der: true, wantAlg: MLDSA44},
		{name: "BC 65 seed", file: bc("65", "seed"), der: true, wantAlg: MLDSA65},
		{name: "BC 87 seed", file: bc("87", "seed"), der: true, wantAlg: MLDSA87},
		{name: "BC 44 both", file: bc("44", "both"), der: true, wantAlg: MLDSA44},
		{name: "BC 65 both", file: bc("65", "both"), der: true, wantAlg: MLDSA65},
		{name: "BC 87 both", file: bc("87", "both"), der: true, wantAlg: MLDSA87},
		{name: "BC 65 expanded only", file: bc("65", "expandedkey"), der: true, wantReason: ReasonUnsupportedKeyFormat},
		{name: "BC HashML-DSA-44 seed", file: bcHash("44", "seed"), der: true, wantReason: ReasonHashMLDSA},
		{name: "BC HashML-DSA-65 both", file: bcHash("65", "both"), der: true, wantReason: ReasonHashMLDSA},
		{name: "BC HashML-DSA-87 expanded", file: bcHash("87", "expandedkey"), der: true, wantReason: ReasonHashMLDSA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := readVector(t, tc.file)
			if tc.der {
				data = derToPEM("PRIVATE KEY", data)
			}
			key, err := ParsePrivateKeyPEM(data)
			if tc.wantReason != "" {
				wantReason(t, err, tc.wantReason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if key.Algorithm() != tc.wantAlg {
				t.Fatalf("algorithm %s, want %s", key.Algorithm(), tc.wantAlg)
			}
		})
	}
}

// The RFC keys are the keys of the RFC certificates and public keys.
func TestVectorKeysMatchVectorCertificates(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			block, _ := pem.Decode(readVector(t, "rfc9881-lamps-wg/"+string(alg)+".pub.pem"))
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			for _, format := range []string{"seed", "both"} {
				key, err := ParsePrivateKeyPEM(readVector(t, "rfc9881-lamps-wg/"+string(alg)+"-"+format+".priv.pem"))
				if err != nil {
					t.Fatal(err)
				}
				if !key.matches(pub) {
					t.Fatalf("%s key does not match %s.pub.pem", format, alg)
				}
				// Our seed export is byte-identical to the RFC's seed vector.
				out, err := key.MarshalPEM()
				if err != nil {
					t.Fatal(err)
				}
				if want := readVector(t, "rfc9881-lamps-wg/"+string(alg)+"-seed.priv.pem"); !bytes.Equal(out, want) {
					t.Fatalf("seed export differs from the RFC vector:\n%s\nwant\n%s", out, want)
				}
			}
		})
	}
}

func TestParsePrivateKeyErrors(t *testing.T) {
	seed := readVector(t, "rfc9881-lamps-wg/ML-DSA-65-seed.priv.pem")
	block, _ := pem.Decode(seed)
	tests := []struct {
		name       string
		in         []byte
		wantReason Reason
		wantText   string
	}{
		{"empty", nil, ReasonKeyMissing, "empty"},
		{"whitespace", []byte("\n  \n"), ReasonKeyMissing, "empty"},
		{"not PEM", []byte("hello"), ReasonInvalidKey, "not PEM"},
		{"oversized", bytes.Repeat([]byte("A"), maxKeyPEMSize+1), ReasonInvalidKey, "limit"},
		{"encrypted", derToPEM("ENCRYPTED PRIVATE KEY", block.Bytes), ReasonUnsupportedKeyFormat, "encrypted"},
		{"RSA PKCS#1", derToPEM("RSA PRIVATE KEY", []byte{1}), ReasonUnsupportedAlgorithm, "RSA"},
		{"EC SEC1", derToPEM("EC PRIVATE KEY", []byte{1}), ReasonUnsupportedAlgorithm, "EC"},
		{"certificate label", derToPEM("CERTIFICATE", block.Bytes), ReasonInvalidKey, `"CERTIFICATE"`},
		{"garbage DER", derToPEM("PRIVATE KEY", []byte{0x30, 0x03, 0x02, 0x01}), ReasonInvalidKey, "PKCS#8"},
		{"two keys", append(append([]byte{}, seed...), seed...), ReasonInvalidKey, "exactly one"},
		{"trailing data", derToPEM("PRIVATE KEY", append(append([]byte{}, block.Bytes...), 0)), ReasonInvalidKey, "trailing"},
		{"truncated seed", derToPEM("PRIVATE KEY", truncatedSeedKey(block.Bytes)), ReasonInvalidKey, "ML-DSA seed is 31 bytes, expected 32"},
		{"ECDSA PKCS#8", pkcs8Of(t, testkeys.New(t, "ECDSA-P256")), ReasonUnsupportedAlgorithm, "ECDSA"},
		{"Ed25519 PKCS#8", pkcs8Of(t, testkeys.New(t, "Ed25519")), ReasonUnsupportedAlgorithm, "Ed25519"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePrivateKeyPEM(tc.in)
			wantReason(t, err, tc.wantReason)
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("message %q does not mention %q", err, tc.wantText)
			}
		})
	}
}

// The label circl writes is accepted, since the DER inside is standard.
func TestParsePrivateKeyCirclLabel(t *testing.T) {
	block, _ := pem.Decode(readVector(t, "rfc9881-lamps-wg/ML-DSA-87-seed.priv.pem"))
	key, err := ParsePrivateKeyPEM(derToPEM("ML-DSA-87 PRIVATE KEY", block.Bytes))
	if err != nil || key.Algorithm() != MLDSA87 {
		t.Fatalf("got %v, %v", key, err)
	}
}

// truncatedSeedKey shortens the 32-byte seed inside a seed-format PKCS#8 to 31
// bytes, fixing up the DER lengths, so only the seed length is wrong.
func truncatedSeedKey(der []byte) []byte {
	out := append([]byte{}, der[:len(der)-1]...)
	out[1]--  // outer SEQUENCE
	out[19]-- // privateKey OCTET STRING
	out[21]-- // seed [0]
	return out
}

func pkcs8Of(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return derToPEM("PRIVATE KEY", der)
}

// Differential: circl (our signing engine) and crypto/mldsa agree in both
// directions, for every parameter set, including a context string.
func TestCirclAndStdlibAgree(t *testing.T) {
	msg := []byte("tbsCertificate stand-in")
	for _, alg := range Algorithms() {
		for _, ctx := range []string{"", "pq-issuer"} {
			t.Run(string(alg)+"/ctx="+ctx, func(t *testing.T) {
				key, err := GenerateKey(alg)
				if err != nil {
					t.Fatal(err)
				}
				std, err := mldsa.NewPrivateKey(alg.params(), key.seed)
				if err != nil {
					t.Fatal(err)
				}
				if !std.PublicKey().Equal(key.Public()) {
					t.Fatal("circl and crypto/mldsa derive different public keys from one seed")
				}
				opts := &mldsa.Options{Context: ctx}

				circlSig, err := key.Sign(nil, msg, opts)
				if err != nil {
					t.Fatal(err)
				}
				if err := mldsa.Verify(std.PublicKey(), msg, circlSig, opts); err != nil {
					t.Fatalf("crypto/mldsa rejects circl's signature: %v", err)
				}
				stdSig, err := std.Sign(nil, msg, opts)
				if err != nil {
					t.Fatal(err)
				}
				if !alg.scheme().Verify(key.pk, msg, stdSig, &sign.SignatureOpts{Context: ctx}) {
					t.Fatal("circl rejects crypto/mldsa's signature")
				}
				// Hedged: two signatures of one message differ.
				again, _ := key.Sign(nil, msg, opts)
				if bytes.Equal(again, circlSig) {
					t.Fatal("two signatures are identical: signing is not hedged")
				}
				// And a wrong message fails in both, under the same context, so
				// only the message differs from the checks above.
				if mldsa.Verify(std.PublicKey(), []byte("other"), circlSig, opts) == nil {
					t.Fatal("crypto/mldsa verified circl's signature for the wrong message")
				}
				if alg.scheme().Verify(key.pk, []byte("other"), stdSig, &sign.SignatureOpts{Context: ctx}) {
					t.Fatal("circl verified crypto/mldsa's signature for the wrong message")
				}
			})
		}
	}
}

func TestKeySignRefusesPrehash(t *testing.T) {
	key, err := GenerateKey(MLDSA44)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := key.Sign(nil, make([]byte, 32), crypto.SHA256); err == nil {
		t.Fatal("signing a SHA-256 digest succeeded; ML-DSA here must sign messages directly")
	}
}

package signer

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

func TestLoadCAVectors(t *testing.T) {
	bcTA := map[Algorithm]string{
		MLDSA44: "hackathon-bc/ml-dsa-44-2.16.840.1.101.3.4.3.17",
		MLDSA65: "hackathon-bc/ml-dsa-65-2.16.840.1.101.3.4.3.18",
		MLDSA87: "hackathon-bc/ml-dsa-87-2.16.840.1.101.3.4.3.19",
	}
	for _, alg := range Algorithms() {
		for _, format := range []string{"seed", "both"} {
			t.Run("RFC "+string(alg)+" "+format, func(t *testing.T) {
				ca, err := LoadCA(readVector(t, "rfc9881-lamps-wg/"+string(alg)+".crt.pem"),
					readVector(t, "rfc9881-lamps-wg/"+string(alg)+"-"+format+".priv.pem"), fixedNow)
				if err != nil {
					t.Fatal(err)
				}
				if ca.Algorithm() != alg || ca.Certificate.Subject.CommonName != "LAMPS WG" {
					t.Fatalf("loaded %s", ca.Describe())
				}
				signsAndVerifies(t, ca)
			})
			t.Run("BC "+string(alg)+" "+format, func(t *testing.T) {
				ca, err := LoadCA(derToPEM("CERTIFICATE", readVector(t, bcTA[alg]+"_ta.der")),
					derToPEM("PRIVATE KEY", readVector(t, bcTA[alg]+"_"+format+"_priv.der")), fixedNow)
				if err != nil {
					t.Fatal(err)
				}
				signsAndVerifies(t, ca)
			})
		}
	}
	t.Run("BC HashML-DSA trust anchor", func(t *testing.T) {
		_, err := LoadCA(derToPEM("CERTIFICATE", readVector(t, "hackathon-bc/ml-dsa-65-with-sha512-2.16.840.1.101.3.4.3.33_ta.der")),
			derToPEM("PRIVATE KEY", readVector(t, "hackathon-bc/ml-dsa-65-with-sha512-2.16.840.1.101.3.4.3.33_seed_priv.der")), fixedNow)
		wantReason(t, err, ReasonHashMLDSA)
	})
}

// signsAndVerifies issues an ECDSA leaf and checks it chains with crypto/x509.
func signsAndVerifies(t *testing.T, ca *CA) {
	t.Helper()
	iss, err := ca.Issue(leafRequest(t, testkeys.New(t, "ECDSA-P256"), time.Hour), Policy{}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	verifyChain(t, iss, fixedNow)
}

// verifyChain checks the published PEM as a relying party would.
func verifyChain(t *testing.T, iss *Issued, at time.Time) {
	t.Helper()
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(iss.CAPEM) {
		t.Fatal("status.ca holds no certificate")
	}
	rest := iss.ChainPEM
	var leaf *x509.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if leaf == nil {
			leaf = c
		} else {
			inters.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("issued chain does not verify with crypto/x509: %v", err)
	}
}

func TestLoadCA(t *testing.T) {
	root := newRoot(t, MLDSA65, 365*24*time.Hour)
	rootCert, rootKey := caPEM(t, root)
	_, interCert, interKey := newIntermediate(t, root, MLDSA44, 30*24*time.Hour)
	other := newRoot(t, MLDSA65, time.Hour)
	_, otherKey := caPEM(t, other)
	ecKey := testkeys.New(t, "ECDSA-P256")
	hour := certOptions{notBefore: fixedNow.Add(-time.Hour), notAfter: fixedNow.Add(time.Hour), isCA: true, keyUsage: x509.KeyUsageCertSign}
	with := func(f func(*certOptions)) certOptions { o := hour; f(&o); return o }
	selfSigned := func(o certOptions) []byte {
		return encodeCert(rawCert(t, "Hand Made", root.Key.Public(), nil, root.Key, o).Raw)
	}
	interBlock, _ := pem.Decode(interCert)

	tests := []struct {
		name       string
		cert, key  []byte
		wantReason Reason
		wantText   string
	}{
		{name: "root", cert: rootCert, key: rootKey},
		{name: "intermediate then root", cert: interCert, key: interKey},
		{name: "intermediate alone", cert: encodeCert(interBlock.Bytes), key: interKey},
		{name: "no certificate", key: rootKey, wantReason: ReasonCertificateMissing},
		{name: "no key", cert: rootCert, wantReason: ReasonKeyMissing},
		{name: "certificate not PEM", cert: []byte("garbage"), key: rootKey, wantReason: ReasonInvalidCertificate, wantText: "not PEM"},
		{name: "certificate PEM holds a key", cert: rootKey, key: rootKey, wantReason: ReasonInvalidCertificate, wantText: `"PRIVATE KEY"`},
		{name: "certificate DER corrupt", cert: derToPEM("CERTIFICATE", []byte{0x30, 0x01, 0x00}), key: rootKey, wantReason: ReasonInvalidCertificate, wantText: "cannot be parsed"},
		{name: "trailing garbage", cert: append(append([]byte{}, rootCert...), "junk"...), key: rootKey, wantReason: ReasonInvalidCertificate, wantText: "not PEM"},
		{name: "key of another CA", cert: rootCert, key: otherKey, wantReason: ReasonKeyMismatch, wantText: "does not belong"},
		{name: "key of another level", cert: interCert, key: rootKey, wantReason: ReasonKeyMismatch, wantText: "ML-DSA-65"},
		{name: "expanded-only key", cert: readVector(t, "rfc9881-lamps-wg/ML-DSA-65.crt.pem"), key: readVector(t, "rfc9881-lamps-wg/ML-DSA-65-expanded.priv.pem"), wantReason: ReasonUnsupportedKeyFormat, wantText: "seed"},
		{name: "not a CA", cert: selfSigned(with(func(o *certOptions) { o.isCA = false })), key: rootKey, wantReason: ReasonNotACA, wantText: "CA:TRUE"},
		{name: "no keyCertSign", cert: selfSigned(with(func(o *certOptions) { o.keyUsage = x509.KeyUsageDigitalSignature })), key: rootKey, wantReason: ReasonNotACA, wantText: "keyCertSign"},
		{name: "expired", cert: selfSigned(with(func(o *certOptions) { o.notAfter = fixedNow.Add(-time.Minute) })), key: rootKey, wantReason: ReasonExpired, wantText: "expired at 2026-11-23T11:59:00Z"},
		{name: "not yet valid", cert: selfSigned(with(func(o *certOptions) { o.notBefore = fixedNow.Add(time.Hour); o.notAfter = fixedNow.Add(2 * time.Hour) })), key: rootKey, wantReason: ReasonNotYetValid},
		{name: "classical CA", cert: encodeCert(rawCert(t, "EC Root", ecKey.Public(), nil, ecKey, hour).Raw), key: pkcs8Of(t, ecKey), wantReason: ReasonUnsupportedAlgorithm, wantText: "ECDSA"},
		{name: "chain out of order", cert: append(append([]byte{}, rootCert...), encodeCert(interBlock.Bytes)...), key: rootKey, wantReason: ReasonBrokenChain, wantText: "not signed by certificate 2"},
		{name: "chain with unrelated root", cert: append(encodeCert(interBlock.Bytes), encodeCert(other.Certificate.Raw)...), key: interKey, wantReason: ReasonBrokenChain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := LoadCA(tc.cert, tc.key, fixedNow)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatal(err)
				}
				signsAndVerifies(t, ca)
				return
			}
			wantReason(t, err, tc.wantReason)
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("message %q does not mention %q", err, tc.wantText)
			}
		})
	}
}

func TestLoadCAChecksEveryChainCertificateIsValid(t *testing.T) {
	root := newRoot(t, MLDSA65, 365*24*time.Hour)
	_, interCert, interKey := newIntermediate(t, root, MLDSA65, 24*time.Hour)
	// Two days on, the intermediate has expired but the root has not.
	_, err := LoadCA(interCert, interKey, fixedNow.Add(48*time.Hour))
	wantReason(t, err, ReasonExpired)
}

// A CA kept while its Secret is unchanged is checked again at each use.
func TestValidAt(t *testing.T) {
	root := newRoot(t, MLDSA65, 365*24*time.Hour)
	inter, _, _ := newIntermediate(t, root, MLDSA44, 24*time.Hour)
	for _, tc := range []struct {
		name string
		ca   *CA
		now  time.Time
		want Reason
	}{
		{name: "root now", ca: root, now: fixedNow},
		{name: "intermediate now", ca: inter, now: fixedNow},
		{name: "intermediate after it expired", ca: inter, now: fixedNow.Add(48 * time.Hour), want: ReasonExpired},
		{name: "root after it expired", ca: root, now: fixedNow.Add(366 * 24 * time.Hour), want: ReasonExpired},
		{name: "before the CA was valid", ca: root, now: fixedNow.Add(-time.Hour), want: ReasonNotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ca.ValidAt(tc.now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ValidAt: %v", err)
				}
				return
			}
			wantReason(t, err, tc.want)
		})
	}
}

func TestCAPublishedPEM(t *testing.T) {
	root := newRoot(t, MLDSA87, 365*24*time.Hour)
	inter, _, _ := newIntermediate(t, root, MLDSA65, 24*time.Hour)
	iss, err := inter.Issue(leafRequest(t, testkeys.New(t, "Ed25519"), time.Hour), Policy{}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(iss.CAPEM, encodeCert(root.Certificate.Raw)) {
		t.Fatal("status.ca is not the root")
	}
	if n := bytes.Count(iss.ChainPEM, []byte("BEGIN CERTIFICATE")); n != 2 {
		t.Fatalf("status.certificate has %d certificates, want leaf + intermediate", n)
	}
	if !inter.NotAfter.Equal(inter.Certificate.NotAfter) || !inter.NotAfter.Before(root.NotAfter) {
		t.Fatalf("CA NotAfter %s is not the earliest in the chain", inter.NotAfter)
	}
	verifyChain(t, iss, fixedNow)
}

func TestPathLen(t *testing.T) {
	root := newRoot(t, MLDSA65, 365*24*time.Hour)
	inter, interCert, _ := newIntermediate(t, root, MLDSA65, 24*time.Hour)
	// Our intermediates have pathLen 0: no CA may be made below them.
	_, _, err := inter.CreateIntermediate(CAOptions{Algorithm: MLDSA65, Subject: root.Certificate.Subject, Duration: time.Hour}, fixedNow)
	wantReason(t, err, ReasonPolicyViolation)

	// And a chain that breaks the constraint anyway is refused on load.
	sub := testkeys.New(t, "ML-DSA-44")
	subCert := rawCert(t, "Too Deep", sub.Public(), inter.Certificate, inter.Key,
		certOptions{notBefore: fixedNow.Add(-time.Hour), notAfter: fixedNow.Add(time.Hour), isCA: true, keyUsage: x509.KeyUsageCertSign})
	_, err = LoadCA(append(encodeCert(subCert.Raw), interCert...), pkcs8Of(t, sub), fixedNow)
	wantReason(t, err, ReasonBrokenChain)
	if !strings.Contains(err.Error(), "pathLen") {
		t.Fatalf("message %q does not name pathLen", err)
	}
}

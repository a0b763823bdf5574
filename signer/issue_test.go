package signer

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

func TestSign(t *testing.T) {
	day := 24 * time.Hour
	cas := map[Algorithm]*CA{}
	for _, alg := range Algorithms() {
		cas[alg] = newRoot(t, alg, 30*day)
	}
	allUsages := []string{"digital signature", "key encipherment", "data encipherment", "key agreement", "server auth", "client auth"}

	tests := []struct {
		name       string
		ca         Algorithm
		leaf       string
		duration   time.Duration
		usages     []string
		maxDur     time.Duration
		isCA       bool
		allowCA    bool
		nameless   bool
		wantReason Reason
		wantKU     x509.KeyUsage
		wantDrop   x509.KeyUsage
		wantCap    Cap
		wantValid  time.Duration
	}{
		{name: "ECDSA leaf under ML-DSA-44", ca: MLDSA44, leaf: "ECDSA-P256", duration: day, wantKU: x509.KeyUsageDigitalSignature, wantValid: day},
		{name: "ECDSA leaf under ML-DSA-65", ca: MLDSA65, leaf: "ECDSA-P256", duration: day, wantKU: x509.KeyUsageDigitalSignature, wantValid: day},
		{name: "ECDSA leaf under ML-DSA-87", ca: MLDSA87, leaf: "ECDSA-P256", duration: day, wantKU: x509.KeyUsageDigitalSignature, wantValid: day},
		{name: "RSA leaf keeps key encipherment", ca: MLDSA65, leaf: "RSA-2048", duration: day, usages: allUsages,
			wantKU: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageKeyAgreement, wantValid: day},
		{name: "ML-DSA leaf drops encipherment and agreement", ca: MLDSA65, leaf: "ML-DSA-65", duration: day, usages: allUsages,
			wantKU: x509.KeyUsageDigitalSignature, wantDrop: x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageKeyAgreement, wantValid: day},
		{name: "Ed25519 leaf drops encipherment (RFC 8410)", ca: MLDSA44, leaf: "Ed25519", duration: day, usages: allUsages,
			wantKU: x509.KeyUsageDigitalSignature, wantDrop: x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageKeyAgreement, wantValid: day},
		{name: "ML-DSA-87 leaf under ML-DSA-44", ca: MLDSA44, leaf: "ML-DSA-87", duration: day, wantKU: x509.KeyUsageDigitalSignature, wantValid: day},
		{name: "capped at maxDuration", ca: MLDSA65, leaf: "Ed25519", duration: 10 * day, maxDur: day, wantKU: x509.KeyUsageDigitalSignature, wantCap: CapMaxDuration, wantValid: day},
		{name: "capped at CA expiry", ca: MLDSA65, leaf: "Ed25519", duration: 90 * day, wantKU: x509.KeyUsageDigitalSignature, wantCap: CapCAExpiry, wantValid: 30 * day},
		{name: "isCA refused", ca: MLDSA65, leaf: "ECDSA-P256", duration: day, isCA: true, wantReason: ReasonPolicyViolation},
		{name: "isCA allowed by policy", ca: MLDSA65, leaf: "ECDSA-P256", duration: day, isCA: true, allowCA: true, wantKU: x509.KeyUsageDigitalSignature, wantValid: day},
		{name: "negative duration", ca: MLDSA65, leaf: "ECDSA-P256", duration: -time.Hour, wantReason: ReasonPolicyViolation},
		{name: "a leaf naming nobody", ca: MLDSA65, leaf: "ECDSA-P256", duration: day, nameless: true, wantReason: ReasonPolicyViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca := cas[tc.ca]
			req := leafRequest(t, testkeys.New(t, tc.leaf), time.Hour, tc.usages...)
			req.Template.NotAfter = req.Template.NotBefore.Add(tc.duration)
			req.Template.IsCA = tc.isCA
			if tc.nameless {
				req.Template.Subject, req.Template.DNSNames, req.Template.URIs = pkix.Name{}, nil, nil
				req.Template.IPAddresses, req.Template.EmailAddresses = nil, nil
			}
			req.MaxDuration, req.AllowCA = tc.maxDur, tc.allowCA
			before := *req.Template

			iss, err := ca.Sign(req, fixedNow)
			if !reflect.DeepEqual(before, *req.Template) {
				t.Fatal("Sign modified the caller's template")
			}
			if tc.wantReason != "" {
				wantReason(t, err, tc.wantReason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := iss.Certificate
			if c.KeyUsage != tc.wantKU || iss.DroppedKeyUsages != tc.wantDrop {
				t.Fatalf("key usage %v dropped %v, want %v dropped %v", KeyUsageNames(c.KeyUsage), KeyUsageNames(iss.DroppedKeyUsages), KeyUsageNames(tc.wantKU), KeyUsageNames(tc.wantDrop))
			}
			if iss.Capped != tc.wantCap {
				t.Fatalf("capped %q, want %q", iss.Capped, tc.wantCap)
			}
			if got := c.NotAfter.Sub(c.NotBefore); got.Round(time.Minute) != tc.wantValid.Round(time.Minute) {
				t.Fatalf("validity %s, want %s", got, tc.wantValid)
			}
			if c.NotAfter.After(ca.NotAfter) {
				t.Fatal("leaf outlives its CA")
			}
			if c.IsCA != tc.isCA || c.SignatureAlgorithm.String() != string(tc.ca) {
				t.Fatalf("isCA %v signature %s", c.IsCA, c.SignatureAlgorithm)
			}
			if len(c.SubjectKeyId) != 20 || !bytes.Equal(c.AuthorityKeyId, ca.Certificate.SubjectKeyId) {
				t.Fatalf("SKI %x AKI %x, CA SKI %x", c.SubjectKeyId, c.AuthorityKeyId, ca.Certificate.SubjectKeyId)
			}
			if c.URIs[0].String() != "spiffe://cluster.local/ns/demo/sa/api" || c.DNSNames[0] != "api.demo.svc" {
				t.Fatalf("SANs %v %v", c.URIs, c.DNSNames)
			}
			if err := c.CheckSignatureFrom(ca.Certificate); err != nil {
				t.Fatalf("crypto/x509 rejects the signature: %v", err)
			}
			verifyChain(t, iss, fixedNow)
		})
	}
}

func TestSignSerials(t *testing.T) {
	ca := newRoot(t, MLDSA44, time.Hour)
	seen := map[string]bool{}
	minBits := 128
	for range 200 {
		iss, err := ca.Sign(leafRequest(t, testkeys.New(t, "Ed25519"), time.Minute), fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		s := iss.Certificate.SerialNumber
		if s.Sign() <= 0 || len(s.Bytes()) > 20 {
			t.Fatalf("serial %x is not a positive integer of at most 20 octets", s)
		}
		if seen[s.String()] {
			t.Fatalf("serial %x issued twice", s)
		}
		seen[s.String()] = true
		minBits = min(minBits, s.BitLen())
	}
	// With 128 random bits, 200 draws all below 2^100 would be absurd.
	if minBits < 100 {
		t.Fatalf("a serial had only %d bits", minBits)
	}
}

func TestIssuedNotes(t *testing.T) {
	ca := newRoot(t, MLDSA65, 24*time.Hour)
	req := leafRequest(t, testkeys.New(t, "ML-DSA-65"), 48*time.Hour, "digital signature", "key encipherment", "server auth")
	iss, err := ca.Sign(req, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(iss.Notes(), "\n")
	for _, want := range []string{"Removed key usage keyEncipherment", "RFC 9881 §5", "Validity shortened to the CA's expiry"} {
		if !strings.Contains(notes, want) {
			t.Fatalf("notes %q lack %q", notes, want)
		}
	}
}

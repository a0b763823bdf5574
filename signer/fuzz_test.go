package signer

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/hostile"
	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

// vectorSeeds adds every file of a vector directory (PEM and DER) as a seed.
func vectorSeeds(f *testing.F, dir string, pemToDER bool) {
	files, err := filepath.Glob(filepath.Join(vectors, dir, "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no vectors in %s: %v", dir, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if block, _ := pem.Decode(b); block != nil && pemToDER {
			b = block.Bytes
		}
		f.Add(b)
	}
}

func FuzzParsePKCS8(f *testing.F) {
	vectorSeeds(f, "rfc9881-lamps-wg", true)
	vectorSeeds(f, "hackathon-bc", true)
	f.Fuzz(func(t *testing.T, der []byte) {
		key, err := ParsePKCS8(der)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		// Whatever we accept, we can write back and read again as the same key.
		out, err := key.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParsePrivateKeyPEM(out)
		if err != nil || !again.matches(key.Public()) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func FuzzParseCSR(f *testing.F) {
	for _, kind := range []string{"ECDSA-P256", "Ed25519", "ML-DSA-44", "ML-DSA-65", "ML-DSA-87"} {
		f.Add(csrPEM(f, testkeys.New(f, kind)))
	}
	vectorSeeds(f, "rfc9881-lamps-wg", false)
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("accepted a CSR whose signature does not verify: %v", err)
		}
	})
}

func FuzzLoadCA(f *testing.F) {
	vectorSeeds(f, "rfc9881-lamps-wg", false)
	key := readVector(f, "rfc9881-lamps-wg/ML-DSA-44-seed.priv.pem")
	f.Fuzz(func(t *testing.T, certPEM []byte) {
		ca, err := LoadCA(certPEM, key, fixedNow)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if !ca.Key.matches(ca.Certificate.PublicKey) || !ca.Certificate.IsCA {
			t.Fatal("accepted a CA that fails its own checks")
		}
	})
}

// FuzzIssue builds and signs, inside the fuzz function, a CSR from fuzzed fields (subject, one SAN
// of any GeneralName type, one extension of any OID, usages, duration, namespace, key type) and
// has the builder issue it under the default or a restricted policy. Whatever it signs must keep
// the builder's invariants; whatever it refuses must say why.
func FuzzIssue(f *testing.F) {
	ca := newRoot(f, MLDSA44, 10*365*24*time.Hour)
	keys := []crypto.Signer{testkeys.New(f, "ECDSA-P256"), testkeys.New(f, "Ed25519"), testkeys.New(f, "ML-DSA-44"), testkeys.New(f, "RSA-2048")}
	f.Add("api", "Example", byte(sanDNS), "api.demo.svc", "2.5.29.30", []byte{0x30, 0}, true, "digital signature,server auth", int64(24*3600), "demo", byte(0), false)
	f.Add("", "", byte(sanURI), "spiffe://cluster.local/ns/demo/sa/api", "1.2.3", []byte{}, false, "client auth,key encipherment", int64(3600), "demo", byte(2), true)
	f.Add("x", "system:masters", byte(sanOtherName), "\x06\x03*\x03\x04\xa0\x05\x0c\x03abc", "2.5.29.37", []byte{0x30, 0x03, 0x06, 0x01, 0x2a}, false, "any", int64(-1), "", byte(3), false)
	f.Add("CN\x00", "O", byte(sanIP), "\x0a\x00\x00\x01", "2.5.29.15", []byte{0x03, 0x02, 0x02, 0x04}, true, "cert sign", int64(1<<62), "other", byte(1), true)
	f.Fuzz(func(t *testing.T, cn, org string, sanTag byte, sanValue, extOID string, extValue []byte, critical bool, usages string, seconds int64, namespace string, keyIndex byte, restricted bool) {
		oid, err := parseFuzzOID(extOID)
		if err != nil {
			return
		}
		tmpl := &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: cn, Organization: []string{org}},
			ExtraExtensions: []pkix.Extension{
				hostile.SANExtension(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: int(sanTag % 9), IsCompound: sanTag%9 == sanOtherName || sanTag%9 == sanDirectoryName, Bytes: []byte(sanValue)}),
				{Id: oid, Critical: critical, Value: extValue},
			},
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, keys[int(keyIndex)%len(keys)])
		if err != nil {
			return // not a CSR crypto/x509 writes: nothing to issue
		}
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			return
		}
		pol := Policy{}
		if restricted {
			pol = Policy{DNSNames: []string{"*.{namespace}.svc"}, URIs: []string{"spiffe://cluster.local/ns/{namespace}/*"}, Usages: []string{"digital signature", "server auth", "client auth"}, MaxDuration: 48 * time.Hour}
		}
		req := LeafRequest{CSR: csr, Namespace: namespace, Duration: time.Duration(seconds) * time.Second, Usages: strings.Split(usages, ",")}
		iss, err := ca.Issue(req, pol, fixedNow)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("refused without a reason: %v", err)
			}
			return
		}
		checkLeafInvariants(t, iss.Certificate, &pol, req)
	})
}

// checkLeafInvariants is what the builder promises of every leaf, checked on the signed bytes.
func checkLeafInvariants(t *testing.T, c *x509.Certificate, pol *Policy, req LeafRequest) {
	t.Helper()
	for _, e := range c.Extensions {
		if !slices.ContainsFunc(leafExtensions, e.Id.Equal) {
			t.Fatalf("extension %s was copied into the leaf", e.Id)
		}
	}
	if c.IsCA || c.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 || len(c.UnknownExtKeyUsage) != 0 {
		t.Fatalf("CA %v, key usage %b, unknown EKUs %v", c.IsCA, c.KeyUsage, c.UnknownExtKeyUsage)
	}
	if c.KeyUsage&^profileOf(keyFamily(c.PublicKey)).usages != 0 {
		t.Fatalf("key usage %v for a %s key", KeyUsageNames(c.KeyUsage), keyFamily(c.PublicKey))
	}
	if slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) {
		t.Fatal("anyExtendedKeyUsage without the policy's leave")
	}
	if d := c.NotAfter.Sub(c.NotBefore); d < MinDuration || d > pol.maxDuration() || d > req.Duration {
		t.Fatalf("validity %s, requested %s, maximum %s", d, req.Duration, pol.maxDuration())
	}
	sans, err := parseSANs(c.Extensions)
	if err != nil {
		t.Fatalf("the leaf's own SANs do not pass the builder: %v", err)
	}
	if len(sans.otherNames) != 0 {
		t.Fatal("an otherName SAN without the policy naming its OID")
	}
	for _, u := range sans.uris {
		if isSPIFFE(u) && (len(sans.uris) != 1 || !strings.HasPrefix(u, "spiffe://cluster.local/ns/"+req.Namespace+"/")) {
			t.Fatalf("SPIFFE ID %q in %d URIs for namespace %q", u, len(sans.uris), req.Namespace)
		}
	}
	if pol.Restricted() {
		for _, d := range sans.dns {
			if !matchAny(pol.DNSNames, strings.ToLower(d), req.Namespace, '.') {
				t.Fatalf("DNS name %q outside the policy", d)
			}
		}
		if len(sans.ips)+len(sans.emails) != 0 {
			t.Fatal("IP or email SAN under a policy that lists none")
		}
	}
	if _, err := checkSubject(c.RawSubject, c.Subject, nil); err != nil {
		t.Fatalf("the leaf's subject does not pass the builder: %v", err)
	}
}

func parseFuzzOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, err
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 || oid[0] > 2 {
		return nil, errors.New("not an OID")
	}
	return oid, nil
}

package signer

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/hostile"
	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

// customCSR makes a parsed CSR from a template the test shapes freely.
func customCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSR(derToPEM("CERTIFICATE REQUEST", der))
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func dnsCSR(t testing.TB, key crypto.Signer, names ...string) *x509.CertificateRequest {
	gns := make([]asn1.RawValue, len(names))
	for i, n := range names {
		gns[i] = hostile.GeneralName(sanDNS, n)
	}
	return customCSR(t, key, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, gns...)}})
}

// TestIssue is the hostile-request table: what the builder does with each request, under which
// policy. A case either issues (and its certificate is checked) or names the rule it broke.
func TestIssue(t *testing.T) {
	day := 24 * time.Hour
	ca := newRoot(t, MLDSA65, 10*365*day)
	short := newRoot(t, MLDSA44, 30*day)
	ecdsa := testkeys.New(t, "ECDSA-P256")
	all := []string{"digital signature", "key encipherment", "data encipherment", "key agreement", "content commitment", "server auth", "client auth"}
	nameConstraints := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 30}, Critical: true, Value: []byte{0x30, 0x00}}
	smartcardEKU, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}, {1, 3, 6, 1, 5, 2, 3, 4}})
	keyCertSign, _ := asn1.Marshal(asn1.BitString{Bytes: []byte{0x06}, BitLength: 7})
	many := make([]string, 101)
	for i := range many {
		many[i] = "n" + strings.Repeat("x", i%5) + "-" + string(rune('a'+i%26)) + ".demo.svc"
	}
	var subject17 []hostile.Attribute
	for range 17 {
		subject17 = append(subject17, hostile.Attr(hostile.OIDOrgUnit, "team"))
	}

	tests := []struct {
		name      string
		ca        *CA
		csr       *x509.CertificateRequest // default: the CN + DNS + SPIFFE request of leafRequest
		key       string                   // default: ECDSA-P256
		namespace string                   // default: demo
		requester string                   // the Kubernetes user that created the request
		duration  time.Duration            // default: one day
		usages    []string                 // default: digital signature, server auth, client auth
		isCA      bool
		policy    Policy

		wantReason Reason
		wantText   string // in the error, or in the notes when issued
		wantKU     x509.KeyUsage
		wantEKU    []x509.ExtKeyUsage
		wantValid  time.Duration
		check      func(t *testing.T, c *x509.Certificate)
	}{
		// Usages by key type.
		{name: "ECDSA drops key encipherment (RFC 8813)", usages: all, wantKU: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyAgreement,
			wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, wantText: "Removed key usage keyEncipherment, dataEncipherment: RFC 8813 §3"},
		{name: "RSA drops key agreement", key: "RSA-2048", usages: all, wantKU: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
			wantText: "Removed key usage keyAgreement: RFC 3279"},
		{name: "Ed25519 only signs (RFC 8410)", key: "Ed25519", usages: all, wantKU: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, wantText: "RFC 8410 §5"},
		{name: "ML-DSA only signs (RFC 9881)", key: "ML-DSA-65", usages: all, wantKU: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, wantText: "RFC 9881 §5"},
		{name: "cert-manager's default usages on ECDSA", usages: nil, wantKU: x509.KeyUsageDigitalSignature, wantText: "Removed key usage keyEncipherment"},
		{name: "keyCertSign on a leaf", usages: []string{"digital signature", "cert sign"}, wantReason: ReasonPolicyViolation, wantText: "keyCertSign on a leaf"},
		{name: "unknown usage name", usages: []string{"smartcard logon"}, wantReason: ReasonPolicyViolation, wantText: `unknown usage "smartcard logon"`},
		{name: "any EKU without policy", usages: []string{"digital signature", "any"}, wantReason: ReasonPolicyViolation, wantText: `usage "any"`},
		{name: "any EKU allowed by policy", usages: []string{"digital signature", "any"}, policy: Policy{Usages: []string{"digital signature", "any"}},
			wantKU: x509.KeyUsageDigitalSignature, wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}},
		{name: "usage outside policy", policy: Policy{Usages: []string{"digital signature", "server auth"}}, wantReason: ReasonPolicyViolation, wantText: `usage "client auth" is not allowed`},
		{name: "CSR extensions never copied: EKU OIDs, name constraints, keyCertSign", csr: customCSR(t, ecdsa, &x509.CertificateRequest{
			DNSNames: []string{"api.demo.svc"},
			ExtraExtensions: []pkix.Extension{nameConstraints, {Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: smartcardEKU},
				{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: keyCertSign}},
		}), wantKU: x509.KeyUsageDigitalSignature, wantEKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			check: func(t *testing.T, c *x509.Certificate) {
				if len(c.Extensions) != 6 || len(c.UnknownExtKeyUsage) != 0 || len(c.PermittedDNSDomains)+len(c.ExcludedDNSDomains) != 0 || c.PermittedDNSDomainsCritical {
					t.Fatalf("extensions %d, unknown EKUs %v, name constraints %v", len(c.Extensions), c.UnknownExtKeyUsage, c.PermittedDNSDomains)
				}
			}},
		{name: "isCA", isCA: true, wantReason: ReasonPolicyViolation, wantText: "isCA: true"},

		// SANs.
		{name: "otherName without policy", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, hostile.GeneralName(sanDNS, "a.demo.svc"), hostile.UPN(t, "alice@corp.example"))}}),
			wantReason: ReasonPolicyViolation, wantText: "otherName SAN of type 1.3.6.1.4.1.311.20.2.3"},
		{name: "otherName allowed by policy", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, hostile.GeneralName(sanDNS, "a.demo.svc"), hostile.UPN(t, "alice@corp.example"))}}),
			policy: Policy{OtherNames: []asn1.ObjectIdentifier{hostile.OIDUPN}}, wantKU: x509.KeyUsageDigitalSignature,
			check: func(t *testing.T, c *x509.Certificate) {
				ext := extension(t, c, oidSubjectAltName)
				if !bytes.Contains(ext.Value, []byte("alice@corp.example")) || !ext.Critical || len(c.DNSNames) != 1 {
					t.Fatalf("SAN extension %x (critical %v), DNS %v", ext.Value, ext.Critical, c.DNSNames)
				}
			}},
		{name: "directoryName SAN", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, hostile.GeneralName(sanDNS, "a.demo.svc"),
			asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: sanDirectoryName, IsCompound: true, Bytes: hostile.RawSubject(t, hostile.Attr(hostile.OIDCommonName, "admin"))})}}),
			wantReason: ReasonPolicyViolation, wantText: "directoryName SAN"},
		{name: "registeredID SAN", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: sanRegisteredID, Bytes: []byte{0x2a, 0x03}})}}),
			wantReason: ReasonPolicyViolation, wantText: "registeredID SAN"},
		{name: "NUL in a DNS name", csr: dnsCSR(t, ecdsa, "api.demo.svc\x00.evil.example"), wantReason: ReasonPolicyViolation, wantText: "not an RFC 1123 host name"},
		{name: "ESC in a DNS name", csr: dnsCSR(t, ecdsa, "api\x1b[31m.demo.svc"), wantReason: ReasonPolicyViolation, wantText: "not an RFC 1123 host name"},
		{name: "wildcard in the leftmost label", csr: dnsCSR(t, ecdsa, "*.demo.svc"), wantKU: x509.KeyUsageDigitalSignature},
		{name: "wildcard elsewhere", csr: dnsCSR(t, ecdsa, "api.*.svc"), wantReason: ReasonPolicyViolation, wantText: `label "*"`},
		{name: "63-character label", csr: dnsCSR(t, ecdsa, strings.Repeat("a", 63)+".demo.svc"), wantKU: x509.KeyUsageDigitalSignature},
		{name: "64-character label", csr: dnsCSR(t, ecdsa, strings.Repeat("a", 64)+".demo.svc"), wantReason: ReasonPolicyViolation, wantText: "RFC 1123"},
		{name: "101 SANs", csr: dnsCSR(t, ecdsa, many...), wantReason: ReasonPolicyViolation, wantText: "more than 100 subject alternative names"},
		{name: "SAN critical without subject", csr: dnsCSR(t, ecdsa, "api.demo.svc"), wantKU: x509.KeyUsageDigitalSignature,
			check: func(t *testing.T, c *x509.Certificate) {
				if !extension(t, c, oidSubjectAltName).Critical || len(c.Subject.Names) != 0 {
					t.Fatal("the SAN extension of a subject-less leaf is not critical")
				}
			}},
		{name: "IP and email", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t,
			hostile.GeneralName(sanIP, "\x0a\x01\x02\x03"), hostile.GeneralName(sanEmail, "alice@example.com"))}}), wantKU: x509.KeyUsageDigitalSignature,
			check: func(t *testing.T, c *x509.Certificate) {
				if c.IPAddresses[0].String() != "10.1.2.3" || c.EmailAddresses[0] != "alice@example.com" {
					t.Fatalf("IPs %v emails %v", c.IPAddresses, c.EmailAddresses)
				}
			}},

		// SPIFFE.
		{name: "several URIs with a SPIFFE ID", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t,
			hostile.GeneralName(sanURI, "spiffe://cluster.local/ns/demo/sa/api"), hostile.GeneralName(sanURI, "https://api.demo.example"))}}), wantReason: ReasonPolicyViolation, wantText: "exactly one URI SAN"},
		{name: "foreign namespace's SPIFFE ID", namespace: "other", wantReason: ReasonPolicyViolation, wantText: `does not name the request's namespace "other"`},
		{name: "foreign namespace allowed by a cluster policy", namespace: "other", policy: Policy{SPIFFEAnyNamespace: true}, wantKU: x509.KeyUsageDigitalSignature},
		{name: "other trust domain", policy: Policy{TrustDomain: "prod.example"}, wantReason: ReasonPolicyViolation, wantText: `this issuer's is "prod.example"`},
		// SPIFFE IDs bound to the requester (policy.spiffe.requesterBound).
		{name: "requester-bound: the service account's own ID", requester: "system:serviceaccount:demo:api", policy: Policy{SPIFFERequesterBound: true},
			wantKU: x509.KeyUsageDigitalSignature},
		{name: "requester-bound: another service account of the namespace", requester: "system:serviceaccount:demo:web", policy: Policy{SPIFFERequesterBound: true},
			wantReason: ReasonPolicyViolation, wantText: `the requester system:serviceaccount:demo:web may have only "spiffe://cluster.local/ns/demo/sa/web"`},
		{name: "requester-bound: the same name in another namespace", requester: "system:serviceaccount:other:api", policy: Policy{SPIFFERequesterBound: true, SPIFFEAnyNamespace: true},
			wantReason: ReasonPolicyViolation, wantText: `may have only "spiffe://cluster.local/ns/other/sa/api"`},
		{name: "requester-bound: a user", requester: "alice", policy: Policy{SPIFFERequesterBound: true},
			wantReason: ReasonPolicyViolation, wantText: `the requester "alice" is not a service account (system:serviceaccount:<namespace>:<name>)`},
		{name: "requester-bound: a node", requester: "system:node:node-1", policy: Policy{SPIFFERequesterBound: true},
			wantReason: ReasonPolicyViolation, wantText: "is not a service account"},
		{name: "requester-bound: a malformed service account user", requester: "system:serviceaccount:demo:api:x", policy: Policy{SPIFFERequesterBound: true},
			wantReason: ReasonPolicyViolation, wantText: "is not a service account"},
		{name: "requester-bound: no requester (offline)", policy: Policy{SPIFFERequesterBound: true},
			wantReason: ReasonPolicyViolation, wantText: "the request names no requester"},
		{name: "requester-bound: the ID in the issuer's trust domain", requester: "system:serviceaccount:demo:api", policy: Policy{SPIFFERequesterBound: true, TrustDomain: "prod.example"},
			csr:    customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, hostile.GeneralName(sanURI, "spiffe://prod.example/ns/demo/sa/api"))}}),
			wantKU: x509.KeyUsageDigitalSignature},
		{name: "requester-bound: its own ID outside the request's namespace", requester: "system:serviceaccount:other:api", namespace: "demo", policy: Policy{SPIFFERequesterBound: true},
			csr:        customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, hostile.GeneralName(sanURI, "spiffe://cluster.local/ns/other/sa/api"))}}),
			wantReason: ReasonPolicyViolation, wantText: `does not name the request's namespace "demo"`},
		{name: "requester-bound: no SPIFFE ID, any requester", requester: "alice", csr: dnsCSR(t, ecdsa, "api.demo.svc"), policy: Policy{SPIFFERequesterBound: true},
			wantKU: x509.KeyUsageDigitalSignature},
		{name: "SPIFFE ID with a query", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t,
			hostile.GeneralName(sanURI, "spiffe://cluster.local/ns/demo/sa/api?x=1"))}}), wantReason: ReasonPolicyViolation, wantText: "it has a query"},
		{name: "SPIFFE ID with a port", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t,
			hostile.GeneralName(sanURI, "spiffe://cluster.local:8443/ns/demo/sa/api"))}}), wantReason: ReasonPolicyViolation, wantText: "it has a port"},
		{name: "SPIFFE ID without a path", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t,
			hostile.GeneralName(sanURI, "spiffe://cluster.local"))}}), wantReason: ReasonPolicyViolation, wantText: "the path is empty"},

		// Subjects.
		{name: "two common names", csr: customCSR(t, ecdsa, &x509.CertificateRequest{RawSubject: hostile.RawSubject(t, hostile.Attr(hostile.OIDCommonName, "a"), hostile.Attr(hostile.OIDCommonName, "b"))}),
			wantReason: ReasonPolicyViolation, wantText: "more than one common name"},
		{name: "O=system:masters", csr: customCSR(t, ecdsa, &x509.CertificateRequest{RawSubject: hostile.RawSubject(t, hostile.Attr(hostile.OIDCommonName, "kubernetes-admin"), hostile.Attr(hostile.OIDOrganization, "system:masters"))}),
			wantReason: ReasonPolicyViolation, wantText: `O "system:masters"`},
		{name: "the CA's own subject", csr: customCSR(t, ecdsa, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Test Root ML-DSA-65"}}),
			wantReason: ReasonPolicyViolation, wantText: "subject of the CA"},
		{name: "65-character common name", csr: customCSR(t, ecdsa, &x509.CertificateRequest{Subject: pkix.Name{CommonName: strings.Repeat("c", 65)}}),
			wantReason: ReasonPolicyViolation, wantText: "CN has 65 characters"},
		{name: "17 subject attributes", csr: customCSR(t, ecdsa, &x509.CertificateRequest{RawSubject: hostile.RawSubject(t, subject17...)}),
			wantReason: ReasonPolicyViolation, wantText: "more than 16 attributes"},
		{name: "unknown subject attribute", csr: customCSR(t, ecdsa, &x509.CertificateRequest{RawSubject: hostile.RawSubject(t, hostile.Attr(hostile.OIDCommonName, "a"), hostile.Attr(asn1.ObjectIdentifier{1, 2, 3, 4}, "x"))}),
			wantReason: ReasonPolicyViolation, wantText: "attribute of type 1.2.3.4"},
		{name: "subject value not a string", csr: customCSR(t, ecdsa, &x509.CertificateRequest{RawSubject: hostile.RawSubject(t, hostile.Attr(hostile.OIDCommonName, "a"),
			hostile.Attribute{Type: hostile.OIDOrganization, Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagInteger, Bytes: []byte{1}}})}),
			wantReason: ReasonPolicyViolation, wantText: "O is not a string"},
		{name: "literal subject kept as written", csr: customCSR(t, ecdsa, &x509.CertificateRequest{RawSubject: hostile.RawSubject(t, hostile.Attr(hostile.OIDOrgUnit, "b"), hostile.Attr(hostile.OIDOrgUnit, "a"), hostile.Attr(hostile.OIDOrganization, "corp"), hostile.Attr(hostile.OIDCommonName, "literal"))}),
			wantKU: x509.KeyUsageDigitalSignature,
			check: func(t *testing.T, c *x509.Certificate) {
				var got []string
				for _, n := range c.Subject.Names {
					got = append(got, n.Value.(string))
				}
				if !slices.Equal(got, []string{"b", "a", "corp", "literal"}) || extension(t, c, oidSubjectAltName).Id != nil {
					t.Fatalf("subject attributes %q, want b, a, corp, literal in that order and no SAN extension", got)
				}
			}},
		{name: "a leaf naming nobody", csr: customCSR(t, ecdsa, &x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"x"}}}),
			wantReason: ReasonPolicyViolation, wantText: "names nobody"},

		// Validity.
		{name: "100 years capped at the default maximum", duration: 100 * 365 * day, wantKU: x509.KeyUsageDigitalSignature, wantValid: DefaultMaxDuration,
			wantText: "Validity shortened to the issuer's maximum duration"},
		{name: "capped at the policy's maximum", duration: 10 * day, policy: Policy{MaxDuration: day}, wantKU: x509.KeyUsageDigitalSignature, wantValid: day},
		{name: "capped at the CA's expiry", ca: short, duration: 60 * day, wantKU: x509.KeyUsageDigitalSignature, wantValid: 30 * day, wantText: "the CA's expiry"},
		{name: "sub-hour duration", duration: 59 * time.Minute, wantReason: ReasonPolicyViolation, wantText: "under the 1h0m0s minimum"},
		{name: "fractional seconds truncated", duration: time.Hour + 1500*time.Millisecond, wantKU: x509.KeyUsageDigitalSignature, wantValid: time.Hour + time.Second},

		// Issuer policy on names and keys.
		{name: "DNS name in the namespace's pattern", csr: dnsCSR(t, ecdsa, "api.demo.svc.cluster.local"), policy: Policy{DNSNames: []string{"*.{namespace}.svc.cluster.local"}}, wantKU: x509.KeyUsageDigitalSignature},
		{name: "DNS name of another namespace", csr: dnsCSR(t, ecdsa, "api.other.svc.cluster.local"), policy: Policy{DNSNames: []string{"*.{namespace}.svc.cluster.local"}},
			wantReason: ReasonPolicyViolation, wantText: `"api.other.svc.cluster.local" is not allowed: it matches none of the issuer's policy.dnsNames`},
		{name: "star matches one label only", csr: dnsCSR(t, ecdsa, "a.b.demo.svc.cluster.local"), policy: Policy{DNSNames: []string{"*.{namespace}.svc.cluster.local"}},
			wantReason: ReasonPolicyViolation, wantText: "policy.dnsNames"},
		{name: "restricted policy without URIs refuses a SPIFFE ID", policy: Policy{DNSNames: []string{"*.demo.svc", "*.demo.svc.cluster.local"}},
			wantReason: ReasonPolicyViolation, wantText: "policy.uris is empty"},
		{name: "restricted policy: common name repeating a SAN", policy: Policy{DNSNames: []string{"*.demo.svc", "*.demo.svc.cluster.local"}, URIs: []string{"spiffe://cluster.local/ns/{namespace}/sa/*"}},
			wantKU: x509.KeyUsageDigitalSignature},
		{name: "restricted policy: other common name", csr: customCSR(t, ecdsa, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "admin"}, DNSNames: []string{"api.demo.svc"}}),
			policy: Policy{DNSNames: []string{"*.demo.svc"}}, wantReason: ReasonPolicyViolation, wantText: `common name "admin" is not allowed`},
		{name: "IP in range", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, hostile.GeneralName(sanIP, "\x0a\x01\x02\x03"))}}),
			policy: Policy{IPRanges: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, wantKU: x509.KeyUsageDigitalSignature},
		{name: "IP out of range", csr: customCSR(t, ecdsa, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{hostile.SANExtension(t, hostile.GeneralName(sanIP, "\xc0\xa8\x01\x01"))}}),
			policy: Policy{IPRanges: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, wantReason: ReasonPolicyViolation, wantText: `"192.168.1.1" is not allowed`},
		{name: "key type outside policy", policy: Policy{KeyAlgorithms: []KeyAlgorithm{KeyMLDSA, KeyEd25519}}, wantReason: ReasonPolicyViolation, wantText: "allows only ML-DSA, Ed25519"},
		{name: "RSA under the policy's minimum", key: "RSA-2048", policy: Policy{MinRSABits: 3072}, wantReason: ReasonPolicyViolation, wantText: "at least 3072"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.ca
			if c == nil {
				c = ca
			}
			key := ecdsa
			if tc.key != "" {
				key = testkeys.New(t, tc.key)
			}
			req := leafRequest(t, key, day)
			if tc.csr != nil {
				req.CSR = tc.csr
			}
			if tc.namespace != "" {
				req.Namespace = tc.namespace
			}
			if tc.duration != 0 {
				req.Duration = tc.duration
			}
			if tc.usages != nil || strings.HasPrefix(tc.name, "cert-manager's default") {
				req.Usages = tc.usages
			}
			req.IsCA = tc.isCA
			req.Requester = tc.requester

			iss, err := c.Issue(req, tc.policy, fixedNow)
			if tc.wantReason != "" {
				wantReason(t, err, tc.wantReason)
				if !strings.Contains(err.Error(), tc.wantText) {
					t.Fatalf("error %q does not say %q", err, tc.wantText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cert := iss.Certificate
			if cert.KeyUsage != tc.wantKU {
				t.Fatalf("key usage %v, want %v", KeyUsageNames(cert.KeyUsage), KeyUsageNames(tc.wantKU))
			}
			if tc.wantEKU != nil && !slices.Equal(cert.ExtKeyUsage, tc.wantEKU) {
				t.Fatalf("extended key usage %v, want %v", cert.ExtKeyUsage, tc.wantEKU)
			}
			if notes := strings.Join(iss.Notes(), "\n"); !strings.Contains(notes, tc.wantText) {
				t.Fatalf("notes %q do not say %q", notes, tc.wantText)
			}
			want := tc.wantValid
			if want == 0 {
				want = req.Duration
			}
			if got := cert.NotAfter.Sub(cert.NotBefore); got != want {
				t.Fatalf("validity %s, want %s", got, want)
			}
			if cert.IsCA || !cert.BasicConstraintsValid || cert.SignatureAlgorithm.String() != string(c.Algorithm()) {
				t.Fatalf("isCA %v, basic constraints %v, signature %s", cert.IsCA, cert.BasicConstraintsValid, cert.SignatureAlgorithm)
			}
			if len(cert.SubjectKeyId) != 20 || !bytes.Equal(cert.AuthorityKeyId, c.Certificate.SubjectKeyId) {
				t.Fatalf("SKI %x AKI %x, CA SKI %x", cert.SubjectKeyId, cert.AuthorityKeyId, c.Certificate.SubjectKeyId)
			}
			if !bytes.Equal(cert.RawSubject, req.CSR.RawSubject) {
				t.Fatalf("subject %q, CSR's %q", cert.Subject, req.CSR.Subject)
			}
			if tc.check != nil {
				tc.check(t, cert)
			}
			verifyChain(t, iss, fixedNow)
		})
	}
}

// extension returns c's extension id, or a zero one.
func extension(t *testing.T, c *x509.Certificate, id asn1.ObjectIdentifier) pkix.Extension {
	t.Helper()
	for _, e := range c.Extensions {
		if e.Id.Equal(id) {
			return e
		}
	}
	return pkix.Extension{}
}

func TestIssueEveryCALevel(t *testing.T) {
	for _, alg := range Algorithms() {
		ca := newRoot(t, alg, 30*24*time.Hour)
		for _, leaf := range []string{"ECDSA-P256", "RSA-2048", "Ed25519", "ML-DSA-44", "ML-DSA-87"} {
			iss, err := ca.Issue(leafRequest(t, testkeys.New(t, leaf), time.Hour), Policy{}, fixedNow)
			if err != nil {
				t.Fatalf("CA %s, leaf %s: %v", alg, leaf, err)
			}
			if got := iss.Certificate.SignatureAlgorithm.String(); got != string(alg) {
				t.Fatalf("CA %s, leaf %s: signature %s", alg, leaf, got)
			}
			if iss.Certificate.URIs[0].String() != "spiffe://cluster.local/ns/demo/sa/api" || iss.Certificate.DNSNames[0] != "api.demo.svc" {
				t.Fatalf("SANs %v %v", iss.Certificate.URIs, iss.Certificate.DNSNames)
			}
			verifyChain(t, iss, fixedNow)
		}
	}
}

func TestIssueSerials(t *testing.T) {
	ca := newRoot(t, MLDSA44, time.Hour*2)
	seen := map[string]bool{}
	minBits := 128
	for range 200 {
		iss, err := ca.Issue(leafRequest(t, testkeys.New(t, "Ed25519"), time.Hour), Policy{}, fixedNow)
		if err != nil {
			t.Fatal(err)
		}
		s := iss.Certificate.SerialNumber
		if s.Sign() <= 0 || s.BitLen() > 128 {
			t.Fatalf("serial %x is not a positive integer of at most 128 bits", s)
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

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		want   string
	}{
		{name: "default", policy: Policy{}},
		{name: "short maximum", policy: Policy{MaxDuration: time.Minute}, want: "maxDuration 1m0s is under"},
		{name: "unknown usage", policy: Policy{Usages: []string{"netscape sgc"}}, want: `unknown usage "netscape sgc"`},
		{name: "unknown key algorithm", policy: Policy{KeyAlgorithms: []KeyAlgorithm{"DSA"}}, want: `unknown "DSA"`},
		{name: "RSA minimum too small", policy: Policy{MinRSABits: 1024}, want: "minRSAKeySize 1024"},
		{name: "bad trust domain", policy: Policy{TrustDomain: "Cluster.Local"}, want: "not a SPIFFE trust domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, name, namespace string
		sep                      byte
		want                     bool
	}{
		{"*.{namespace}.svc", "api.demo.svc", "demo", '.', true},
		{"*.{namespace}.svc", "a.b.demo.svc", "demo", '.', false},
		{"*.{namespace}.svc", "api.other.svc", "demo", '.', false},
		{"*.{namespace}.svc", "*.demo.svc", "demo", '.', true},
		{"{namespace}.svc", "x.svc", "*", '.', false}, // a namespace is literal, never a wildcard
		{"{namespace}.svc", "*.svc", "*", '.', true},
		{"spiffe://cluster.local/ns/{namespace}/sa/*", "spiffe://cluster.local/ns/demo/sa/api", "demo", '/', true},
		{"spiffe://cluster.local/ns/{namespace}/sa/*", "spiffe://cluster.local/ns/demo/sa/api/x", "demo", '/', false},
		{"*@example.com", "alice@example.com", "", '@', true},
		{"*@example.com", "a@b@example.com", "", '@', false},
		{"web-*", "web-", "", 0, true},
		{"a*b*c", "axxbyyc", "", 0, true},
		{"a*b*c", "axxbyy", "", 0, false},
		{"", "", "", 0, true},
		// Backtracking matchers take exponential time on this; the table takes microseconds.
		{strings.Repeat("*a", 40) + "b", strings.Repeat("a", 250), "", 0, false},
	}
	for _, tc := range tests {
		if got := glob(tc.pattern, tc.name, tc.namespace, tc.sep); got != tc.want {
			t.Errorf("glob(%q, %q, namespace %q) = %v, want %v", tc.pattern, tc.name, tc.namespace, got, tc.want)
		}
	}
}

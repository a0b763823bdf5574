// Package hostile is the table of hostile certificate requests that every signing path (the
// controller on a real control plane, kubectl-pq sign) must answer the same way, and the CSR
// crafting it needs: crypto/x509 writes only well-formed names, and these requests are not.
package hostile

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

// OIDUPN is a Microsoft UPN otherName, which cert-manager's otherNames can request.
var OIDUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}

var (
	oidSAN             = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidKeyUsage        = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}
	OIDCommonName      = asn1.ObjectIdentifier{2, 5, 4, 3}
	OIDOrganization    = asn1.ObjectIdentifier{2, 5, 4, 10}
	OIDOrgUnit         = asn1.ObjectIdentifier{2, 5, 4, 11}
)

// GeneralName tags (RFC 5280 §4.2.1.6).
const (
	TagEmail         = 1
	TagDNS           = 2
	TagDirectoryName = 4
	TagURI           = 6
	TagIP            = 7
	TagRegisteredID  = 8
)

// GeneralName is one SAN of a type, with its value as written.
func GeneralName(tag int, value string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, Bytes: []byte(value)}
}

// UPN is an otherName SAN as cert-manager writes it: type-id, [0] EXPLICIT UTF8String.
func UPN(t testing.TB, value string) asn1.RawValue {
	der, err := asn1.MarshalWithParams(struct {
		TypeID asn1.ObjectIdentifier
		Value  string `asn1:"utf8,explicit,tag:0"`
	}{OIDUPN, value}, "tag:0")
	if err != nil {
		t.Fatal(err)
	}
	return asn1.RawValue{FullBytes: der}
}

// DirectoryName is a directoryName SAN.
func DirectoryName(t testing.TB, attrs ...Attribute) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: TagDirectoryName, IsCompound: true, Bytes: RawSubject(t, attrs...)}
}

// SANExtension is a subjectAltName extension of the names as given.
func SANExtension(t testing.TB, names ...asn1.RawValue) pkix.Extension {
	v, err := asn1.Marshal(names)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidSAN, Value: v}
}

// Attribute is one subject attribute with a raw value, so a test can give it any ASN.1 type.
type Attribute struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type attributeSET []Attribute

// Attr is a UTF8String attribute.
func Attr(oid asn1.ObjectIdentifier, value string) Attribute {
	return Attribute{Type: oid, Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagUTF8String, Bytes: []byte(value)}}
}

// RawSubject encodes attributes in order, one per RDN, as cert-manager's literalSubject does.
func RawSubject(t testing.TB, attrs ...Attribute) []byte {
	rdns := make([]attributeSET, len(attrs))
	for i, a := range attrs {
		rdns[i] = attributeSET{a}
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// CSR signs tmpl with key and returns it as PEM.
func CSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// Request is a hostile request and what pq-issuer must answer.
type Request struct {
	Name     string
	CSR      []byte // PEM
	Duration time.Duration
	Usages   []string // cert-manager names
	// UPNPolicy sends the request to an issuer whose spec.policy.otherNames lists OIDUPN.
	UPNPolicy bool
	// Refused is part of the refusal's message (PolicyViolation); "" when the request is issued.
	Refused string
	// Note is part of what the issuer says about an issued certificate ("" for nothing to say).
	Note string
	// Check judges an issued certificate: the offending part is not in it.
	Check func(*x509.Certificate) error
}

// Requests is the table, for requests from namespace ns to a CA whose subject is caSubject. The
// issuer's maximum duration is the default, 2160h.
func Requests(t testing.TB, ns string, caSubject pkix.Name) []Request {
	key := testkeys.New(t, "ECDSA-P256")
	dns := ns + ".svc"
	own := "spiffe://cluster.local/ns/" + ns + "/sa/api"
	csr := func(tmpl *x509.CertificateRequest) []byte { return CSR(t, key, tmpl) }
	withSANs := func(names ...asn1.RawValue) []byte {
		return csr(&x509.CertificateRequest{ExtraExtensions: []pkix.Extension{SANExtension(t, names...)}})
	}
	good := csr(&x509.CertificateRequest{DNSNames: []string{"api." + dns}})
	var seventeenOUs []Attribute
	for i := range 17 {
		seventeenOUs = append(seventeenOUs, Attr(OIDOrgUnit, fmt.Sprintf("team-%d", i)))
	}
	var manyNames []asn1.RawValue
	for i := range 101 {
		manyNames = append(manyNames, GeneralName(TagDNS, fmt.Sprintf("n%d.%s", i, dns)))
	}
	smartcardEKU, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}, {1, 3, 6, 1, 5, 2, 3, 4}})
	keyCertSign, _ := asn1.Marshal(asn1.BitString{Bytes: []byte{0x06}, BitLength: 7})
	tls := []string{"digital signature", "server auth", "client auth"}
	day := 24 * time.Hour

	return []Request{
		{Name: "good", CSR: good, Duration: day, Usages: tls, Check: exactlyTLSUsages},
		{Name: "otherName without policy", CSR: withSANs(GeneralName(TagDNS, "upn."+dns), UPN(t, "admin@corp.example")), Duration: day, Usages: tls,
			Refused: "the otherName SAN of type 1.3.6.1.4.1.311.20.2.3 (\"admin@corp.example\") is not allowed"},
		{Name: "otherName with policy", CSR: withSANs(GeneralName(TagDNS, "upn."+dns), UPN(t, "admin@corp.example")), Duration: day, Usages: tls, UPNPolicy: true,
			Check: func(c *x509.Certificate) error {
				if !bytes.Contains(extension(c, oidSAN).Value, []byte("admin@corp.example")) {
					return fmt.Errorf("the SAN extension lacks the UPN")
				}
				return nil
			}},
		{Name: "directoryName SAN", CSR: withSANs(GeneralName(TagDNS, "dir."+dns), DirectoryName(t, Attr(OIDCommonName, "kubernetes-admin"))), Duration: day, Usages: tls,
			Refused: "the request has a directoryName SAN, which pq-issuer never signs"},
		{Name: "registeredID SAN", CSR: withSANs(GeneralName(TagDNS, "rid."+dns), asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: TagRegisteredID, Bytes: []byte{0x2a, 0x03}}), Duration: day, Usages: tls,
			Refused: "the request has a registeredID SAN, which pq-issuer never signs"},
		{Name: "duplicate CN", CSR: csr(&x509.CertificateRequest{RawSubject: RawSubject(t, Attr(OIDCommonName, "a."+dns), Attr(OIDCommonName, "b."+dns))}), Duration: day, Usages: tls,
			Refused: "the subject has more than one common name (CN)"},
		{Name: "unknown EKU OIDs, name constraints and keyCertSign in the CSR", CSR: csr(&x509.CertificateRequest{DNSNames: []string{"ext." + dns}, ExtraExtensions: []pkix.Extension{
			{Id: oidExtKeyUsage, Value: smartcardEKU},
			{Id: oidNameConstraints, Critical: true, Value: []byte{0x30, 0x00}},
			{Id: oidKeyUsage, Critical: true, Value: keyCertSign},
		}}), Duration: day, Usages: tls, Check: exactlyTLSUsages},
		{Name: "keyCertSign on a leaf", CSR: good, Duration: day, Usages: []string{"digital signature", "cert sign"},
			Refused: "the request asks for keyCertSign on a leaf certificate"},
		{Name: "key encipherment for an ECDSA key", CSR: good, Duration: day, Usages: []string{"digital signature", "key encipherment", "server auth"},
			Note: "Removed key usage keyEncipherment: RFC 8813 §3 forbids encipherment for ECDSA keys",
			Check: func(c *x509.Certificate) error {
				if c.KeyUsage != x509.KeyUsageDigitalSignature {
					return fmt.Errorf("key usage %b, want digitalSignature only", c.KeyUsage)
				}
				return nil
			}},
		{Name: "NUL in a DNS name", CSR: withSANs(GeneralName(TagDNS, "api."+dns+"\x00.evil.example")), Duration: day, Usages: tls,
			Refused: "is not an RFC 1123 host name"},
		{Name: "ESC in a DNS name", CSR: withSANs(GeneralName(TagDNS, "api\x1b[2J."+dns)), Duration: day, Usages: tls,
			Refused: "is not an RFC 1123 host name"},
		{Name: "several URIs with a SPIFFE ID", CSR: withSANs(GeneralName(TagURI, own), GeneralName(TagURI, "https://api.example.com")), Duration: day, Usages: tls,
			Refused: "an X509-SVID has exactly one URI SAN"},
		{Name: "a foreign namespace's SPIFFE ID", CSR: withSANs(GeneralName(TagURI, "spiffe://cluster.local/ns/kube-system/sa/admin")), Duration: day, Usages: tls,
			Refused: "does not name the request's namespace \"" + ns + "\""},
		{Name: "own SPIFFE ID", CSR: withSANs(GeneralName(TagURI, own)), Duration: day, Usages: tls, Check: func(c *x509.Certificate) error {
			if len(c.URIs) != 1 || c.URIs[0].String() != own || !extension(c, oidSAN).Critical {
				return fmt.Errorf("URIs %v, SAN critical %v; want the SPIFFE ID in a critical SAN extension (no subject)", c.URIs, extension(c, oidSAN).Critical)
			}
			return nil
		}},
		{Name: "O=system:masters", CSR: csr(&x509.CertificateRequest{Subject: pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}}}), Duration: day, Usages: tls,
			Refused: "the subject's O \"system:masters\" starts with \"system:\""},
		{Name: "the CA's own subject", CSR: csr(&x509.CertificateRequest{Subject: caSubject, DNSNames: []string{"ca." + dns}}), Duration: day, Usages: tls,
			Refused: "is the subject of the CA"},
		{Name: "100-year duration", CSR: good, Duration: 100 * 365 * day, Usages: tls, Note: "Validity shortened to the issuer's maximum duration",
			Check: func(c *x509.Certificate) error {
				if d := c.NotAfter.Sub(c.NotBefore); d != 2160*time.Hour {
					return fmt.Errorf("validity %s, want the default maximum 2160h", d)
				}
				return nil
			}},
		{Name: "sub-hour duration", CSR: good, Duration: 30 * time.Minute, Usages: tls, Refused: "the requested duration 30m0s is under the 1h0m0s minimum"},
		{Name: "oversized subject", CSR: csr(&x509.CertificateRequest{RawSubject: RawSubject(t, seventeenOUs...), DNSNames: []string{"big." + dns}}), Duration: day, Usages: tls,
			Refused: "the subject has more than 16 attributes"},
		{Name: "oversized SAN list", CSR: withSANs(manyNames...), Duration: day, Usages: tls, Refused: "the request has more than 100 subject alternative names"},
	}
}

// exactlyTLSUsages: what the builder decides, whatever the CSR asked for.
func exactlyTLSUsages(c *x509.Certificate) error {
	want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if c.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(c.ExtKeyUsage, want) || len(c.UnknownExtKeyUsage) != 0 || c.IsCA {
		return fmt.Errorf("key usage %b, EKUs %v, unknown EKUs %v, CA %v; want digitalSignature, server and client auth, a leaf", c.KeyUsage, c.ExtKeyUsage, c.UnknownExtKeyUsage, c.IsCA)
	}
	var ids []string
	for _, e := range c.Extensions {
		ids = append(ids, e.Id.String())
	}
	slices.Sort(ids)
	if got := strings.Join(ids, " "); got != "2.5.29.14 2.5.29.15 2.5.29.17 2.5.29.19 2.5.29.35 2.5.29.37" {
		return fmt.Errorf("extensions %s, want SKI, key usage, SAN, basic constraints, AKI, EKU", got)
	}
	return nil
}

func extension(c *x509.Certificate, id asn1.ObjectIdentifier) pkix.Extension {
	for _, e := range c.Extensions {
		if e.Id.Equal(id) {
			return e
		}
	}
	return pkix.Extension{}
}

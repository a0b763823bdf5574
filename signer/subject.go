package signer

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"unicode/utf8"
)

// Subject bounds. RFC 5280 Appendix A gives the upper bound of each attribute; a subject has at
// most maxSubjectAttributes of them in at most maxSubjectBytes of DER (cert-manager's literal
// subjects need a handful).
const (
	maxSubjectAttributes = 16
	maxSubjectBytes      = 1024
)

// subjectAttributes are the attribute types a subject may carry, with cert-manager's names and
// RFC 5280's upper bounds in characters.
var subjectAttributes = []struct {
	oid   asn1.ObjectIdentifier
	name  string
	upper int
}{
	{asn1.ObjectIdentifier{2, 5, 4, 3}, "CN", 64},
	{asn1.ObjectIdentifier{2, 5, 4, 5}, "SERIALNUMBER", 64},
	{asn1.ObjectIdentifier{2, 5, 4, 6}, "C", 2},
	{asn1.ObjectIdentifier{2, 5, 4, 7}, "L", 128},
	{asn1.ObjectIdentifier{2, 5, 4, 8}, "ST", 128},
	{asn1.ObjectIdentifier{2, 5, 4, 9}, "STREET", 128},
	{asn1.ObjectIdentifier{2, 5, 4, 10}, "O", 64},
	{asn1.ObjectIdentifier{2, 5, 4, 11}, "OU", 64},
	{asn1.ObjectIdentifier{2, 5, 4, 17}, "POSTALCODE", 40},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, "UID", 128},
	{asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, "DC", 63},
}

// Universal string tags a subject value may have.
const (
	tagUTF8String      = 12
	tagPrintableString = 19
	tagIA5String       = 22
)

// kubernetesReserved is the prefix Kubernetes gives its own users and groups (system:masters,
// system:node:...): a certificate naming one is one misconfigured client CA away from them.
const kubernetesReserved = "system:"

type attributeTypeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// relativeDistinguishedNameSET is a SET, as encoding/asn1 reads a type whose name ends in SET.
type relativeDistinguishedNameSET []attributeTypeAndValue

// subject is a checked CSR subject: the DER to copy as written and what the rules need of it.
type subject struct {
	raw        []byte
	commonName string
	empty      bool
}

// checkSubject keeps a CSR subject as written (cert-manager's literalSubject needs its order and
// repeated attributes) only when every attribute is a known type with a string value. name is raw
// as crypto/x509 parsed it, for the comparison with the CA subjects.
func checkSubject(raw []byte, name pkix.Name, chain []*x509.Certificate) (*subject, error) {
	if len(raw) > maxSubjectBytes {
		return nil, newError(ReasonPolicyViolation, "the subject is %d bytes of DER, more than the %d-byte limit", len(raw), maxSubjectBytes)
	}
	var rdns []relativeDistinguishedNameSET
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) != 0 {
		return nil, newError(ReasonInvalidCSR, "the subject cannot be parsed")
	}
	s := &subject{raw: raw, empty: len(rdns) == 0}
	count := 0
	for _, rdn := range rdns {
		for _, atv := range rdn {
			count++
			if count > maxSubjectAttributes {
				return nil, newError(ReasonPolicyViolation, "the subject has more than %d attributes", maxSubjectAttributes)
			}
			name, value, err := checkAttribute(atv)
			if err != nil {
				return nil, err
			}
			if name == "CN" {
				if s.commonName != "" {
					return nil, newError(ReasonPolicyViolation, "the subject has more than one common name (CN); a certificate names one")
				}
				s.commonName = value
			}
			if (name == "CN" || name == "O") && strings.HasPrefix(strings.ToLower(value), kubernetesReserved) {
				return nil, newError(ReasonPolicyViolation, "the subject's %s %q starts with %q, which Kubernetes reserves for its own users and groups; pq-issuer never signs it", name, value, kubernetesReserved)
			}
		}
	}
	if s.empty {
		return s, nil
	}
	for _, ca := range chain {
		if string(ca.RawSubject) == string(raw) || ca.Subject.String() == name.String() {
			return nil, newError(ReasonPolicyViolation, "the subject %q is the subject of the CA %q; a leaf must not pose as its CA", name.String(), ca.Subject.String())
		}
	}
	return s, nil
}

// checkAttribute returns the cert-manager name and string value of a known attribute.
func checkAttribute(atv attributeTypeAndValue) (string, string, error) {
	for _, a := range subjectAttributes {
		if !a.oid.Equal(atv.Type) {
			continue
		}
		v := atv.Value
		if v.Class != asn1.ClassUniversal || (v.Tag != tagUTF8String && v.Tag != tagPrintableString && v.Tag != tagIA5String) {
			return "", "", newError(ReasonPolicyViolation, "the subject's %s is not a string (ASN.1 tag %d); use a UTF8String or PrintableString", a.name, v.Tag)
		}
		value := string(v.Bytes)
		if !utf8.ValidString(value) || strings.ContainsFunc(value, isControl) {
			return "", "", newError(ReasonPolicyViolation, "the subject's %s %q has a control character or invalid UTF-8", a.name, value)
		}
		if n := utf8.RuneCountInString(value); n == 0 || n > a.upper {
			return "", "", newError(ReasonPolicyViolation, "the subject's %s has %d characters; it must have 1 to %d (RFC 5280 Appendix A)", a.name, n, a.upper)
		}
		return a.name, value, nil
	}
	return "", "", newError(ReasonPolicyViolation, "the subject has an attribute of type %s, which pq-issuer does not sign; use CN, O, OU, C, L, ST, STREET, POSTALCODE, SERIALNUMBER, UID or DC", atv.Type)
}

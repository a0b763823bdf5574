package signer

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"
)

// SAN bounds: a request names at most maxSANs names; each within its limit.
const (
	maxSANs          = 100
	maxDNSNameLength = 253
	maxURILength     = 2048 // SPIFFE's limit for an ID
	maxEmailLength   = 254
	maxOtherNameLen  = 256
)

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// GeneralName tags (RFC 5280 §4.2.1.6), context-specific.
const (
	sanOtherName     = 0
	sanEmail         = 1
	sanDNS           = 2
	sanX400Address   = 3
	sanDirectoryName = 4
	sanEDIPartyName  = 5
	sanURI           = 6
	sanIP            = 7
	sanRegisteredID  = 8
)

var sanTypeNames = map[int]string{
	sanOtherName: "otherName", sanEmail: "email (rfc822Name)", sanDNS: "dNSName", sanX400Address: "x400Address",
	sanDirectoryName: "directoryName", sanEDIPartyName: "ediPartyName", sanURI: "URI", sanIP: "iPAddress", sanRegisteredID: "registeredID",
}

// OtherName is an otherName SAN with a UTF8String value, e.g. a Microsoft UPN.
type OtherName struct {
	TypeID asn1.ObjectIdentifier
	Value  string
}

// names are a request's SANs, each checked by its type's rules.
type names struct {
	dns, emails []string
	uris        []string
	ips         []net.IP
	otherNames  []OtherName
}

func (n *names) count() int {
	return len(n.dns) + len(n.emails) + len(n.uris) + len(n.ips) + len(n.otherNames)
}

// parseSANs reads the SAN extension of a CSR itself: crypto/x509 silently drops the types it does
// not know (otherName, directoryName, registeredID, ...), and what is dropped unseen cannot be
// refused.
func parseSANs(exts []pkix.Extension) (*names, error) {
	n := &names{}
	var found bool
	for _, ext := range exts {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		if found {
			return nil, newError(ReasonInvalidCSR, "the CSR has two subjectAltName extensions")
		}
		found = true
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) != 0 || seq.Tag != asn1.TagSequence {
			return nil, newError(ReasonInvalidCSR, "the CSR's subjectAltName extension cannot be parsed")
		}
		for rest := seq.Bytes; len(rest) > 0; {
			var gn asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &gn); err != nil || gn.Class != asn1.ClassContextSpecific {
				return nil, newError(ReasonInvalidCSR, "the CSR's subjectAltName extension cannot be parsed")
			}
			if n.count() == maxSANs {
				return nil, newError(ReasonPolicyViolation, "the request has more than %d subject alternative names", maxSANs)
			}
			if err := n.add(gn); err != nil {
				return nil, err
			}
		}
	}
	return n, nil
}

// add checks one GeneralName against its type's syntax.
func (n *names) add(gn asn1.RawValue) error {
	value := string(gn.Bytes)
	switch gn.Tag {
	case sanDNS:
		if err := checkDNSName(value); err != nil {
			return err
		}
		n.dns = append(n.dns, value)
	case sanEmail:
		if err := checkEmail(value); err != nil {
			return err
		}
		n.emails = append(n.emails, value)
	case sanURI:
		if err := checkURI(value); err != nil {
			return err
		}
		n.uris = append(n.uris, value)
	case sanIP:
		if len(gn.Bytes) != net.IPv4len && len(gn.Bytes) != net.IPv6len {
			return newError(ReasonPolicyViolation, "an iPAddress SAN has %d bytes; an IP address has 4 or 16", len(gn.Bytes))
		}
		n.ips = append(n.ips, net.IP(gn.Bytes))
	case sanOtherName:
		on, err := parseOtherName(gn.Bytes)
		if err != nil {
			return err
		}
		n.otherNames = append(n.otherNames, on)
	default:
		typ, ok := sanTypeNames[gn.Tag]
		if !ok {
			typ = "unknown"
		}
		return newError(ReasonPolicyViolation, "the request has a %s SAN, which pq-issuer never signs; use DNS, IP, URI or email names", typ)
	}
	return nil
}

// parseOtherName reads the contents of an otherName: type-id OID, [0] EXPLICIT UTF8String.
func parseOtherName(contents []byte) (OtherName, error) {
	bad := newError(ReasonPolicyViolation, "an otherName SAN is not an OID with a UTF8String value")
	var on OtherName
	rest, err := asn1.Unmarshal(contents, &on.TypeID)
	if err != nil {
		return on, bad
	}
	var explicit, inner asn1.RawValue
	if rest, err = asn1.Unmarshal(rest, &explicit); err != nil || len(rest) != 0 || explicit.Class != asn1.ClassContextSpecific || explicit.Tag != 0 {
		return on, bad
	}
	if rest, err = asn1.Unmarshal(explicit.Bytes, &inner); err != nil || len(rest) != 0 || inner.Class != asn1.ClassUniversal || inner.Tag != tagUTF8String {
		return on, bad
	}
	on.Value = string(inner.Bytes)
	if !utf8.ValidString(on.Value) || strings.ContainsFunc(on.Value, isControl) || on.Value == "" || len(on.Value) > maxOtherNameLen {
		return on, newError(ReasonPolicyViolation, "the otherName %s value %q is empty, longer than %d bytes, or has a control character", on.TypeID, on.Value, maxOtherNameLen)
	}
	return on, nil
}

// checkDNSName enforces RFC 1123 host names, with at most a leftmost "*" label.
func checkDNSName(name string) error {
	if name == "" || len(name) > maxDNSNameLength {
		return newError(ReasonPolicyViolation, "the DNS name %q is empty or longer than %d characters", name, maxDNSNameLength)
	}
	for i, label := range strings.Split(name, ".") {
		if label == "*" && i == 0 && strings.Contains(name, ".") {
			continue
		}
		if !validLabel(label) {
			return newError(ReasonPolicyViolation, "the DNS name %q is not an RFC 1123 host name (label %q): use letters, digits and '-', labels of 1-63 characters, and '*' only as the whole leftmost label", name, label)
		}
	}
	return nil
}

func validLabel(label string) bool {
	if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func checkEmail(email string) error {
	at := strings.LastIndexByte(email, '@')
	if len(email) > maxEmailLength || at <= 0 || strings.ContainsFunc(email[:at], func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return newError(ReasonPolicyViolation, "the email SAN %q is not an address of at most %d characters", email, maxEmailLength)
	}
	domain := email[at+1:]
	if strings.HasPrefix(domain, "*") || checkDNSName(domain) != nil {
		return newError(ReasonPolicyViolation, "the email SAN %q has no valid domain", email)
	}
	return nil
}

// checkURI requires an absolute URI of printable ASCII; SPIFFE IDs get their own rules.
func checkURI(raw string) error {
	if len(raw) > maxURILength || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return newError(ReasonPolicyViolation, "the URI SAN %q is longer than %d characters or has a character outside printable ASCII", raw, maxURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return newError(ReasonPolicyViolation, "the URI SAN %q is not an absolute URI", raw)
	}
	if strings.EqualFold(u.Scheme, "spiffe") {
		return checkSPIFFEID(raw, u)
	}
	return nil
}

// marshalSANs encodes what the builder allowed. The extension is critical when the subject is
// empty (RFC 5280 §4.2.1.6).
func marshalSANs(n *names, emptySubject bool) (pkix.Extension, error) {
	var gns []asn1.RawValue
	for _, on := range n.otherNames {
		der, err := asn1.MarshalWithParams(struct {
			TypeID asn1.ObjectIdentifier
			Value  string `asn1:"utf8,explicit,tag:0"`
		}{on.TypeID, on.Value}, "tag:0")
		if err != nil {
			return pkix.Extension{}, err
		}
		gns = append(gns, asn1.RawValue{FullBytes: der})
	}
	for _, e := range n.emails {
		gns = append(gns, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: sanEmail, Bytes: []byte(e)})
	}
	for _, d := range n.dns {
		gns = append(gns, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: sanDNS, Bytes: []byte(d)})
	}
	for _, u := range n.uris {
		gns = append(gns, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: sanURI, Bytes: []byte(u)})
	}
	for _, ip := range n.ips {
		gns = append(gns, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: sanIP, Bytes: ip})
	}
	value, err := asn1.Marshal(gns)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSubjectAltName, Critical: emptySubject, Value: value}, nil
}

func ipAllowed(ranges []netip.Prefix, ip net.IP) bool {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	addr = addr.Unmap()
	for _, r := range ranges {
		if r.Contains(addr) {
			return true
		}
	}
	return false
}

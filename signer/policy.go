package signer

import (
	"encoding/asn1"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Limits every policy shares. A request outside them is refused, whatever the issuer allows.
const (
	// DefaultMaxDuration caps every certificate when the issuer names no maximum: cert-manager's
	// default duration, so a default Certificate is never shortened.
	DefaultMaxDuration = 2160 * time.Hour
	// MinDuration is cert-manager's own minimum for a Certificate's duration.
	MinDuration = time.Hour
	// DefaultTrustDomain is the SPIFFE trust domain of a cluster that names none.
	DefaultTrustDomain = "cluster.local"
)

// KeyAlgorithm is a family of subject keys a policy can allow.
type KeyAlgorithm string

const (
	KeyRSA     KeyAlgorithm = "RSA"
	KeyECDSA   KeyAlgorithm = "ECDSA"
	KeyEd25519 KeyAlgorithm = "Ed25519"
	KeyMLDSA   KeyAlgorithm = "ML-DSA"
)

// Policy is what an issuer allows into the certificates it signs; the builder enforces it.
//
// The zero Policy is the default: any DNS, IP, URI and email name, any common name, a SPIFFE ID
// only in the trust domain cluster.local and naming the request's own namespace, every usage but
// "any", every key type, at most DefaultMaxDuration. otherName SANs are never allowed by default.
//
// Name patterns: "{namespace}" stands for the request's namespace (a pattern with it matches
// nothing when the request has none), and "*" for any run of characters within one DNS label (DNS
// names), one path segment (URIs), the part before the "@" (emails), or anything (common names).
// Once any name list (DNSNames, URIs, IPRanges, Emails, CommonNames) is set, the policy is
// restricted: every requested name must match a pattern of its type, and a type with no list is
// not allowed at all. A restricted policy allows a common name that matches CommonNames or repeats
// one of the request's SANs.
type Policy struct {
	DNSNames    []string
	URIs        []string
	IPRanges    []netip.Prefix
	Emails      []string
	CommonNames []string
	// OtherNames are the otherName type OIDs a request may carry (e.g. 1.3.6.1.4.1.311.20.2.3, a
	// Microsoft UPN), each with a UTF8String value.
	OtherNames []asn1.ObjectIdentifier
	// Usages are the cert-manager usage names a request may ask for; empty: every known usage
	// except "any".
	Usages []string
	// KeyAlgorithms are the subject key families allowed; empty: all of them.
	KeyAlgorithms []KeyAlgorithm
	// MinRSABits raises the smallest RSA key accepted above the floor of 2048 bits.
	MinRSABits int
	// MaxDuration caps the validity (never refused, shortened); zero: DefaultMaxDuration.
	MaxDuration time.Duration
	// TrustDomain is the only SPIFFE trust domain allowed; "": DefaultTrustDomain.
	TrustDomain string
	// WorkloadDNSNames are the DNS name patterns a verified Workload may add to its SPIFFE ID
	// (spec.podCertificates.dnsNames); empty: none. DNSNames, when set, must allow them too.
	WorkloadDNSNames []string
	// SPIFFEAnyNamespace lets a SPIFFE ID name any namespace, not only the request's own
	// (spiffe://<trust domain>/ns/<namespace>/...). Only a cluster-wide issuer may set it.
	SPIFFEAnyNamespace bool
	// SPIFFERequesterBound allows a SPIFFE ID only as the requester's own: exactly
	// spiffe://<trust domain>/ns/<namespace>/sa/<name> when LeafRequest.Requester is the service
	// account system:serviceaccount:<namespace>:<name>, and none for any other requester.
	SPIFFERequesterBound bool
}

// Restricted reports whether the policy names which names may be requested.
func (p *Policy) Restricted() bool {
	return len(p.DNSNames)+len(p.URIs)+len(p.IPRanges)+len(p.Emails)+len(p.CommonNames) > 0
}

func (p *Policy) maxDuration() time.Duration {
	if p.MaxDuration > 0 {
		return p.MaxDuration
	}
	return DefaultMaxDuration
}

func (p *Policy) trustDomain() string {
	if p.TrustDomain != "" {
		return p.TrustDomain
	}
	return DefaultTrustDomain
}

// Validate checks the policy itself, so that a typo makes the issuer not ready instead of
// refusing every request.
func (p *Policy) Validate() error {
	if p.MaxDuration != 0 && p.MaxDuration < MinDuration {
		return fmt.Errorf("maxDuration %s is under the %s minimum", p.MaxDuration, MinDuration)
	}
	if _, _, err := ParseUsages(p.Usages); err != nil {
		return fmt.Errorf("policy.usages: %w", err)
	}
	for _, a := range p.KeyAlgorithms {
		if !slices.Contains([]KeyAlgorithm{KeyRSA, KeyECDSA, KeyEd25519, KeyMLDSA}, a) {
			return fmt.Errorf("policy.keyAlgorithms: unknown %q; use RSA, ECDSA, Ed25519 or ML-DSA", a)
		}
	}
	if p.MinRSABits != 0 && (p.MinRSABits < minRSABits || p.MinRSABits > maxRSABits) {
		return fmt.Errorf("policy.minRSAKeySize %d is outside %d-%d", p.MinRSABits, minRSABits, maxRSABits)
	}
	if p.TrustDomain != "" && !validTrustDomain(p.TrustDomain) {
		return fmt.Errorf("policy.spiffe.trustDomain %q is not a SPIFFE trust domain: use lower case letters, digits, '.', '-' and '_'", p.TrustDomain)
	}
	for field, patterns := range map[string][]string{"policy.dnsNames": p.DNSNames, "podCertificates.dnsNames": p.WorkloadDNSNames, "policy.uris": p.URIs, "policy.emails": p.Emails, "policy.commonNames": p.CommonNames} {
		for _, pat := range patterns {
			if strings.ContainsFunc(pat, isControl) || pat == "" {
				return fmt.Errorf("%s: pattern %q is empty or has a control character", field, pat)
			}
		}
	}
	return nil
}

// matchAny reports whether name matches one of patterns, with "{namespace}" replaced by namespace
// and "*" matching any run of characters other than sep (0: any character).
func matchAny(patterns []string, name, namespace string, sep byte) bool {
	for _, p := range patterns {
		if strings.Contains(p, "{namespace}") && namespace == "" {
			continue
		}
		if glob(p, name, namespace, sep) {
			return true
		}
	}
	return false
}

// glob matches name against pattern, where "*" is any run of characters other than sep and
// "{namespace}" is namespace, literally (a "*" in it is no wildcard). Dynamic programming over
// pattern and name positions keeps it O(len(pattern) × len(name)) whatever the input.
func glob(pattern, name, namespace string, sep byte) bool {
	type token struct {
		wildcard bool
		literal  byte
	}
	var tokens []token
	for part, rest, more := strings.Cut(pattern, "{namespace}"); ; part, rest, more = strings.Cut(rest, "{namespace}") {
		for i := 0; i < len(part); i++ {
			tokens = append(tokens, token{wildcard: part[i] == '*', literal: part[i]})
		}
		if !more {
			break
		}
		for i := 0; i < len(namespace); i++ {
			tokens = append(tokens, token{literal: namespace[i]})
		}
	}
	// match[j]: the tokens so far match name[:j].
	match := make([]bool, len(name)+1)
	match[0] = true
	for _, tok := range tokens {
		next := make([]bool, len(name)+1)
		for j := 0; j <= len(name); j++ {
			if tok.wildcard {
				next[j] = match[j] || (j > 0 && next[j-1] && (sep == 0 || name[j-1] != sep))
			} else {
				next[j] = j > 0 && match[j-1] && name[j-1] == tok.literal
			}
		}
		match = next
	}
	return match[len(name)]
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

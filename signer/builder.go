package signer

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// LeafRequest is what a caller asks of the builder. Every field is a wish: the issuer's Policy
// and the rules of this file decide what the certificate holds.
type LeafRequest struct {
	// CSR is checked by ParseCSR (size, key type, proof of possession). Of it, only the subject
	// (when every attribute passes), the SANs (each checked and re-encoded) and the public key are
	// used; no other extension it requests is ever copied.
	CSR *x509.CertificateRequest
	// Namespace is where the request comes from: "{namespace}" in the policy's patterns, and the
	// namespace a SPIFFE ID must name. Empty outside a cluster.
	Namespace string
	// Duration is the requested validity, at least MinDuration (cert-manager's own default, 2160h,
	// is the caller's to fill in).
	Duration time.Duration
	// Usages are cert-manager usage names; empty: cert-manager's default (digital signature, key
	// encipherment).
	Usages []string
	// IsCA asks for a CA certificate, which pq-issuer never signs.
	IsCA bool
	// Workload, when set, is the verified identity the certificate names instead of the CSR's
	// subject and SANs (see Workload); Namespace is then required. Empty Usages: DefaultUsages.
	Workload *Workload
	// Requester is the Kubernetes user name that created the request, as the API server recorded
	// it (spec.username); "" outside a cluster. Only Policy.SPIFFERequesterBound reads it.
	Requester string
}

// build makes the only template pq-issuer signs: an allowlist filled from the request, never a
// copy of it. Errors are *Error with ReasonPolicyViolation (or ReasonInvalidCSR): the request, not
// the issuer, is wrong.
func (ca *CA) build(req LeafRequest, pol *Policy, now time.Time) (*x509.Certificate, *Issued, error) {
	if req.CSR == nil {
		return nil, nil, newError(ReasonInvalidCSR, "the request has no CSR")
	}
	if req.IsCA {
		return nil, nil, newError(ReasonPolicyViolation, "the request asks for a CA certificate (isCA: true); pq-issuer signs only leaf certificates")
	}
	pub := req.CSR.PublicKey
	if err := checkPublicKey(pub, req.CSR.RawSubjectPublicKeyInfo); err != nil {
		return nil, nil, err
	}
	if err := pol.CheckKey(pub); err != nil {
		return nil, nil, err
	}
	subj, sans, usages, err := ca.requestedNames(req, pol)
	if err != nil {
		return nil, nil, err
	}
	if err := pol.checkNames(subj, sans, req); err != nil {
		return nil, nil, err
	}
	if subj.commonName == "" && sans.count() == 0 {
		return nil, nil, newError(ReasonPolicyViolation, "the request names nobody: it has no common name and no DNS, IP, URI or email SAN; add the workload's names")
	}
	out := &Issued{}
	tmpl := &x509.Certificate{
		RawSubject:            subj.raw,
		BasicConstraintsValid: true,
	}
	if sans.count() > 0 {
		sanExt, err := marshalSANs(sans, subj.empty)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding the SANs: %w", err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, sanExt)
	}
	if tmpl.KeyUsage, tmpl.ExtKeyUsage, out.DroppedKeyUsages, err = pol.usages(usages, keyFamily(pub)); err != nil {
		return nil, nil, err
	}
	if tmpl.NotBefore, tmpl.NotAfter, out.Capped, err = ca.validity(req.Duration, pol, now); err != nil {
		return nil, nil, err
	}
	return tmpl, out, nil
}

// emptySubject is the DER of a Name with no attributes: a workload certificate's subject, as
// X509-SVIDs have no use for one.
var emptySubject = []byte{0x30, 0x00}

// requestedNames are the subject, SANs and usages the request asks for: the CSR's, or those derived
// from a verified workload.
func (ca *CA) requestedNames(req LeafRequest, pol *Policy) (*subject, *names, []string, error) {
	if w := req.Workload; w != nil {
		sans, err := pol.workloadNames(w, req.Namespace)
		if err != nil {
			return nil, nil, nil, err
		}
		usages := req.Usages
		if len(usages) == 0 {
			usages = DefaultUsages()
		}
		return &subject{raw: emptySubject, empty: true}, sans, usages, nil
	}
	subj, err := checkSubject(req.CSR.RawSubject, req.CSR.Subject, ca.Chain)
	if err != nil {
		return nil, nil, nil, err
	}
	sans, err := parseSANs(req.CSR.Extensions)
	if err != nil {
		return nil, nil, nil, err
	}
	return subj, sans, req.Usages, nil
}

// CheckKey refuses a subject key of a family or size the policy does not allow; a caller that must
// answer with its own reason (a PodCertificateRequest's UnsupportedKeyType) asks it first.
func (p *Policy) CheckKey(pub crypto.PublicKey) error {
	family := keyFamily(pub)
	if len(p.KeyAlgorithms) > 0 && !slices.Contains(p.KeyAlgorithms, family) {
		return newError(ReasonPolicyViolation, "the subject key is %s; the issuer's policy (keyAlgorithms) allows only %s", family, joinAlgorithms(p.KeyAlgorithms))
	}
	if k, ok := pub.(*rsa.PublicKey); ok && k.N.BitLen() < p.MinRSABits {
		return newError(ReasonPolicyViolation, "the RSA key is %d bits; the issuer's policy (minRSAKeySize) asks for at least %d", k.N.BitLen(), p.MinRSABits)
	}
	return nil
}

func joinAlgorithms(as []KeyAlgorithm) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// checkNames applies the policy to every name the request carries.
func (p *Policy) checkNames(subj *subject, n *names, req LeafRequest) error {
	namespace := req.Namespace
	restricted := p.Restricted()
	deny := func(what, value, field string, patterns []string) error {
		if len(patterns) == 0 {
			return newError(ReasonPolicyViolation, "the %s %q is not allowed: the issuer's policy allows no %ss (policy.%s is empty)", what, value, what, field)
		}
		return newError(ReasonPolicyViolation, "the %s %q is not allowed: it matches none of the issuer's policy.%s %q", what, value, field, patterns)
	}
	for _, d := range n.dns {
		if restricted && !matchAny(p.DNSNames, strings.ToLower(d), namespace, '.') && !matchAny(p.DNSNames, d, namespace, '.') {
			return deny("DNS name", d, "dnsNames", p.DNSNames)
		}
	}
	for _, e := range n.emails {
		if restricted && !matchAny(p.Emails, e, namespace, '@') {
			return deny("email", e, "emails", p.Emails)
		}
	}
	for _, ip := range n.ips {
		if restricted && !ipAllowed(p.IPRanges, ip) {
			ranges := make([]string, len(p.IPRanges))
			for i, r := range p.IPRanges {
				ranges[i] = r.String()
			}
			return deny("IP address", ip.String(), "ipRanges", ranges)
		}
	}
	for _, u := range n.uris {
		if isSPIFFE(u) {
			if err := p.checkSPIFFE(u, len(n.uris), req); err != nil {
				return err
			}
		}
		if restricted && !matchAny(p.URIs, u, namespace, '/') {
			return deny("URI", u, "uris", p.URIs)
		}
	}
	for _, on := range n.otherNames {
		if !slices.ContainsFunc(p.OtherNames, on.TypeID.Equal) {
			return newError(ReasonPolicyViolation, "the otherName SAN of type %s (%q) is not allowed: the issuer's policy.otherNames does not name that OID", on.TypeID, on.Value)
		}
	}
	if cn := subj.commonName; cn != "" && restricted && !matchAny(p.CommonNames, cn, namespace, 0) && !n.names(cn) {
		return newError(ReasonPolicyViolation, "the common name %q is not allowed: it is none of the request's SANs and matches none of the issuer's policy.commonNames %q", cn, p.CommonNames)
	}
	return nil
}

// names reports whether v is one of the request's SANs, as a common name often repeats one.
func (n *names) names(v string) bool {
	if slices.Contains(n.dns, v) || slices.Contains(n.emails, v) || slices.Contains(n.uris, v) {
		return true
	}
	return slices.ContainsFunc(n.ips, func(ip net.IP) bool { return ip.String() == v })
}

// checkSPIFFE binds a SPIFFE ID to the issuer's trust domain, the request's namespace and, when
// the policy says so, its requester. A verified Workload's ID is derived from the workload itself,
// so it is bound already.
func (p *Policy) checkSPIFFE(uri string, uris int, req LeafRequest) error {
	namespace := req.Namespace
	if uris > 1 {
		return newError(ReasonPolicyViolation, "the request has %d URI SANs with the SPIFFE ID %q; an X509-SVID has exactly one URI SAN", uris, uri)
	}
	td, path := spiffeTrustDomainAndPath(uri)
	if td != p.trustDomain() {
		return newError(ReasonPolicyViolation, "the SPIFFE ID %q is in trust domain %q; this issuer's is %q (policy.spiffe.trustDomain)", uri, td, p.trustDomain())
	}
	if p.SPIFFERequesterBound && req.Workload == nil {
		if err := p.checkRequesterSPIFFE(uri, req.Requester); err != nil {
			return err
		}
	}
	if p.SPIFFEAnyNamespace {
		return nil
	}
	if namespace == "" {
		return newError(ReasonPolicyViolation, "the SPIFFE ID %q must name the request's namespace, and the request has none (offline: kubectl pq sign --namespace NAMESPACE)", uri)
	}
	if !strings.HasPrefix(path, "/ns/"+namespace+"/") {
		return newError(ReasonPolicyViolation, "the SPIFFE ID %q does not name the request's namespace %q: it must start with spiffe://%s/ns/%s/ (a cluster issuer may relax this with policy.spiffe.allowAnyNamespace)", uri, namespace, td, namespace)
	}
	return nil
}

// usages maps the requested usages through the policy and the key's profile. Usages the key type
// cannot serve are dropped (cert-manager asks for key encipherment whatever the key); usages the
// policy does not allow, unknown names, "any" without the policy's leave, and CA usages are refused.
func (p *Policy) usages(requested []string, family KeyAlgorithm) (x509.KeyUsage, []x509.ExtKeyUsage, x509.KeyUsage, error) {
	if len(requested) == 0 {
		requested = certManagerDefaultUsages
	}
	allowed := make([]string, len(p.Usages))
	for i, u := range p.Usages {
		allowed[i] = canonicalUsage(u)
	}
	ku, eku, err := ParseUsages(requested)
	if err != nil {
		return 0, nil, 0, newError(ReasonPolicyViolation, "%v", err)
	}
	if bad := ku & (x509.KeyUsageCertSign | x509.KeyUsageCRLSign); bad != 0 {
		return 0, nil, 0, newError(ReasonPolicyViolation, "the request asks for %s on a leaf certificate; only a CA may sign certificates or CRLs", strings.Join(KeyUsageNames(bad), ", "))
	}
	profile := profileOf(family)
	dropped := ku &^ profile.usages
	ku &= profile.usages
	for _, name := range requested {
		name = canonicalUsage(name)
		if bit := keyUsageBit(name); bit != 0 && bit&profile.usages == 0 {
			continue // dropped for the key type: nothing of it reaches the certificate
		}
		switch {
		case len(allowed) > 0 && !slices.Contains(allowed, name):
			return 0, nil, 0, newError(ReasonPolicyViolation, "the usage %q is not allowed: the issuer's policy.usages allows %q", name, p.Usages)
		case name == "any" && !slices.Contains(allowed, "any"):
			return 0, nil, 0, newError(ReasonPolicyViolation, "the usage \"any\" (anyExtendedKeyUsage) makes the certificate good for every purpose; the issuer's policy.usages must name it")
		}
	}
	return ku, slices.Compact(eku), dropped, nil
}

// validity is [now, now+duration] in whole seconds, capped by the policy and the CA.
func (ca *CA) validity(requested time.Duration, pol *Policy, now time.Time) (time.Time, time.Time, Cap, error) {
	requested = requested.Truncate(time.Second)
	if requested < MinDuration {
		return time.Time{}, time.Time{}, CapNone, newError(ReasonPolicyViolation, "the requested duration %s is under the %s minimum (cert-manager's too); request at least %s", requested, MinDuration, MinDuration)
	}
	notBefore := now.Truncate(time.Second)
	if notBefore.Before(ca.Certificate.NotBefore) {
		notBefore = ca.Certificate.NotBefore
	}
	notAfter, capped := notBefore.Add(requested), CapNone
	if limit := notBefore.Add(pol.maxDuration()); notAfter.After(limit) {
		notAfter, capped = limit, CapMaxDuration
	}
	if notAfter.After(ca.NotAfter) {
		notAfter, capped = ca.NotAfter.Truncate(time.Second), CapCAExpiry
	}
	if !notAfter.After(now) {
		return time.Time{}, time.Time{}, CapNone, newError(ReasonPolicyViolation, "the certificate would already be expired (notAfter %s, the CA's expiry)", notAfter.UTC().Format(time.RFC3339))
	}
	return notBefore, notAfter, capped, nil
}

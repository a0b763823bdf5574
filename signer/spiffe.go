package signer

import (
	"net/url"
	"strings"
)

// serviceAccountUserPrefix starts the user name Kubernetes gives a service account's token.
const serviceAccountUserPrefix = "system:serviceaccount:"

// ServiceAccountOf is the namespace and name of the service account whose Kubernetes user name is
// username (system:serviceaccount:<namespace>:<name>); ok is false for any other user.
func ServiceAccountOf(username string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(username, serviceAccountUserPrefix)
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	if !ok || !namespaceName.MatchString(namespace) || len(name) > maxDNSNameLength || !serviceAccountName.MatchString(name) {
		return "", "", false
	}
	return namespace, name, true
}

// checkRequesterSPIFFE allows uri only as the requester's own SPIFFE ID (Policy.SPIFFERequesterBound).
func (p *Policy) checkRequesterSPIFFE(uri, requester string) error {
	const rule = "policy.spiffe.requesterBound allows a SPIFFE ID only as the requesting service account's own"
	if requester == "" {
		return newError(ReasonPolicyViolation, "the SPIFFE ID %q is not allowed: %s, and the request names no requester (a service account's own request through the Kubernetes API does)", uri, rule)
	}
	namespace, name, ok := ServiceAccountOf(requester)
	if !ok {
		return newError(ReasonPolicyViolation, "the SPIFFE ID %q is not allowed: %s, and the requester %q is not a service account (%s<namespace>:<name>); request it with the token of the service account it names", uri, rule, requester, serviceAccountUserPrefix)
	}
	if want := SPIFFEID(p.TrustDomain, namespace, name); uri != want {
		return newError(ReasonPolicyViolation, "the SPIFFE ID %q is not allowed: %s, and the requester %s may have only %q", uri, rule, requester, want)
	}
	return nil
}

// checkSPIFFEID applies the X509-SVID rules (SPIFFE ID §2 and §3, X509-SVID §2): a lower-case
// trust domain, a non-empty path of non-empty segments that are not "." or "..", and no port,
// user info, query or fragment.
func checkSPIFFEID(raw string, u *url.URL) error {
	switch {
	case u.Scheme != "spiffe":
		return spiffeError(raw, "the scheme must be lower-case \"spiffe\"")
	case u.User != nil:
		return spiffeError(raw, "it has user info")
	case u.Port() != "" || strings.HasSuffix(u.Host, ":"):
		return spiffeError(raw, "it has a port")
	case u.RawQuery != "" || u.ForceQuery:
		return spiffeError(raw, "it has a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return spiffeError(raw, "it has a fragment")
	case !validTrustDomain(u.Host):
		return spiffeError(raw, "the trust domain must be lower-case letters, digits, '.', '-' and '_'")
	case u.Path == "" || u.Path == "/":
		return spiffeError(raw, "the path is empty; a workload ID names something, e.g. /ns/<namespace>/sa/<service account>")
	case u.RawPath != "":
		return spiffeError(raw, "the path has percent-encoded characters")
	}
	for _, seg := range strings.Split(u.Path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." || strings.IndexFunc(seg, func(r rune) bool { return !spiffePathChar(r) }) >= 0 {
			return spiffeError(raw, "the path segment \""+seg+"\" is empty, '.', '..' or has a character other than letters, digits, '.', '-' and '_'")
		}
	}
	return nil
}

func spiffeError(raw, why string) error {
	return newError(ReasonPolicyViolation, "the SPIFFE ID %q breaks the X509-SVID rules: %s", raw, why)
}

func validTrustDomain(td string) bool {
	if td == "" || len(td) > 255 {
		return false
	}
	for _, r := range td {
		if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func spiffePathChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' || r == '_'
}

// isSPIFFE reports whether a checked URI SAN is a SPIFFE ID.
func isSPIFFE(uri string) bool { return strings.HasPrefix(uri, "spiffe://") }

// spiffeTrustDomainAndPath splits a checked SPIFFE ID.
func spiffeTrustDomainAndPath(uri string) (string, string) {
	rest := strings.TrimPrefix(uri, "spiffe://")
	slash := strings.IndexByte(rest, '/')
	return rest[:slash], rest[slash:]
}

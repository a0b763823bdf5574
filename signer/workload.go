package signer

import (
	"fmt"
	"regexp"
	"strings"
)

// Workload is an identity the caller has verified rather than one a CSR asks for: a pod's
// namespace (LeafRequest.Namespace) and service account, as a PodCertificateRequest carries them
// after the API server's NodeRestriction admission checked them against the pod. With it the
// builder derives the certificate's names and uses the CSR only for its key: the kubelet's CSR is
// empty by design, and anything else in it is ignored.
type Workload struct {
	// ServiceAccount is the pod's service account: the last segment of its SPIFFE ID.
	ServiceAccount string
	// DNSNames are names the pod's author asked for besides the SPIFFE ID. The author, not
	// Kubernetes, vouches for them, so each must match the policy's WorkloadDNSNames.
	DNSNames []string
}

// Kubernetes' object name rules, as far as a SPIFFE path needs them: a namespace is a DNS label,
// a service account a DNS subdomain.
var (
	namespaceName      = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	serviceAccountName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// SPIFFEID is the identity a pod of namespace and serviceAccount gets in trustDomain (empty:
// DefaultTrustDomain), the form Istio, the kubelet's reference signer and SPIRE's Kubernetes
// workload attestor share.
func SPIFFEID(trustDomain, namespace, serviceAccount string) string {
	if trustDomain == "" {
		trustDomain = DefaultTrustDomain
	}
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", trustDomain, namespace, serviceAccount)
}

// workloadNames are the names of a verified workload: its SPIFFE ID and the DNS names the policy
// lets it add.
func (p *Policy) workloadNames(w *Workload, namespace string) (*names, error) {
	if !namespaceName.MatchString(namespace) {
		return nil, newError(ReasonPolicyViolation, "the workload's namespace %q is not a Kubernetes namespace name", namespace)
	}
	if len(w.ServiceAccount) > maxDNSNameLength || !serviceAccountName.MatchString(w.ServiceAccount) {
		return nil, newError(ReasonPolicyViolation, "the workload's service account %q is not a Kubernetes service account name", w.ServiceAccount)
	}
	n := &names{uris: []string{SPIFFEID(p.TrustDomain, namespace, w.ServiceAccount)}}
	if len(w.DNSNames) >= maxSANs {
		return nil, newError(ReasonPolicyViolation, "the workload asks for %d DNS names; at most %d are signed", len(w.DNSNames), maxSANs-1)
	}
	for _, d := range w.DNSNames {
		if err := checkDNSName(d); err != nil {
			return nil, err
		}
		if strings.HasPrefix(d, "*") {
			return nil, newError(ReasonPolicyViolation, "the workload asks for the wildcard DNS name %q; a pod's certificate names only itself", d)
		}
		if len(p.WorkloadDNSNames) == 0 {
			return nil, newError(ReasonPolicyViolation, "the workload asks for the DNS name %q, and the issuer lets workloads add none (spec.podCertificates.dnsNames is empty)", d)
		}
		if !matchAny(p.WorkloadDNSNames, d, namespace, '.') {
			return nil, newError(ReasonPolicyViolation, "the DNS name %q is not allowed: it matches none of the issuer's spec.podCertificates.dnsNames %q", d, p.WorkloadDNSNames)
		}
		n.dns = append(n.dns, d)
	}
	return n, nil
}

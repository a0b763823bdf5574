package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// IssuerSpec is what PQIssuer and PQClusterIssuer share: where the CA lives and what it may sign.
type IssuerSpec struct {
	// CASecretName names a kubernetes.io/tls Secret: tls.crt is the ML-DSA CA certificate,
	// optionally followed by its chain up to the root; tls.key its PKCS#8 private key in the RFC 9881
	// seed or both format. A PQIssuer reads it from its own namespace, a PQClusterIssuer from the
	// controller's cluster resource namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	CASecretName string `json:"caSecretName"`

	// MaxDuration caps the validity of the certificates this issuer signs, whatever duration a
	// request asks for (the certificate is shortened, and the event says so); a certificate never
	// outlives the CA either. Unset: 2160h, cert-manager's default duration. At least 1h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`

	// Policy says which names, usages and keys the certificates of this issuer may carry. Unset:
	// the default policy (see IssuerPolicy).
	// +optional
	Policy *IssuerPolicy `json:"policy,omitempty"`

	// PodCertificates configures the certificates this issuer signs for pods through
	// PodCertificateRequests (the podCertificate projected volume of Kubernetes 1.37 and later), under
	// the signer name pqissuers.pq-issuer.dev/<namespace>.<name> or
	// pqclusterissuers.pq-issuer.dev/<name>. Unset: pods get their SPIFFE ID alone, for at most 24h.
	// +optional
	PodCertificates *PodCertificates `json:"podCertificates,omitempty"`
}

// PodCertificates is what a pod's certificate may hold beyond its SPIFFE ID
// spiffe://<trust domain>/ns/<namespace>/sa/<service account>, which pq-issuer derives from the
// PodCertificateRequest and the policy must allow like any other URI.
type PodCertificates struct {
	// MaxDuration caps a pod certificate's lifetime; the pod's maxExpirationSeconds may ask for
	// less, and spec.maxDuration caps it too. The kubelet renews at half the lifetime. Unset: 24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`
	// DNSNames are the DNS name patterns a pod may add to its certificate through the podCertificate
	// volume's userAnnotations key pq-issuer.dev/dns-names (names separated by commas), e.g.
	// "*.{namespace}.svc". The pod author writes those annotations, so nothing but these patterns
	// (and spec.policy.dnsNames, when set) vouches for them. Unset: a pod asking for DNS names is
	// denied.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	DNSNames []string `json:"dnsNames,omitempty"`
}

// IssuerPolicy is what an issuer allows into the certificates it signs; a request outside it fails
// with reason PolicyViolation, naming the value and the rule.
//
// With no name list set (dnsNames, uris, ipRanges, emails, commonNames) any DNS, IP, URI and email
// name and any common name may be requested. Once one is set, the policy is restricted: every
// requested name must match a pattern of its type, a type with no list is refused, and a common
// name must match commonNames or repeat one of the request's names. Patterns: "{namespace}" is the
// request's namespace, "*" any run of characters within one DNS label, one URI path segment, or the
// part of an email before the "@".
//
// Whatever the policy: a SPIFFE ID (spiffe:// URI) must be in spiffe.trustDomain and name the
// request's namespace (spiffe://<trust domain>/ns/<namespace>/...) unless a PQClusterIssuer sets
// spiffe.allowAnyNamespace; subjects with Kubernetes' reserved "system:" names, CA certificates,
// CA usages and the "any" usage (unless listed in usages) are refused.
type IssuerPolicy struct {
	// DNSNames are the DNS name patterns allowed, e.g. "*.{namespace}.svc.cluster.local".
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	DNSNames []string `json:"dnsNames,omitempty"`
	// URIs are the URI patterns allowed, e.g. "spiffe://cluster.local/ns/{namespace}/sa/*".
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=2048
	URIs []string `json:"uris,omitempty"`
	// IPRanges are the CIDR ranges IP SANs must fall in, e.g. "10.0.0.0/8".
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="self.all(r, isCIDR(r))",message="every ipRanges entry must be a CIDR range such as 10.0.0.0/8"
	IPRanges []string `json:"ipRanges,omitempty"`
	// Emails are the email address patterns allowed, e.g. "*@example.com".
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=254
	Emails []string `json:"emails,omitempty"`
	// CommonNames are the common name patterns allowed besides a repeat of one of the request's
	// names.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=64
	CommonNames []string `json:"commonNames,omitempty"`
	// OtherNames are the otherName SAN type OIDs a request may carry (cert-manager's otherNames),
	// e.g. "1.3.6.1.4.1.311.20.2.3" for a Microsoft UPN. Never allowed by default.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^[0-2](\.(0|[1-9][0-9]*))+$`
	OtherNames []string `json:"otherNames,omitempty"`
	// Usages are the cert-manager usages a request may ask for, e.g. "digital signature", "server
	// auth", "client auth". Unset: every usage pq-issuer knows except "any".
	// +optional
	// +kubebuilder:validation:MaxItems=16
	Usages []string `json:"usages,omitempty"`
	// KeyAlgorithms are the subject key types allowed. Unset: all of them.
	// +optional
	// +kubebuilder:validation:items:Enum=RSA;ECDSA;Ed25519;ML-DSA
	KeyAlgorithms []string `json:"keyAlgorithms,omitempty"`
	// MinRSAKeySize is the smallest RSA key allowed, in bits. Unset: 2048.
	// +optional
	// +kubebuilder:validation:Minimum=2048
	// +kubebuilder:validation:Maximum=8192
	MinRSAKeySize int `json:"minRSAKeySize,omitempty"`
	// SPIFFE binds SPIFFE IDs to a trust domain, the request's namespace and, with requesterBound,
	// the requester.
	// +optional
	SPIFFE *SPIFFEPolicy `json:"spiffe,omitempty"`
	// NamespaceSelector limits a PQClusterIssuer to requests from the namespaces it selects. Unset:
	// every namespace. A PQIssuer signs only for its own namespace and may not set it.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// SPIFFEPolicy says which SPIFFE IDs an issuer signs.
type SPIFFEPolicy struct {
	// TrustDomain is the only trust domain allowed. Unset: cluster.local.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:Pattern=`^[a-z0-9._-]+$`
	TrustDomain string `json:"trustDomain,omitempty"`
	// AllowAnyNamespace lets a PQClusterIssuer sign SPIFFE IDs that name another namespace than the
	// request's (for a central identity service). A PQIssuer may not set it.
	// +optional
	AllowAnyNamespace bool `json:"allowAnyNamespace,omitempty"`
	// RequesterBound allows a SPIFFE ID only as the requester's own: exactly
	// spiffe://<trust domain>/ns/<namespace>/sa/<name> for a request created by the service account
	// system:serviceaccount:<namespace>:<name> (the request's spec.username), and no SPIFFE ID for
	// any other requester. It is meant for CertificateSigningRequests a workload creates with its
	// own service account token; a CertificateRequest is bound the same way, so those cert-manager
	// creates for Certificates (as its own service account) may carry no SPIFFE ID. Pod certificates
	// are not affected: their SPIFFE ID is the pod's own, checked by the API server.
	// +optional
	RequesterBound bool `json:"requesterBound,omitempty"`
}

// IssuerStatus reports whether the issuer can sign and with what.
type IssuerStatus struct {
	// Conditions has one condition, Ready: True when the CA Secret holds a usable ML-DSA CA.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Algorithm is the CA key's ML-DSA parameter set: ML-DSA-44, ML-DSA-65 or ML-DSA-87.
	// +optional
	Algorithm string `json:"algorithm,omitempty"`

	// CANotAfter is when the CA (or the earliest-expiring certificate of its chain) expires. No
	// certificate this issuer signs is valid after it.
	// +optional
	CANotAfter *metav1.Time `json:"caNotAfter,omitempty"`

	// Names is Restricted when spec.policy names which names may be requested, Unrestricted when
	// any DNS, IP, URI and email name may be (shown by kubectl get -o wide).
	// +optional
	Names string `json:"names,omitempty"`

	// TrustAnchors are the root certificates the issuer publishes in its ClusterTrustBundle and its
	// trust ConfigMap: the current CA's root and, after the CA changed, each previous root until every
	// certificate it may have signed has expired (its removeAfter).
	// +optional
	// +listType=atomic
	TrustAnchors []TrustAnchor `json:"trustAnchors,omitempty"`
}

// TrustAnchor is one published root certificate.
type TrustAnchor struct {
	// Certificate is the root certificate, PEM.
	Certificate string `json:"certificate"`
	// Subject is the root's subject, for people.
	// +optional
	Subject string `json:"subject,omitempty"`
	// RemoveAfter is set once the root is no longer the issuer's: it is when the last certificate the
	// root may have signed expires (the issuer's longest lifetime after the change, at most the
	// root's own expiry), and when the root leaves the published bundles.
	// +optional
	RemoveAfter *metav1.Time `json:"removeAfter,omitempty"`
}

// Values of IssuerStatus.Names.
const (
	NamesRestricted   = "Restricted"
	NamesUnrestricted = "Unrestricted"
)

// Issuer is what the controllers need of PQIssuer and PQClusterIssuer alike.
// +kubebuilder:object:generate=false
type Issuer interface {
	metav1.Object
	runtime.Object
	GetSpec() *IssuerSpec
	GetStatus() *IssuerStatus
}

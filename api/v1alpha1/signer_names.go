package v1alpha1

// The domains of the Kubernetes signer names of pq-issuer's issuers (PodCertificateRequests,
// ClusterTrustBundles, CertificateSigningRequests), as cert-manager's issuer-lib spells them:
// PQClusterIssuerSignerDomain/<name> and PQIssuerSignerDomain/<namespace>.<name>.
const (
	PQIssuerSignerDomain        = "pqissuers.pq-issuer.dev"
	PQClusterIssuerSignerDomain = "pqclusterissuers.pq-issuer.dev"
)

package v1alpha1

// CASecretLabel marks a Secret as a CA Secret: pq-issuer caches, and signs with, only Secrets whose
// owner set this label to CASecretLabelValue (`kubectl pq ca secret` writes it). Whoever may create
// a PQIssuer must not be able to point it at a Secret they cannot read and have pq-issuer use the key
// in it as a CA; the label is the owner's consent.
const (
	CASecretLabel      = "pq-issuer.dev/ca-secret"
	CASecretLabelValue = "true"
)

// Labels on the ClusterTrustBundle and the ConfigMap in which an issuer publishes its trust anchors
// (status.trustAnchors): the issuer's kind (PQIssuer or PQClusterIssuer), namespace (a PQIssuer's
// only) and name (left out when longer than a label value's 63 characters), for a pod's
// clusterTrustBundle labelSelector or a trust-manager Bundle to select.
const (
	IssuerKindLabel      = "pq-issuer.dev/issuer-kind"
	IssuerNamespaceLabel = "pq-issuer.dev/issuer-namespace"
	IssuerNameLabel      = "pq-issuer.dev/issuer-name"
)

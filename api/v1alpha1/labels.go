package v1alpha1

// CASecretLabel marks a Secret as a CA Secret: pq-issuer caches, and signs with, only Secrets whose
// owner set this label to CASecretLabelValue (`kubectl pq ca secret` writes it). Whoever may create
// a PQIssuer must not be able to point it at a Secret they cannot read and have pq-issuer use the key
// in it as a CA; the label is the owner's consent.
const (
	CASecretLabel      = "pq-issuer.dev/ca-secret"
	CASecretLabelValue = "true"
)

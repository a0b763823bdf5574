package v1alpha1

// ConditionReady is the one condition type of PQIssuer and PQClusterIssuer.
const ConditionReady = "Ready"

// Reasons of the Ready condition. Reasons about the CA's contents (KeyMissing, KeyMismatch, NotACA,
// Expired, UnsupportedKeyFormat, ...) are the signer's own reasons, passed on as they are.
const (
	// ReasonVerified: the CA Secret holds a usable ML-DSA CA; the issuer signs.
	ReasonVerified = "Verified"
	// ReasonSecretNotFound: the Secret named by spec.caSecretName does not exist (yet).
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretNotMarked: the Secret exists but lacks the label CASecretLabel=CASecretLabelValue
	// by which its owner lets issuers use it as a CA.
	ReasonSecretNotMarked = "SecretNotMarked"
	// ReasonInvalidSpec: the spec cannot be used, for example a negative maxDuration.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonSecretsRestricted: a PQIssuer outside the cluster resource namespace, while pq-issuer
	// may read Secrets only there (--cluster-issuers-only).
	ReasonSecretsRestricted = "SecretsRestricted"
	// ReasonInvalidCA: the CA Secret cannot be used for a reason the signer does not name.
	ReasonInvalidCA = "InvalidCA"
)

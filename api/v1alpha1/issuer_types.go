package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// IssuerSpec is what PQIssuer and PQClusterIssuer share: where the CA lives and how long it may
// sign for.
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
	// request asks for; a certificate never outlives the CA either. Unset: only the CA caps it.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`
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
}

// Issuer is what the controllers need of PQIssuer and PQClusterIssuer alike.
// +kubebuilder:object:generate=false
type Issuer interface {
	metav1.Object
	runtime.Object
	GetSpec() *IssuerSpec
	GetStatus() *IssuerStatus
}

package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// PQIssuer signs cert-manager CertificateRequests in its own namespace with an ML-DSA CA kept in a
// Secret of that namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=pqi,categories=cert-manager
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Algorithm",type=string,JSONPath=`.status.algorithm`
// +kubebuilder:printcolumn:name="CA Expires",type=string,JSONPath=`.status.caNotAfter`
// +kubebuilder:printcolumn:name="Names",type=string,JSONPath=`.status.names`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PQIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:validation:XValidation:rule="!has(self.policy) || !has(self.policy.namespaceSelector)",message="policy.namespaceSelector is for PQClusterIssuers: a PQIssuer signs only for its own namespace"
	// +kubebuilder:validation:XValidation:rule="!has(self.policy) || !has(self.policy.spiffe) || !has(self.policy.spiffe.allowAnyNamespace) || !self.policy.spiffe.allowAnyNamespace",message="policy.spiffe.allowAnyNamespace is for PQClusterIssuers: a PQIssuer signs SPIFFE IDs of its own namespace only"
	Spec   IssuerSpec   `json:"spec"`
	Status IssuerStatus `json:"status,omitempty"`
}

// GetSpec returns the issuer's spec.
func (i *PQIssuer) GetSpec() *IssuerSpec { return &i.Spec }

// GetStatus returns the issuer's status.
func (i *PQIssuer) GetStatus() *IssuerStatus { return &i.Status }

// PQIssuerList is a list of PQIssuers.
// +kubebuilder:object:root=true
type PQIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PQIssuer `json:"items"`
}

package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// PQClusterIssuer signs cert-manager CertificateRequests in every namespace with an ML-DSA CA kept
// in a Secret of the controller's cluster resource namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=pqci,categories=cert-manager
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Algorithm",type=string,JSONPath=`.status.algorithm`
// +kubebuilder:printcolumn:name="CA Expires",type=string,JSONPath=`.status.caNotAfter`
// +kubebuilder:printcolumn:name="Names",type=string,JSONPath=`.status.names`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PQClusterIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IssuerSpec   `json:"spec"`
	Status IssuerStatus `json:"status,omitempty"`
}

// GetSpec returns the issuer's spec.
func (i *PQClusterIssuer) GetSpec() *IssuerSpec { return &i.Spec }

// GetStatus returns the issuer's status.
func (i *PQClusterIssuer) GetStatus() *IssuerStatus { return &i.Status }

// PQClusterIssuerList is a list of PQClusterIssuers.
// +kubebuilder:object:root=true
type PQClusterIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PQClusterIssuer `json:"items"`
}

// Package v1alpha1 holds pq-issuer's API: PQIssuer and PQClusterIssuer, the cert-manager external
// issuers that sign with an ML-DSA CA.
// +kubebuilder:object:generate=true
// +groupName=pq-issuer.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the issuers, as cert-manager's issuerRef names
	// them (group: pq-issuer.dev).
	GroupVersion = schema.GroupVersion{Group: "pq-issuer.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the issuer types with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the issuer types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &PQIssuer{}, &PQIssuerList{}, &PQClusterIssuer{}, &PQClusterIssuerList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}

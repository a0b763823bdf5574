package controllers

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// certificatesV1Served reports whether the API server serves kind of certificates.k8s.io/v1:
// PodCertificateRequest and ClusterTrustBundle are there from Kubernetes 1.37, and the controllers
// that need them start only where they are (a watch of a missing kind would never sync).
func certificatesV1Served(mapper meta.RESTMapper, kind string) (bool, error) {
	_, err := mapper.RESTMapping(schema.GroupKind{Group: "certificates.k8s.io", Kind: kind}, "v1")
	if meta.IsNoMatchError(err) {
		return false, nil
	}
	return err == nil, err
}

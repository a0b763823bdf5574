package controllers

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestCertificatesV1Served: the pod certificate and trust bundle controllers start only where the
// API server serves their kinds (Kubernetes 1.37+), and a discovery failure is an error, not "no".
func TestCertificatesV1Served(t *testing.T) {
	v1 := schema.GroupVersion{Group: "certificates.k8s.io", Version: "v1"}
	beta := schema.GroupVersion{Group: "certificates.k8s.io", Version: "v1beta1"}
	tests := []struct {
		name    string
		mapper  meta.RESTMapper
		want    bool
		wantErr bool
	}{
		{name: "Kubernetes 1.37: v1", mapper: mapperWith(v1, "PodCertificateRequest"), want: true},
		{name: "Kubernetes 1.36: only v1beta1, off by default", mapper: mapperWith(beta, "PodCertificateRequest")},
		{name: "Kubernetes 1.33: only CertificateSigningRequest", mapper: mapperWith(v1, "CertificateSigningRequest")},
		{name: "discovery fails", mapper: failingMapper{}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := certificatesV1Served(tc.mapper, "PodCertificateRequest")
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("certificatesV1Served = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func mapperWith(gv schema.GroupVersion, kind string) meta.RESTMapper {
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{gv})
	m.Add(gv.WithKind(kind), meta.RESTScopeNamespace)
	return m
}

type failingMapper struct{ meta.RESTMapper }

func (failingMapper) RESTMapping(schema.GroupKind, ...string) (*meta.RESTMapping, error) {
	return nil, errors.New("the server is currently unable to handle the request")
}

package controllers

import (
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestSignerNames(t *testing.T) {
	tests := []struct {
		name   string
		signer string
		kind   string
		key    types.NamespacedName
		ok     bool
	}{
		{name: "cluster issuer", signer: "pqclusterissuers.pq-issuer.dev/mesh-ca", kind: "PQClusterIssuer", key: types.NamespacedName{Name: "mesh-ca"}, ok: true},
		{name: "cluster issuer with dots", signer: "pqclusterissuers.pq-issuer.dev/mesh.ca", kind: "PQClusterIssuer", key: types.NamespacedName{Name: "mesh.ca"}, ok: true},
		{name: "namespaced issuer", signer: "pqissuers.pq-issuer.dev/team-a.ca", kind: "PQIssuer", key: types.NamespacedName{Namespace: "team-a", Name: "ca"}, ok: true},
		{name: "namespaced issuer with dots", signer: "pqissuers.pq-issuer.dev/team-a.ca.v2", kind: "PQIssuer", key: types.NamespacedName{Namespace: "team-a", Name: "ca.v2"}, ok: true},
		{name: "namespaced issuer without namespace", signer: "pqissuers.pq-issuer.dev/ca"},
		{name: "another signer", signer: "issuers.cert-manager.io/team-a.ca"},
		{name: "kubernetes signer", signer: "kubernetes.io/kube-apiserver-client"},
		{name: "no path", signer: "pqclusterissuers.pq-issuer.dev"},
		{name: "upper case name", signer: "pqclusterissuers.pq-issuer.dev/Mesh"},
		{name: "wildcard", signer: "pqclusterissuers.pq-issuer.dev/*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, key, ok := issuerOfSigner(tc.signer)
			if ok != tc.ok || kind.Name != tc.kind || key != tc.key {
				t.Fatalf("issuerOfSigner(%q) = %s %v %v, want %s %v %v", tc.signer, kind.Name, key, ok, tc.kind, tc.key, tc.ok)
			}
			if ok && kind.signerName(key) != tc.signer {
				t.Errorf("signerName(%v) = %q, want %q", key, kind.signerName(key), tc.signer)
			}
		})
	}
}

// TestForPQSigners: the PodCertificateRequest and CertificateSigningRequest controllers see the
// requests for pq-issuer's signers only, and index them by signer name.
func TestForPQSigners(t *testing.T) {
	pcr := func(s string) client.Object {
		return &certificatesv1.PodCertificateRequest{Spec: certificatesv1.PodCertificateRequestSpec{SignerName: s}}
	}
	csr := func(s string) client.Object {
		return &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: s}}
	}
	tests := []struct {
		name string
		obj  client.Object
		want bool
	}{
		{name: "pod request for a PQClusterIssuer", obj: pcr("pqclusterissuers.pq-issuer.dev/mesh"), want: true},
		{name: "pod request for another signer", obj: pcr("example.com/mesh")},
		{name: "CSR for a PQIssuer", obj: csr("pqissuers.pq-issuer.dev/team.ca"), want: true},
		{name: "a kubelet's client CSR", obj: csr(certificatesv1.KubeAPIServerClientKubeletSignerName)},
		{name: "not a request of the certificates API", obj: &corev1.Secret{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := forPQSigners().Generic(event.GenericEvent{Object: tc.obj}); got != tc.want {
				t.Errorf("forPQSigners passes %v, want %v (signer name %q)", got, tc.want, signerNameOf(tc.obj))
			}
		})
	}
}

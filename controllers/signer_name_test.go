package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
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

package controllers

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// IssuerKind is what differs between PQIssuer and PQClusterIssuer.
type IssuerKind struct {
	Name          string
	ClusterScoped bool
	New           func() v1alpha1.Issuer
	NewList       func() client.ObjectList
}

// The two issuer kinds.
var (
	PQIssuerKind = IssuerKind{
		Name:    "PQIssuer",
		New:     func() v1alpha1.Issuer { return &v1alpha1.PQIssuer{} },
		NewList: func() client.ObjectList { return &v1alpha1.PQIssuerList{} },
	}
	PQClusterIssuerKind = IssuerKind{
		Name:          "PQClusterIssuer",
		ClusterScoped: true,
		New:           func() v1alpha1.Issuer { return &v1alpha1.PQClusterIssuer{} },
		NewList:       func() client.ObjectList { return &v1alpha1.PQClusterIssuerList{} },
	}
)

// issuerKinds are the kinds an issuerRef with group pq-issuer.dev may name.
var issuerKinds = []IssuerKind{PQIssuerKind, PQClusterIssuerKind}

func (k IssuerKind) controllerName() string { return strings.ToLower(k.Name) }

func (k IssuerKind) id(key types.NamespacedName) issuerID {
	return issuerID{kind: k.Name, namespace: key.Namespace, name: key.Name}
}

// secretHint tells where the Secret must be, for messages.
func (k IssuerKind) secretHint(clusterResourceNamespace string) string {
	if k.ClusterScoped {
		return fmt.Sprintf("a PQClusterIssuer reads its Secret from the cluster resource namespace %q", clusterResourceNamespace)
	}
	return "a PQIssuer reads its Secret from its own namespace"
}

package controllers

import (
	"context"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// Kubernetes signer names (PodCertificateRequests, ClusterTrustBundles, CertificateSigningRequests)
// of pq-issuer's issuers, as issuer-lib spells them: <plural>.<group>/<name> for a PQClusterIssuer,
// <plural>.<group>/<namespace>.<name> for a PQIssuer. A namespace has no dot, so the first dot of
// the path ends it.
const (
	pqIssuerSignerDomain        = v1alpha1.PQIssuerSignerDomain
	pqClusterIssuerSignerDomain = v1alpha1.PQClusterIssuerSignerDomain
)

// signerName is the signer name of an issuer of kind k.
func (k IssuerKind) signerName(key types.NamespacedName) string {
	if k.ClusterScoped {
		return pqClusterIssuerSignerDomain + "/" + key.Name
	}
	return pqIssuerSignerDomain + "/" + key.Namespace + "." + key.Name
}

// issuerOfSigner is the issuer a signer name names; false for another signer's names and for
// malformed ones.
func issuerOfSigner(signerName string) (IssuerKind, types.NamespacedName, bool) {
	domain, path, ok := strings.Cut(signerName, "/")
	if !ok {
		return IssuerKind{}, types.NamespacedName{}, false
	}
	switch domain {
	case pqClusterIssuerSignerDomain:
		if len(validation.IsDNS1123Subdomain(path)) > 0 {
			break
		}
		return PQClusterIssuerKind, types.NamespacedName{Name: path}, true
	case pqIssuerSignerDomain:
		ns, name, ok := strings.Cut(path, ".")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
			break
		}
		return PQIssuerKind, types.NamespacedName{Namespace: ns, Name: name}, true
	}
	return IssuerKind{}, types.NamespacedName{}, false
}

// signerNameField indexes the requests of the certificates API (PodCertificateRequests,
// CertificateSigningRequests) by signer name, to find those an issuer's change wakes.
const signerNameField = "spec.signerName"

// signerNameOf is the signer name of a request of the certificates API; "" for other objects.
func signerNameOf(o client.Object) string {
	switch r := o.(type) {
	case *certificatesv1.PodCertificateRequest:
		return r.Spec.SignerName
	case *certificatesv1.CertificateSigningRequest:
		return r.Spec.SignerName
	}
	return ""
}

// indexBySignerName registers signerNameField for obj, a request of the certificates API.
func indexBySignerName(ctx context.Context, mgr ctrl.Manager, obj client.Object) error {
	return mgr.GetFieldIndexer().IndexField(ctx, obj, signerNameField, func(o client.Object) []string {
		return []string{signerNameOf(o)}
	})
}

// forPQSigners passes the requests whose signer name names one of pq-issuer's issuers.
func forPQSigners() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, _, ok := issuerOfSigner(signerNameOf(o))
		return ok
	})
}

package controllers

import (
	"context"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// issuerGroupField is a CertificateRequest field that cert-manager's CRD declares selectable
// (`selectableFields`, cert-manager v1.21.2 does): with it the API server sends pq-issuer only the
// requests for its own issuers, and the cache never holds those of cert-manager's or other issuers.
const issuerGroupField = "spec.issuerRef.group"

// requestFieldSelector is the field selector of the CertificateRequest watch, found by listing one
// request with it. Where the installed CRD lacks the selectable field (older cert-manager) the API
// server refuses the selector, and a watch with it would never sync; then, as on any other error
// here, every request is watched, and those for other issuers are slimmed (cache_transform.go).
func requestFieldSelector(ctx context.Context, c client.Reader) fields.Selector {
	log := ctrl.LoggerFrom(ctx).WithName("setup")
	sel := fields.OneTermEqualSelector(issuerGroupField, v1alpha1.GroupVersion.Group)
	err := c.List(ctx, &cmapi.CertificateRequestList{}, client.Limit(1), client.MatchingFieldsSelector{Selector: sel})
	switch {
	case err == nil:
		log.Info("Watching only the CertificateRequests of pq-issuer's issuers", "fieldSelector", sel.String())
		return sel
	case apierrors.IsBadRequest(err):
		log.Info("Watching all CertificateRequests: the CertificateRequest CRD does not declare "+issuerGroupField+
			" selectable; a cert-manager whose CRDs do (v1.21.2 does) lets pq-issuer cache only its own", "reason", err.Error())
	default:
		log.Error(err, "Watching all CertificateRequests: cannot tell whether "+issuerGroupField+" is selectable")
	}
	return nil
}

package controllers

import (
	"context"
	"errors"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestRequestFieldSelector(t *testing.T) {
	crs := schema.GroupResource{Group: cmapi.SchemeGroupVersion.Group, Resource: "certificaterequests"}
	for _, tc := range []struct {
		name    string
		listErr error
		want    string // the selector, "" for none
	}{
		{name: "the CRD declares spec.issuerRef.group selectable", want: "spec.issuerRef.group=pq-issuer.dev"},
		{
			name:    "an older CRD refuses the field: watch every request",
			listErr: apierrors.NewBadRequest(`field label not supported: spec.issuerRef.group`),
		},
		{name: "no list permission: watch every request", listErr: apierrors.NewForbidden(crs, "", errors.New("RBAC"))},
		{name: "API server unreachable: watch every request", listErr: errors.New("connection refused")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotOpts client.ListOptions
			c := newFakeClientBuilder(t).WithInterceptorFuncs(interceptor.Funcs{
				List: func(_ context.Context, _ client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
					if _, ok := list.(*cmapi.CertificateRequestList); !ok {
						t.Errorf("listed %T, want CertificateRequests", list)
					}
					gotOpts.ApplyOptions(opts)
					return tc.listErr
				},
			}).Build()
			sel := requestFieldSelector(t.Context(), c)
			got := ""
			if sel != nil {
				got = sel.String()
			}
			if got != tc.want {
				t.Errorf("selector %q, want %q", got, tc.want)
			}
			if gotOpts.FieldSelector == nil || gotOpts.FieldSelector.String() != "spec.issuerRef.group=pq-issuer.dev" || gotOpts.Limit != 1 {
				t.Errorf("probe listed with %+v, want the selector and limit 1", gotOpts)
			}
		})
	}
}

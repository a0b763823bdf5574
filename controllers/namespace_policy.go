package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// checkNamespace refuses a request from a namespace a PQClusterIssuer's namespaceSelector does not
// select.
func checkNamespace(ctx context.Context, c client.Reader, kind IssuerKind, issuer v1alpha1.Issuer, namespace string) error {
	p := issuer.GetSpec().Policy
	if !kind.ClusterScoped || p == nil || p.NamespaceSelector == nil {
		return nil
	}
	selector, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
	if err != nil { // the issuer is not Ready with such a selector: it changed since
		return pending("Waiting for %s %s: its spec.policy.namespaceSelector cannot be used: %v", kind.Name, issuer.GetName(), err)
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		return fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	if !selector.Matches(labels.Set(ns.GetLabels())) {
		return permanent(string(signer.ReasonPolicyViolation), "namespace %s is not selected by %s %s's spec.policy.namespaceSelector (%s); request from a selected namespace, or label this one", namespace, kind.Name, issuer.GetName(), selector)
	}
	return nil
}

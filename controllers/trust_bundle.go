package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// An issuer publishes its trust anchors (status.trustAnchors, the current root first) twice, for
// two kinds of relying parties:
//   - a ClusterTrustBundle <signer name with "/" as ":">:bundle with the issuer's signer name, where
//     the API server serves them (Kubernetes 1.37 and later): pods mount it with a
//     clusterTrustBundle projected volume (signerName and labelSelector), next to the pod
//     certificates the issuer signs for them, and only who may attest for the signer can write it;
//   - a ConfigMap in the cluster resource namespace, key ca.crt, for cert-manager users on any
//     Kubernetes version: pqclusterissuer-<name>-trust-anchors for a PQClusterIssuer,
//     pqissuer-<namespace>.<name>-trust-anchors for a PQIssuer (as its signer name, signer_name.go).
//     There alone: trust-manager reads Bundle sources only from its trust namespace (the cluster
//     resource namespace, cert-manager, in the usual install), and pq-issuer then needs to write
//     ConfigMaps in no other namespace, where it could overwrite anyone's.
//
// Both carry the labels of trustAnchorLabels. The cache holds only objects with the kind label
// (trustAnchorCaches), and a change maps back to its issuer by the object's signer name or name,
// which unlike labels cannot be edited: an edited or deleted bundle is written again, and one whose
// issuer was deleted while pq-issuer was down is removed.

// trustConfigMapKey holds the PEM trust anchors in the ConfigMap, the key cert-manager's Secrets
// and Kubernetes' kube-root-ca.crt ConfigMap use.
const trustConfigMapKey = "ca.crt"

// trustConfigMapSuffix ends the names of trust ConfigMaps.
const trustConfigMapSuffix = "-trust-anchors"

// clusterTrustBundleName is the name of the ClusterTrustBundle of signerName: the API server
// requires the prefix <signer name with "/" as ":">:.
func clusterTrustBundleName(signerName string) string {
	return strings.ReplaceAll(signerName, "/", ":") + ":bundle"
}

// trustConfigMap is the ConfigMap of the issuer key, and false when the issuer's name is too long to
// name one (a PQIssuer's namespace and name of more than 229 characters together, a
// PQClusterIssuer's name of more than 223). The kind's prefix keeps a PQIssuer's and a
// PQClusterIssuer's apart.
func (k IssuerKind) trustConfigMap(key types.NamespacedName, clusterResourceNamespace string) (types.NamespacedName, bool) {
	issuer := key.Name
	if !k.ClusterScoped {
		issuer = key.Namespace + "." + key.Name
	}
	cm := types.NamespacedName{Namespace: clusterResourceNamespace, Name: k.controllerName() + "-" + issuer + trustConfigMapSuffix}
	return cm, len(cm.Name) <= validation.DNS1123SubdomainMaxLength
}

// issuerOfTrustConfigMap is the issuer of kind k whose trust ConfigMap cm would be; false for
// other ConfigMaps. A namespace has no dot, so the first dot of a PQIssuer's ends it.
func (k IssuerKind) issuerOfTrustConfigMap(cm types.NamespacedName, clusterResourceNamespace string) (types.NamespacedName, bool) {
	if cm.Namespace != clusterResourceNamespace {
		return types.NamespacedName{}, false
	}
	issuer, ok := strings.CutPrefix(cm.Name, k.controllerName()+"-")
	if !ok {
		return types.NamespacedName{}, false
	}
	if issuer, ok = strings.CutSuffix(issuer, trustConfigMapSuffix); !ok {
		return types.NamespacedName{}, false
	}
	if k.ClusterScoped {
		if len(validation.IsDNS1123Subdomain(issuer)) > 0 {
			return types.NamespacedName{}, false
		}
		return types.NamespacedName{Name: issuer}, true
	}
	ns, name, ok := strings.Cut(issuer, ".")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: ns, Name: name}, true
}

// trustAnchorLabels say which issuer published a bundle. A name longer than a label value may be
// goes without its label.
func (k IssuerKind) trustAnchorLabels(key types.NamespacedName) map[string]string {
	l := map[string]string{v1alpha1.IssuerKindLabel: k.Name}
	if !k.ClusterScoped {
		l[v1alpha1.IssuerNamespaceLabel] = key.Namespace
	}
	if len(validation.IsValidLabelValue(key.Name)) == 0 {
		l[v1alpha1.IssuerNameLabel] = key.Name
	}
	return l
}

// trustAnchorSelector selects the bundles pq-issuer publishes.
func trustAnchorSelector() labels.Selector {
	kinds, err := labels.NewRequirement(v1alpha1.IssuerKindLabel, selection.In, []string{PQIssuerKind.Name, PQClusterIssuerKind.Name})
	if err != nil {
		panic(err) // constant arguments
	}
	return labels.NewSelector().Add(*kinds)
}

// trustAnchorCaches are what the cache keeps of ConfigMaps and ClusterTrustBundles: pq-issuer's
// own (there may be thousands of others), and ConfigMaps only in the cluster resource namespace,
// the only one where the Helm chart grants them.
func trustAnchorCaches(opts Options) map[client.Object]cache.ByObject {
	caches := map[client.Object]cache.ByObject{&corev1.ConfigMap{}: {
		Label:      trustAnchorSelector(),
		Namespaces: map[string]cache.Config{opts.ClusterResourceNamespace: {}},
	}}
	if opts.clusterTrustBundles {
		caches[&certificatesv1.ClusterTrustBundle{}] = cache.ByObject{Label: trustAnchorSelector()}
	}
	return caches
}

// The ClusterTrustBundle of each issuer: attest for pq-issuer's signers lets it write them
// (admission plugin ClusterTrustBundleAttest), get takes back one that lost its labels, and
// update, not patch, replaces the bundle only if nobody changed it since it was read.
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=clustertrustbundles,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,verbs=attest,resourceNames=pqissuers.pq-issuer.dev/*;pqclusterissuers.pq-issuer.dev/*
// The trust ConfigMap of each issuer, the same verbs: list and watch for the (labelled) cache,
// get for one that lost its labels, create, update and delete for the ConfigMap itself. The Helm
// chart grants them in the cluster resource namespace only.
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update;delete

// publishTrustAnchors makes the ClusterTrustBundle and the ConfigMap of the issuer key hold
// anchors, or deletes them when there are none: the issuer is gone, or was never Ready.
func (r *IssuerReconciler) publishTrustAnchors(ctx context.Context, key types.NamespacedName, anchors []v1alpha1.TrustAnchor) error {
	var pems strings.Builder
	for _, a := range anchors {
		pems.WriteString(a.Certificate)
	}
	bundle, want := pems.String(), len(anchors) > 0
	lbls := r.Kind.trustAnchorLabels(key)

	// Each is written even when the other cannot be: they serve different relying parties.
	var errs []error
	if r.ClusterTrustBundles {
		signerName := r.Kind.signerName(key)
		name := types.NamespacedName{Name: clusterTrustBundleName(signerName)}
		if err := syncPublished(ctx, r, "clusterTrustBundle", name, want, func(b *certificatesv1.ClusterTrustBundle) bool {
			changed := setLabels(b, lbls)
			if b.Spec.SignerName != signerName || b.Spec.TrustBundle != bundle {
				b.Spec = certificatesv1.ClusterTrustBundleSpec{SignerName: signerName, TrustBundle: bundle}
				changed = true
			}
			return changed
		}); err != nil {
			errs = append(errs, fmt.Errorf("publishing the trust anchors of %s %s in ClusterTrustBundle %s: %w", r.Kind.Name, key, name.Name, err))
		}
	}

	cm, ok := r.Kind.trustConfigMap(key, r.ClusterResourceNamespace)
	if !ok {
		if want {
			ctrl.LoggerFrom(ctx).Info("Not publishing the trust anchors in a ConfigMap: its name would be longer than 253 characters; a PQClusterIssuer's name may have 223, a PQIssuer's namespace and name 229 together", "configMap", cm)
		}
		return errors.Join(errs...)
	}
	if err := syncPublished(ctx, r, "configMap", cm, want, func(c *corev1.ConfigMap) bool {
		changed := setLabels(c, lbls)
		if len(c.Data) != 1 || c.Data[trustConfigMapKey] != bundle || len(c.BinaryData) > 0 {
			c.Data, c.BinaryData = map[string]string{trustConfigMapKey: bundle}, nil
			changed = true
		}
		return changed
	}); err != nil {
		errs = append(errs, fmt.Errorf("publishing the trust anchors of %s %s in ConfigMap %s: %w", r.Kind.Name, key, cm, err))
	}
	return errors.Join(errs...)
}

// syncPublished makes the object key hold what fill writes when want, and deletes it otherwise;
// fill reports whether it changed anything, and only then is the object written. Reads go through
// the cache, which holds only labelled objects: one that lost its labels shows up when creating it
// fails, and is read from the API server and taken back.
func syncPublished[T interface {
	client.Object
	*O
}, O any](ctx context.Context, r *IssuerReconciler, what string, key types.NamespacedName, want bool, fill func(T) bool) error {
	var name any = key
	if key.Namespace == "" {
		name = key.Name
	}
	log := ctrl.LoggerFrom(ctx).WithValues(what, name)
	obj := T(new(O))
	err := r.Client.Get(ctx, key, obj)
	switch {
	case apierrors.IsNotFound(err):
		if !want {
			return nil
		}
		obj = T(new(O))
		obj.SetName(key.Name)
		obj.SetNamespace(key.Namespace)
		fill(obj)
		err = r.Client.Create(ctx, obj)
		if err == nil {
			log.Info("Published the trust anchors")
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		obj = T(new(O))
		if err := r.APIReader.Get(ctx, key, obj); err != nil {
			return err
		}
	case err != nil:
		return err
	case !want:
		uid := obj.GetUID()
		if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: &uid}); err != nil {
			return client.IgnoreNotFound(err)
		}
		log.Info("Deleted the published trust anchors")
		return nil
	}
	if !fill(obj) {
		return nil
	}
	if err := r.Client.Update(ctx, obj); err != nil {
		return err
	}
	log.Info("Updated the published trust anchors")
	return nil
}

// setLabels sets want's labels on obj, and reports whether any changed.
func setLabels(obj client.Object, want map[string]string) bool {
	l := obj.GetLabels()
	changed := false
	for k, v := range want {
		if cur, ok := l[k]; !ok || cur != v {
			changed = true
		}
	}
	if changed {
		l = maps.Clone(l)
		if l == nil {
			l = map[string]string{}
		}
		maps.Copy(l, want)
		obj.SetLabels(l)
	}
	return changed
}

// issuerOfClusterTrustBundle maps a ClusterTrustBundle to the issuer of this kind whose it is.
func (r *IssuerReconciler) issuerOfClusterTrustBundle(_ context.Context, obj client.Object) []reconcile.Request {
	b, ok := obj.(*certificatesv1.ClusterTrustBundle)
	if !ok {
		return nil
	}
	kind, key, ok := issuerOfSigner(b.Spec.SignerName)
	if !ok || kind.Name != r.Kind.Name || b.Name != clusterTrustBundleName(b.Spec.SignerName) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: key}}
}

// issuerOfConfigMap maps a ConfigMap to the issuer of this kind whose trust ConfigMap it is.
func (r *IssuerReconciler) issuerOfConfigMap(_ context.Context, obj client.Object) []reconcile.Request {
	key, ok := r.Kind.issuerOfTrustConfigMap(client.ObjectKeyFromObject(obj), r.ClusterResourceNamespace)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: key}}
}

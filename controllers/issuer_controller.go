package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// notYetValidRecheck is how soon a CA that is not valid yet is looked at again.
const notYetValidRecheck = time.Minute

// IssuerReconciler keeps an issuer's Ready condition true to its CA Secret: it checks the CA when
// the issuer or the Secret changes, and again when the CA expires.
type IssuerReconciler struct {
	Kind   IssuerKind
	Client client.Client
	// APIReader reads what the cache does not hold: a trust ConfigMap or ClusterTrustBundle that
	// lost its labels.
	APIReader client.Reader
	CAs       *CASource
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Metrics   *Metrics
	// ClusterResourceNamespace holds the Secrets of PQClusterIssuers and every issuer's trust
	// ConfigMap.
	ClusterResourceNamespace string
	// ClusterIssuersOnly: Secrets may be read only in ClusterResourceNamespace.
	ClusterIssuersOnly bool
	// ClusterTrustBundles: the API server serves certificates.k8s.io/v1 ClusterTrustBundles, and
	// each issuer publishes its trust anchors in one.
	ClusterTrustBundles bool
}

// +kubebuilder:rbac:groups=pq-issuer.dev,resources=pqissuers;pqclusterissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=pq-issuer.dev,resources=pqissuers/status;pqclusterissuers/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile checks one issuer and records the result in its status.
func (r *IssuerReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	issuer := r.Kind.New()
	if err := r.Client.Get(ctx, req.NamespacedName, issuer); err != nil {
		if apierrors.IsNotFound(err) {
			r.Metrics.forgetIssuer(r.Kind.id(req.NamespacedName))
			r.CAs.Release(r.Kind.id(req.NamespacedName))
			// Nothing else removes them: a namespaced PQIssuer cannot own a cluster-scoped
			// ClusterTrustBundle, and no garbage collector may be running.
			return ctrl.Result{}, r.publishTrustAnchors(ctx, req.NamespacedName, nil)
		}
		return ctrl.Result{}, err
	}
	before := issuer.DeepCopyObject().(v1alpha1.Issuer)
	result, err := r.updateStatus(ctx, issuer)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !equality.Semantic.DeepEqual(before.GetStatus(), issuer.GetStatus()) {
		if err := r.Client.Status().Patch(ctx, issuer, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, fmt.Errorf("updating the status of %s %s: %w", r.Kind.Name, req.NamespacedName, err)
		}
		oldReady := meta.FindStatusCondition(before.GetStatus().Conditions, v1alpha1.ConditionReady)
		newReady := meta.FindStatusCondition(issuer.GetStatus().Conditions, v1alpha1.ConditionReady)
		if conditionChanged(oldReady, newReady) {
			eventType := corev1.EventTypeWarning
			if newReady.Status == metav1.ConditionTrue {
				eventType = corev1.EventTypeNormal
			}
			r.Recorder.Eventf(issuer, nil, eventType, newReady.Reason, "CheckCA", "%s", newReady.Message)
			ctrl.LoggerFrom(ctx).Info("Issuer readiness changed", "ready", newReady.Status, "reason", newReady.Reason, "message", newReady.Message)
		}
		r.recordTrustAnchorChanges(ctx, issuer, before.GetStatus().TrustAnchors)
	}
	// Also when the status is unchanged: a published bundle may have been edited or deleted.
	if err := r.publishTrustAnchors(ctx, req.NamespacedName, issuer.GetStatus().TrustAnchors); err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

// updateStatus is the status-patch function: it sets the issuer's status from its CA Secret, and
// its trust anchors from the CA's root, and says when to look again. It returns an error only for
// what a retry may fix.
func (r *IssuerReconciler) updateStatus(ctx context.Context, issuer v1alpha1.Issuer) (ctrl.Result, error) {
	now := r.Clock.Now()
	ca, result, err := r.checkCA(ctx, issuer, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	var current *signer.TrustAnchor
	if ca != nil {
		root, err := signer.ParseTrustAnchor(ca.TrustAnchorPEM())
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("reading the root of the CA of %s %s: %w", r.Kind.Name, client.ObjectKeyFromObject(issuer), err)
		}
		current = &root
	}
	status := issuer.GetStatus()
	status.TrustAnchors = nextTrustAnchors(knownAnchors(ctx, status.TrustAnchors), current, now, anchorOverlap(issuer.GetSpec()))
	// Look again when the next previous root leaves, or sooner.
	if d := untilNextRemoval(status.TrustAnchors, now); d > 0 && (result.RequeueAfter == 0 || d < result.RequeueAfter) {
		result.RequeueAfter = d
	}
	return result, nil
}

// checkCA sets the issuer's Ready condition from its CA Secret and returns the CA when it is
// ready, and when to look again.
func (r *IssuerReconciler) checkCA(ctx context.Context, issuer v1alpha1.Issuer, now time.Time) (*signer.CA, ctrl.Result, error) {
	status, id := issuer.GetStatus(), r.Kind.id(client.ObjectKeyFromObject(issuer))
	notReady := func(reason, message string) {
		setReady(issuer, metav1.ConditionFalse, reason, message)
		status.Algorithm, status.CANotAfter = "", nil
		r.Metrics.expiry.delete(id)
		r.Metrics.observeReady(id, false)
	}

	pol, err := issuer.GetSpec().SignerPolicy(r.Kind.ClusterScoped)
	if err != nil {
		notReady(v1alpha1.ReasonInvalidSpec, fmt.Sprintf("%v; fix the issuer's spec", err))
		return nil, ctrl.Result{}, nil
	}
	status.Names = v1alpha1.NamesOf(&pol)

	key := r.Kind.secretKey(issuer, r.ClusterResourceNamespace)
	if r.ClusterIssuersOnly && key.Namespace != r.ClusterResourceNamespace {
		notReady(v1alpha1.ReasonSecretsRestricted, fmt.Sprintf("pq-issuer runs with --cluster-issuers-only and reads Secrets only in namespace %s: use a PQClusterIssuer, or install the Helm chart with secrets.clusterWide=true to use PQIssuers in other namespaces", r.ClusterResourceNamespace))
		return nil, ctrl.Result{}, nil
	}
	r.CAs.Use(id, key)
	ca, err := r.CAs.Load(ctx, key, now)
	var notFound *SecretNotFoundError
	var caErr *CAError
	switch {
	case errors.As(err, &notFound):
		notReady(v1alpha1.ReasonSecretNotFound, notFound.Error()+"; "+r.Kind.secretHint(r.ClusterResourceNamespace))
		return nil, ctrl.Result{}, nil
	case errors.As(err, &caErr):
		reason := string(caErr.Reason)
		if reason == "" {
			reason = v1alpha1.ReasonInvalidCA
		}
		notReady(reason, caErr.Error())
		if caErr.Reason == signer.ReasonNotYetValid {
			return nil, ctrl.Result{RequeueAfter: notYetValidRecheck}, nil
		}
		return nil, ctrl.Result{}, nil
	case err != nil:
		return nil, ctrl.Result{}, err
	}

	setReady(issuer, metav1.ConditionTrue, v1alpha1.ReasonVerified, "Signing with "+ca.Describe())
	status.Algorithm = string(ca.Algorithm())
	status.CANotAfter = &metav1.Time{Time: ca.NotAfter}
	r.Metrics.expiry.set(id, status.Algorithm, ca.NotAfter)
	r.Metrics.observeReady(id, true)
	// Look again just after the CA expires, so Ready turns False on time.
	return ca, ctrl.Result{RequeueAfter: ca.NotAfter.Sub(now) + time.Second}, nil
}

func setReady(issuer v1alpha1.Issuer, s metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&issuer.GetStatus().Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: s, Reason: reason, Message: message,
		ObservedGeneration: issuer.GetGeneration(),
	})
}

func conditionChanged(old, cur *metav1.Condition) bool {
	return cur != nil && (old == nil || old.Status != cur.Status || old.Reason != cur.Reason || old.Message != cur.Message)
}

// issuerIsReady reports whether the issuer's last check of its current spec succeeded, and what it
// said.
func issuerIsReady(issuer v1alpha1.Issuer) (bool, string) {
	c := meta.FindStatusCondition(issuer.GetStatus().Conditions, v1alpha1.ConditionReady)
	switch {
	case c == nil || c.ObservedGeneration != issuer.GetGeneration():
		return false, "it has not been checked yet"
	case c.Status != metav1.ConditionTrue:
		return false, c.Message
	}
	return true, c.Message
}

// SetupWithManager registers the reconciler: issuers of its kind, the Secrets they name, by
// metadata only, and the ConfigMaps and ClusterTrustBundles they publish (trust_bundle.go).
func (r *IssuerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr).
		Named(r.Kind.controllerName()).
		For(r.Kind.New()).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.issuersForSecret), builder.OnlyMetadata).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.issuerOfConfigMap))
	if r.ClusterTrustBundles {
		b = b.Watches(&certificatesv1.ClusterTrustBundle{}, handler.EnqueueRequestsFromMapFunc(r.issuerOfClusterTrustBundle))
	}
	return b.Complete(r)
}

// issuersForSecret maps a Secret to the issuers that name it.
func (r *IssuerReconciler) issuersForSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	opts := []client.ListOption{client.MatchingFields{caSecretNameField: secret.GetName()}}
	if r.Kind.ClusterScoped {
		if secret.GetNamespace() != r.ClusterResourceNamespace {
			return nil
		}
	} else {
		opts = append(opts, client.InNamespace(secret.GetNamespace()))
	}
	list := r.Kind.NewList()
	if err := r.Client.List(ctx, list, opts...); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list issuers for a changed Secret", "kind", r.Kind.Name, "secret", client.ObjectKeyFromObject(secret))
		return nil
	}
	var reqs []reconcile.Request
	_ = meta.EachListItem(list, func(o runtime.Object) error {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o.(client.Object))})
		return nil
	})
	return reqs
}

// secretKey is the CA Secret of an issuer of this kind.
func (k IssuerKind) secretKey(issuer v1alpha1.Issuer, clusterResourceNamespace string) types.NamespacedName {
	ns := issuer.GetNamespace()
	if k.ClusterScoped {
		ns = clusterResourceNamespace
	}
	return types.NamespacedName{Namespace: ns, Name: issuer.GetSpec().CASecretName}
}

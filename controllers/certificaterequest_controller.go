package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// CertificateRequestReconciler signs the approved cert-manager CertificateRequests whose issuerRef
// names a PQIssuer or PQClusterIssuer, following cert-manager's external issuer contract.
type CertificateRequestReconciler struct {
	// Client reads from the informer cache, which may lag behind the API server, and writes to it.
	Client client.Client
	// APIReader reads from the API server itself: after a status write conflicts, the cache may still
	// hold the version that conflicted, and deciding on it again could issue a second certificate.
	APIReader client.Reader
	CAs       *CASource
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Metrics   *Metrics
	// ClusterResourceNamespace holds the Secrets of PQClusterIssuers.
	ClusterResourceNamespace string
	// PendingRecheck is how soon a request waiting for its issuer is looked at again, in case the
	// issuer's change that would wake it is missed.
	PendingRecheck time.Duration
	// MaxRetryDuration bounds how long, from the request's creation, a transient error (not a
	// PermanentError, PendingError or IssuerError) is retried with backoff; the first attempt
	// after it fails the request for good, as issuer-lib's MaxRetryDuration does.
	MaxRetryDuration time.Duration
}

// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests/status,verbs=patch

// outcome is what one reconcile decided for a request: its Ready condition and, once issued, the
// certificate. The status-patch function computes it; Reconcile writes it.
type outcome struct {
	status          cmmeta.ConditionStatus
	reason, message string
	certificate, ca []byte
	failed          bool          // sets failureTime: the request is finished
	signed          time.Duration // how long signing took, when it did
	algorithm       string
	requeueAfter    time.Duration
	err             error // transient: returned to controller-runtime for a retry with backoff
}

// Reconcile is the thin shell around sign: it reads the request, asks sign what to do, and writes
// the result to the status, once.
func (r *CertificateRequestReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	cr := &cmapi.CertificateRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, cr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	kind, ok := issuerKindOf(cr.Spec.IssuerRef)
	if !ok || isFinished(cr) {
		return ctrl.Result{}, nil
	}
	out := r.sign(ctx, cr, kind)
	if out == nil {
		return ctrl.Result{}, nil
	}

	written, err := r.write(ctx, cr, out)
	if err != nil {
		return ctrl.Result{}, err
	}
	if written {
		eventType := corev1.EventTypeNormal
		if out.status != cmmeta.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(cr, nil, eventType, out.reason, "Sign", "%s", out.message)
		ctrl.LoggerFrom(ctx).Info("CertificateRequest status changed", "ready", out.status, "reason", out.reason, "message", out.message)
		// Counted once written: a result dropped because another writer finished first is not.
		switch {
		case out.certificate != nil:
			r.Metrics.observeSigned(kind.Name, out.algorithm, out.signed)
		case out.failed:
			r.Metrics.observeFailed(kind.Name, r.algorithmOf(ctx, kind, cr), out.reason)
		}
	}
	return ctrl.Result{RequeueAfter: out.requeueAfter}, out.err
}

// write applies out to the request's status. A conflict (another writer changed the request) is
// retried on the latest version, read from the API server: the cache may still hold the version
// that conflicted, which would conflict again until the retries run out, and the request would be
// signed again on the next reconcile. A finished latest version already has its certificate or
// failure, and out is dropped, so a request is never issued twice. Otherwise out, decided on a spec
// that cannot change, is applied to it. It reports whether the Ready condition changed.
func (r *CertificateRequestReconciler) write(ctx context.Context, cr *cmapi.CertificateRequest, out *outcome) (bool, error) {
	readyChanged, conflicted := false, false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if conflicted {
			// Into a new object: decoding into cr, which holds out, would keep what the response
			// lacks (an omitted status.certificate) and make cr look finished.
			latest := &cmapi.CertificateRequest{}
			if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(cr), latest); err != nil {
				return err
			}
			*cr = *latest
			if isFinished(cr) {
				readyChanged = false
				return nil
			}
		}
		base := cr.DeepCopy()
		readyChanged = out.applyTo(cr, r.Clock.Now())
		if equality.Semantic.DeepEqual(base.Status, cr.Status) {
			return nil
		}
		err := r.Client.Status().Patch(ctx, cr, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		conflicted = apierrors.IsConflict(err)
		return err
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("updating the status of CertificateRequest %s: %w", client.ObjectKeyFromObject(cr), err)
	}
	return readyChanged, nil
}

// applyTo sets out on cr's status and reports whether its Ready condition changed.
func (out *outcome) applyTo(cr *cmapi.CertificateRequest, now time.Time) bool {
	old := apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
	changed := old == nil || old.Status != out.status || old.Reason != out.reason || old.Message != out.message
	if changed {
		apiutil.SetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady, out.status, out.reason, out.message)
	}
	if out.certificate != nil {
		cr.Status.Certificate, cr.Status.CA = out.certificate, out.ca
	}
	if out.failed && cr.Status.FailureTime == nil {
		cr.Status.FailureTime = &metav1.Time{Time: now}
	}
	return changed
}

// sign is the status-patch function: it decides the request's next state. It returns nil when the
// request must not be touched (not approved yet).
func (r *CertificateRequestReconciler) sign(ctx context.Context, cr *cmapi.CertificateRequest, kind IssuerKind) *outcome {
	if apiutil.CertificateRequestIsDenied(cr) {
		denied := apiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionDenied)
		return &outcome{status: cmmeta.ConditionFalse, reason: cmapi.CertificateRequestReasonDenied, failed: true,
			message: fmt.Sprintf("The CertificateRequest was denied by an approval controller (%s: %s); pq-issuer did not sign it", denied.Reason, denied.Message)}
	}
	if !apiutil.CertificateRequestIsApproved(cr) {
		return nil
	}

	ref := fmt.Sprintf("%s %s", kind.Name, cr.Spec.IssuerRef.Name)
	started := time.Now()
	issuer, ca, err := r.readyIssuer(ctx, kind, cr)
	var issued *signer.Issued
	if err == nil {
		issued, err = r.issue(ctx, cr, kind, issuer, ca)
	}

	var permanentErr *PermanentError
	var pendingErr *PendingError
	var issuerErr *IssuerError
	switch {
	case err == nil:
		message := fmt.Sprintf("Certificate issued by %s with its %s: serial %x, valid until %s", ref, ca.Describe(),
			issued.Certificate.SerialNumber, issued.Certificate.NotAfter.UTC().Format(time.RFC3339))
		for _, note := range issued.Notes() {
			message += ". " + note
		}
		return &outcome{status: cmmeta.ConditionTrue, reason: cmapi.CertificateRequestReasonIssued, message: message,
			certificate: issued.ChainPEM, ca: issued.CAPEM, signed: time.Since(started), algorithm: string(ca.Algorithm())}
	case errors.As(err, &permanentErr):
		return &outcome{status: cmmeta.ConditionFalse, reason: cmapi.CertificateRequestReasonFailed, failed: true,
			message: fmt.Sprintf("%s cannot sign this request (%s): %v", ref, permanentErr.Reason, permanentErr.Err)}
	case errors.As(err, &pendingErr):
		return &outcome{status: cmmeta.ConditionFalse, reason: cmapi.CertificateRequestReasonPending,
			message: pendingErr.Error(), requeueAfter: r.PendingRecheck}
	case errors.As(err, &issuerErr):
		return &outcome{status: cmmeta.ConditionFalse, reason: cmapi.CertificateRequestReasonPending,
			message: fmt.Sprintf("%s cannot sign now: %v", ref, issuerErr.Err), requeueAfter: r.PendingRecheck}
	}
	// Anything else is transient and retried with backoff, but, as in issuer-lib, only for
	// MaxRetryDuration from the request's creation: an error that outlives it is not going away
	// by itself. Waiting for an issuer (above) has no bound: fixing the issuer is what it waits for.
	// Counting from creation, a request that waited longer than the bound fails on its first
	// transient error; cert-manager then retries the Certificate with a fresh request.
	if age := r.Clock.Since(cr.CreationTimestamp.Time); age > r.MaxRetryDuration {
		return &outcome{status: cmmeta.ConditionFalse, reason: cmapi.CertificateRequestReasonFailed, failed: true,
			message: fmt.Sprintf("Signing with %s failed %s after the request was created, past the controller's --max-retry-duration %s, so it is not retried; the last error: %v. "+
				"Fix the cause: cert-manager's next attempt for the Certificate creates a new request", ref, age.Round(time.Second), r.MaxRetryDuration, err)}
	}
	return &outcome{status: cmmeta.ConditionFalse, reason: cmapi.CertificateRequestReasonPending,
		message: fmt.Sprintf("Signing with %s failed and will be retried: %v", ref, err), err: err}
}

// readyIssuer returns the request's issuer and its CA, or a PendingError or IssuerError saying why
// it cannot sign yet.
func (r *CertificateRequestReconciler) readyIssuer(ctx context.Context, kind IssuerKind, cr *cmapi.CertificateRequest) (v1alpha1.Issuer, *signer.CA, error) {
	issuer := kind.New()
	key := issuerKey(kind, cr)
	if err := r.Client.Get(ctx, key, issuer); err != nil {
		if apierrors.IsNotFound(err) {
			where := ""
			if !kind.ClusterScoped {
				where = fmt.Sprintf(" in namespace %s", key.Namespace)
			}
			return nil, nil, pending("Waiting for %s %s: it does not exist%s; create it, or fix spec.issuerRef", kind.Name, key.Name, where)
		}
		return nil, nil, err
	}
	if ready, message := issuerIsReady(issuer); !ready {
		return nil, nil, pending("Waiting for %s %s to be ready: %s", kind.Name, key.Name, message)
	}
	ca, err := r.CAs.Load(ctx, kind.secretKey(issuer, r.ClusterResourceNamespace), r.Clock.Now())
	var notFound *SecretNotFoundError
	var caErr *CAError
	if errors.As(err, &notFound) || errors.As(err, &caErr) {
		return nil, nil, &IssuerError{Err: err}
	}
	return issuer, ca, err
}

// issue has the CA sign the request through the certificate builder, within the issuer's policy.
// Problems with the request are permanent.
func (r *CertificateRequestReconciler) issue(ctx context.Context, cr *cmapi.CertificateRequest, kind IssuerKind, issuer v1alpha1.Issuer, ca *signer.CA) (*signer.Issued, error) {
	pol, err := issuer.GetSpec().SignerPolicy(kind.ClusterScoped)
	if err != nil { // the issuer is not Ready with such a policy: it changed since
		return nil, pending("Waiting for %s %s: %v", kind.Name, issuer.GetName(), err)
	}
	if err := checkNamespace(ctx, r.Client, kind, issuer, cr.Namespace); err != nil {
		return nil, err
	}
	csr, err := signer.ParseCSR(cr.Spec.Request)
	if err != nil {
		return nil, asPermanent(fmt.Errorf("the CSR in spec.request: %w", err))
	}
	req := signer.LeafRequest{CSR: csr, Namespace: cr.Namespace, IsCA: cr.Spec.IsCA, Duration: apiutil.DefaultCertDuration(cr.Spec.Duration),
		Requester: cr.Spec.Username}
	for _, u := range cr.Spec.Usages {
		req.Usages = append(req.Usages, string(u))
	}
	issued, err := ca.Issue(req, pol, r.Clock.Now())
	if err != nil {
		return nil, asPermanent(err) // the builder's messages name what in the request is wrong
	}
	return issued, nil
}

// asPermanent makes a signer error (the input is wrong) permanent; others stay transient.
func asPermanent(err error) error {
	if reason := signer.ReasonOf(err); reason != "" {
		return &PermanentError{Reason: string(reason), Err: err}
	}
	return err
}

// isFinished reports whether the request has its certificate or has failed for good: then nothing
// may change it again.
func isFinished(cr *cmapi.CertificateRequest) bool {
	return len(cr.Status.Certificate) > 0 || finishedByCondition(cr)
}

// issuerKindOf reports whether ref names one of pq-issuer's kinds.
func issuerKindOf(ref cmmeta.IssuerReference) (IssuerKind, bool) {
	if ref.Group != v1alpha1.GroupVersion.Group {
		return IssuerKind{}, false
	}
	for _, k := range issuerKinds {
		if ref.Kind == k.Name {
			return k, true
		}
	}
	return IssuerKind{}, false
}

func issuerKey(kind IssuerKind, cr *cmapi.CertificateRequest) types.NamespacedName {
	if kind.ClusterScoped {
		return types.NamespacedName{Name: cr.Spec.IssuerRef.Name}
	}
	return types.NamespacedName{Namespace: cr.Namespace, Name: cr.Spec.IssuerRef.Name}
}

// algorithmOf names the issuer's CA algorithm for metrics, or "" when it is unknown.
func (r *CertificateRequestReconciler) algorithmOf(ctx context.Context, kind IssuerKind, cr *cmapi.CertificateRequest) string {
	issuer := kind.New()
	if err := r.Client.Get(ctx, issuerKey(kind, cr), issuer); err != nil {
		return ""
	}
	return issuer.GetStatus().Algorithm
}

// SetupWithManager registers the reconciler: CertificateRequests, and the issuers they wait for.
func (r *CertificateRequestReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	b := ctrl.NewControllerManagedBy(mgr).Named("certificaterequest").For(&cmapi.CertificateRequest{}).WithOptions(opts)
	for _, kind := range issuerKinds {
		b = b.Watches(kind.New(), handler.EnqueueRequestsFromMapFunc(r.requestsForIssuer(kind)))
	}
	return b.Complete(r)
}

// requestsForIssuer maps an issuer to the unfinished requests that name it, so they go on as soon
// as it becomes ready.
func (r *CertificateRequestReconciler) requestsForIssuer(kind IssuerKind) handler.MapFunc {
	return func(ctx context.Context, issuer client.Object) []reconcile.Request {
		list := &cmapi.CertificateRequestList{}
		opts := []client.ListOption{client.MatchingFields{issuerRefField: issuerRefValue(kind.Name, issuer.GetName())}}
		if !kind.ClusterScoped {
			opts = append(opts, client.InNamespace(issuer.GetNamespace()))
		}
		if err := r.Client.List(ctx, list, opts...); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Cannot list CertificateRequests for a changed issuer", "kind", kind.Name, "issuer", client.ObjectKeyFromObject(issuer))
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if !isFinished(&list.Items[i]) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
}

func issuerRefValue(kind, name string) string { return strings.Join([]string{kind, name}, "/") }

package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// Reasons of a CertificateSigningRequest's Failed condition and of the events on it, besides the
// builder's (PolicyViolation, InvalidCSR, BadCSRSignature, ...). The API has no Issued condition:
// an issued request has its certificate, and an event says so.
const (
	csrReasonIssued = "Issued"
	// csrReasonWaiting is the reason of the event on a request that waits for its issuer; the
	// request itself gets no status until it can be answered for good.
	csrReasonWaiting = "WaitingForIssuer"
	// csrReasonDeniedReference: the requester may not use a PQIssuer (cert-manager's reason for
	// the same check).
	csrReasonDeniedReference = "DeniedReference"
	// csrReasonSigningFailed: transient errors outlasted MaxRetryDuration.
	csrReasonSigningFailed = "SigningFailed"
)

// CertificateSigningRequestReconciler signs the approved Kubernetes CertificateSigningRequests
// (certificates.k8s.io/v1) whose signerName is pqclusterissuers.pq-issuer.dev/<name> or
// pqissuers.pq-issuer.dev/<namespace>.<name>, as cert-manager's and issuer-lib's
// CertificateSigningRequest controllers do for their issuers.
//
// Anyone who may create CertificateSigningRequests may name any signer, and an approver may not
// know which namespace a PQIssuer serves, so a PQIssuer signs only for requesters that hold verb
// "reference" on resource "signers" of API group pq-issuer.dev, in its namespace, for its name or
// "*" (cert-manager's rule, with its group). A PQClusterIssuer signs for every requester; its
// namespaceSelector, if any, applies to a service account requester's namespace, and refuses the
// other requesters (users, nodes), who have no namespace to select.
//
// The namespace the issuer's policy sees ({namespace} in patterns, the namespace a SPIFFE ID must
// name) is a PQIssuer's own, since it signs for its namespace only, and for a PQClusterIssuer the
// requesting service account's; other requesters have none, so patterns with {namespace} and
// SPIFFE IDs are refused them.
//
// The API lets a signer answer once: status.certificate, or a Failed condition; both are final. So
// anything a retry can fix (issuer missing or not Ready, API errors) writes no status: the request
// waits, with an event. Transient errors fail it only after MaxRetryDuration from its creation.
type CertificateSigningRequestReconciler struct {
	// Client reads from the informer cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server itself, after a status write conflicted.
	APIReader client.Reader
	CAs       *CASource
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Metrics   *Metrics
	// ClusterResourceNamespace holds the Secrets of PQClusterIssuers.
	ClusterResourceNamespace string
	// PendingRecheck is how soon a request waiting for its issuer is looked at again.
	PendingRecheck time.Duration
	// MaxRetryDuration bounds how long, from the request's creation, transient errors are retried
	// with backoff before the request is failed, as for CertificateRequests.
	MaxRetryDuration time.Duration
}

// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/status,verbs=update
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,verbs=sign,resourceNames=pqissuers.pq-issuer.dev/*;pqclusterissuers.pq-issuer.dev/*
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// csrOutcome is the one status a request gets: a certificate, or (issued nil) a Failed condition.
type csrOutcome struct {
	reason, message string
	issued          *signer.Issued
	algorithm       string
	signedTook      time.Duration
}

// Reconcile reads the request, decides, and writes its one status.
func (r *CertificateSigningRequestReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	csr := &certificatesv1.CertificateSigningRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, csr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	kind, issuerKey, ok := issuerOfSigner(csr.Spec.SignerName)
	if !ok || !csrIsApproved(csr) || csrIsFinished(csr) {
		return ctrl.Result{}, nil
	}
	out, err := r.decide(ctx, csr, kind, issuerKey)
	var waitErr *PendingError
	var issuerErr *IssuerError
	switch {
	case errors.As(err, &waitErr), errors.As(err, &issuerErr):
		r.Recorder.Eventf(csr, nil, corev1.EventTypeWarning, csrReasonWaiting, "Sign", "%v", err)
		ctrl.LoggerFrom(ctx).V(1).Info("CertificateSigningRequest waits for its issuer", "signerName", csr.Spec.SignerName, "reason", err.Error())
		return ctrl.Result{RequeueAfter: r.PendingRecheck}, nil
	case err != nil:
		// As for CertificateRequests: retried with backoff, but not past MaxRetryDuration from
		// the request's creation. The requester then makes a new request.
		age := r.Clock.Since(csr.CreationTimestamp.Time)
		if age <= r.MaxRetryDuration {
			return ctrl.Result{}, err
		}
		out = &csrOutcome{reason: csrReasonSigningFailed, message: fmt.Sprintf("Signing with %s failed %s after the request was created, past the controller's --max-retry-duration %s, so it is not retried; the last error: %v. Fix the cause, then create a new CertificateSigningRequest",
			csrIssuerRef(kind, issuerKey), age.Round(time.Second), r.MaxRetryDuration, err)}
	}

	written, err := r.write(ctx, csr, out)
	if err != nil || !written {
		return ctrl.Result{}, err
	}
	eventType := corev1.EventTypeNormal
	if out.issued == nil {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(csr, nil, eventType, out.reason, "Sign", "%s", out.message)
	ctrl.LoggerFrom(ctx).Info("CertificateSigningRequest answered", "reason", out.reason, "message", out.message)
	if out.issued != nil {
		r.Metrics.observeCSRSigned(kind.Name, out.algorithm, out.signedTook)
	} else {
		r.Metrics.observeCSRFailed(kind.Name, out.reason)
	}
	return ctrl.Result{}, nil
}

// decide is the status function: the request's final answer, or a PendingError or IssuerError
// while its issuer cannot answer, or another error to retry with backoff.
func (r *CertificateSigningRequestReconciler) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, kind IssuerKind, key types.NamespacedName) (*csrOutcome, error) {
	ref := csrIssuerRef(kind, key)
	fail := func(reason, format string, args ...any) (*csrOutcome, error) {
		return &csrOutcome{reason: reason, message: fmt.Sprintf("%s does not sign this request: ", ref) + fmt.Sprintf(format, args...)}, nil
	}
	requester := csr.Spec.Username
	// Before the issuer is read: a requester who may not use it learns nothing of it.
	if !kind.ClusterScoped {
		allowed, err := r.mayReference(ctx, csr, key)
		if err != nil {
			return nil, fmt.Errorf("asking the API server whether %s may reference %s: %w", requester, ref, err)
		}
		if !allowed {
			return fail(csrReasonDeniedReference, "the requester %s may not reference it. It needs verb %q on resource %q in API group %q, namespace %s, name %s (or *): "+
				"grant it with a Role in %s (apiGroups: [%s], resources: [signers], verbs: [reference], resourceNames: [%s]) and a RoleBinding to the requester",
				requester, "reference", "signers", v1alpha1.GroupVersion.Group, key.Namespace, key.Name, key.Namespace, v1alpha1.GroupVersion.Group, key.Name)
		}
	}

	issuer := kind.New()
	if err := r.Client.Get(ctx, key, issuer); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, pending("Waiting for %s: it does not exist; create it, or fix the CertificateSigningRequest's spec.signerName", ref)
		}
		return nil, err
	}
	if ready, message := issuerIsReady(issuer); !ready {
		return nil, pending("Waiting for %s to be ready: %s", ref, message)
	}
	pol, err := issuer.GetSpec().SignerPolicy(kind.ClusterScoped)
	if err != nil {
		return nil, pending("Waiting for %s: %v", ref, err)
	}
	namespace := key.Namespace
	if kind.ClusterScoped {
		saNamespace, _, isServiceAccount := signer.ServiceAccountOf(requester)
		namespace = saNamespace
		if p := issuer.GetSpec().Policy; p != nil && p.NamespaceSelector != nil && !isServiceAccount {
			return fail(string(signer.ReasonPolicyViolation), "its spec.policy.namespaceSelector admits requests from selected namespaces only, and the requester %s is not a service account, so its request comes from no namespace; "+
				"request with the token of a service account of a selected namespace, or use an issuer without a namespaceSelector", requester)
		}
		if err := checkNamespace(ctx, r.Client, kind, issuer, namespace); err != nil {
			var permanentErr *PermanentError
			if errors.As(err, &permanentErr) {
				return fail(permanentErr.Reason, "%v (the namespace of the requester %s)", permanentErr.Err, requester)
			}
			return nil, err
		}
	}
	request, err := signer.ParseCSR(csr.Spec.Request)
	if err != nil {
		reason := signer.ReasonOf(err)
		if reason == "" {
			reason = signer.ReasonInvalidCSR
		}
		return fail(string(reason), "spec.request: %v", err)
	}
	ca, err := r.CAs.Load(ctx, kind.secretKey(issuer, r.ClusterResourceNamespace), r.Clock.Now())
	var notFound *SecretNotFoundError
	var caErr *CAError
	if errors.As(err, &notFound) || errors.As(err, &caErr) {
		return nil, &IssuerError{Err: fmt.Errorf("%s: %w", ref, err)}
	}
	if err != nil {
		return nil, err
	}

	lifetime, raised := csrLifetime(csr)
	usages := make([]string, len(csr.Spec.Usages))
	for i, u := range csr.Spec.Usages {
		usages[i] = string(u)
	}
	started := time.Now()
	issued, err := ca.Issue(signer.LeafRequest{
		CSR: request, Namespace: namespace, Duration: lifetime, Usages: usages, Requester: requester,
	}, pol, r.Clock.Now())
	if reason := signer.ReasonOf(err); reason != "" {
		return fail(string(reason), "%v", err)
	}
	if err != nil {
		return nil, err
	}
	leaf := issued.Certificate
	message := fmt.Sprintf("Issued by %s with its %s: serial %x, valid until %s", ref, ca.Describe(), leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
	if raised {
		message += fmt.Sprintf(". Validity raised from the requested expirationSeconds %d to pq-issuer's minimum of %s", *csr.Spec.ExpirationSeconds, signer.MinDuration)
	}
	for _, note := range issued.Notes() {
		message += ". " + note
	}
	return &csrOutcome{reason: csrReasonIssued, message: message, issued: issued, algorithm: string(ca.Algorithm()), signedTook: time.Since(started)}, nil
}

// csrLifetime is the lifetime to ask the builder for, which caps it further by the issuer's
// spec.maxDuration and the CA's expiry; raised says it is longer than the request asked.
//
// The API lets a signer issue another lifetime than spec.expirationSeconds asks ("a signer whose
// configured minimum is longer than the requested duration"), and clients must read the
// certificate's own: so a request under pq-issuer's 1h minimum (the API allows 10 minutes) is
// signed for 1h, as Kubernetes' own signers treat expirationSeconds as a wish, rather than failed.
// Unset, it is 90 days, the default of a cert-manager Certificate and of cert-manager's own
// CertificateSigningRequest signers (kube-controller-manager's is a year), so that one request gets
// the same certificate through either API.
func csrLifetime(csr *certificatesv1.CertificateSigningRequest) (time.Duration, bool) {
	s := csr.Spec.ExpirationSeconds
	if s == nil {
		return cmapi.DefaultCertificateDuration, false
	}
	if d := time.Duration(*s) * time.Second; d >= signer.MinDuration {
		return d, false
	}
	return signer.MinDuration, true
}

// mayReference asks the API server whether the requester holds verb "reference" on the signers
// resource of pq-issuer.dev for the PQIssuer key, by its name or "*" (a Role listing "*" as a
// resourceName, which RBAC matches literally), as cert-manager asks for its Issuers.
func (r *CertificateSigningRequestReconciler) mayReference(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, key types.NamespacedName) (bool, error) {
	var extra map[string]authorizationv1.ExtraValue
	if len(csr.Spec.Extra) > 0 {
		extra = make(map[string]authorizationv1.ExtraValue, len(csr.Spec.Extra))
		for k, v := range csr.Spec.Extra {
			extra[k] = authorizationv1.ExtraValue(v)
		}
	}
	for _, name := range []string{key.Name, "*"} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: csr.Spec.Username, Groups: csr.Spec.Groups, UID: csr.Spec.UID, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: v1alpha1.GroupVersion.Group, Version: "*", Resource: "signers", Verb: "reference",
				Namespace: key.Namespace, Name: name,
			},
		}}
		if err := r.Client.Create(ctx, sar); err != nil {
			return false, err
		}
		if sar.Status.Allowed {
			return true, nil
		}
	}
	return false, nil
}

// csrIssuerRef names the issuer in messages; a request is cluster-scoped, so a PQIssuer's
// namespace is spelled out.
func csrIssuerRef(kind IssuerKind, key types.NamespacedName) string {
	if kind.ClusterScoped {
		return kind.Name + " " + key.Name
	}
	return kind.Name + " " + key.Namespace + "/" + key.Name
}

// write applies out to the request's status, its only status write (answerOnce).
func (r *CertificateSigningRequestReconciler) write(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, out *csrOutcome) (bool, error) {
	written, err := answerOnce(ctx, r.Client, r.APIReader, csr, func() *certificatesv1.CertificateSigningRequest { return &certificatesv1.CertificateSigningRequest{} },
		csrIsFinished, func(latest *certificatesv1.CertificateSigningRequest) { out.applyTo(latest, r.Clock.Now()) })
	if err != nil {
		return false, fmt.Errorf("updating the status of CertificateSigningRequest %s: %w", csr.Name, err)
	}
	return written, nil
}

// applyTo sets out on csr's status: the chain (leaf and intermediates, no root, as the API
// expects), or a Failed condition beside the approval, which the API server keeps.
func (out *csrOutcome) applyTo(csr *certificatesv1.CertificateSigningRequest, now time.Time) {
	if out.issued != nil {
		csr.Status.Certificate = out.issued.ChainPEM
		return
	}
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: out.reason, Message: out.message,
		LastUpdateTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now),
	})
}

// csrIsApproved reports whether an approver approved the request: nothing is signed before.
func csrIsApproved(csr *certificatesv1.CertificateSigningRequest) bool {
	return csrHasCondition(csr, certificatesv1.CertificateApproved)
}

// csrIsFinished reports whether the request is answered for good: issued, denied or failed.
func csrIsFinished(csr *certificatesv1.CertificateSigningRequest) bool {
	return len(csr.Status.Certificate) > 0 || csrHasCondition(csr, certificatesv1.CertificateDenied) || csrHasCondition(csr, certificatesv1.CertificateFailed)
}

func csrHasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// SetupWithManager registers the reconciler: requests for pq-issuer's signers, and the issuers
// they wait for.
func (r *CertificateSigningRequestReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts controller.Options) error {
	if err := indexBySignerName(ctx, mgr, &certificatesv1.CertificateSigningRequest{}); err != nil {
		return fmt.Errorf("indexing CertificateSigningRequests by signer name: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).Named("certificatesigningrequest").
		For(&certificatesv1.CertificateSigningRequest{}, builder.WithPredicates(forPQSigners())).WithOptions(opts)
	for _, kind := range issuerKinds {
		b = b.Watches(kind.New(), handler.EnqueueRequestsFromMapFunc(r.requestsForIssuer(kind)))
	}
	return b.Complete(r)
}

// requestsForIssuer maps an issuer to the approved, unanswered requests for its signer name.
func (r *CertificateSigningRequestReconciler) requestsForIssuer(kind IssuerKind) handler.MapFunc {
	return func(ctx context.Context, issuer client.Object) []reconcile.Request {
		list := &certificatesv1.CertificateSigningRequestList{}
		name := kind.signerName(client.ObjectKeyFromObject(issuer))
		if err := r.Client.List(ctx, list, client.MatchingFields{signerNameField: name}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Cannot list CertificateSigningRequests for a changed issuer", "kind", kind.Name, "issuer", client.ObjectKeyFromObject(issuer))
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if csr := &list.Items[i]; csrIsApproved(csr) && !csrIsFinished(csr) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(csr)})
			}
		}
		return reqs
	}
}

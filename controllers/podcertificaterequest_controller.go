package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
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

// DNSNamesAnnotation is the one unverifiedUserAnnotations key pq-issuer reads from a
// PodCertificateRequest (a podCertificate volume's userAnnotations): DNS names, separated by commas,
// that the pod asks to have besides its SPIFFE ID, within the issuer's spec.podCertificates.dnsNames.
const DNSNamesAnnotation = "pq-issuer.dev/dns-names"

// Reasons of a PodCertificateRequest's conditions besides the API's own UnsupportedKeyType and
// InvalidUnverifiedUserAnnotations; policy refusals carry the builder's reason (PolicyViolation).
const (
	pcrReasonIssued = "Issued"
	// pcrReasonWaiting is the reason of the event on a request that waits for its issuer; the
	// request itself gets no status until it can be answered for good.
	pcrReasonWaiting = "WaitingForIssuer"
)

// PodCertificateRequestReconciler signs the PodCertificateRequests a kubelet creates for pods whose
// podCertificate volume names a pq-issuer signer: pqclusterissuers.pq-issuer.dev/<name> or
// pqissuers.pq-issuer.dev/<namespace>.<name>.
//
// The pod's identity is taken from the request, not from its stub CSR (which proves possession of
// the key and nothing else): the API server's NodeRestriction admission plugin has checked, when the
// kubelet created the request, that the pod, its service account and its node exist with the UIDs
// named and that the pod mounts a podCertificate volume for this signer. pq-issuer does not read
// pods or service accounts again: that would need cluster-wide read access to pods, and a pod
// deleted since takes its request with it (owner reference) and its private key (kubelet memory).
// A cluster that runs without NodeRestriction must let only nodes create PodCertificateRequests
// (Kubernetes' default RBAC does).
//
// The API lets a signer write a request's status once: Issued, Denied (the request can never be
// signed) or Failed. Denied and Failed are final for the pod, so anything a retry can fix (issuer
// missing or not Ready, API errors) writes no status: the request waits, with an event, and the
// kubelet waits with it.
type PodCertificateRequestReconciler struct {
	// Client reads from the informer cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server itself, after a status write conflicted.
	APIReader client.Reader
	CAs       *CASource
	Recorder  events.EventRecorder
	// Clock must be the real clock outside unit tests: the API server refuses a certificate whose
	// notBefore is more than five minutes from its own time.
	Clock   clock.PassiveClock
	Metrics *Metrics
	// ClusterResourceNamespace holds the Secrets of PQClusterIssuers.
	ClusterResourceNamespace string
	// PendingRecheck is how soon a request waiting for its issuer is looked at again.
	PendingRecheck time.Duration
}

// +kubebuilder:rbac:groups=certificates.k8s.io,resources=podcertificaterequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=podcertificaterequests/status,verbs=update
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,verbs=sign,resourceNames=pqissuers.pq-issuer.dev/*;pqclusterissuers.pq-issuer.dev/*

// pcrOutcome is the one status a request gets, or nil while it must wait.
type pcrOutcome struct {
	condition  string // Issued, Denied or Failed
	reason     string
	message    string
	issued     *signer.Issued
	refreshAt  time.Time
	algorithm  string
	signedTook time.Duration
}

// Reconcile reads the request, decides, and writes its one status.
func (r *PodCertificateRequestReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	pcr := &certificatesv1.PodCertificateRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, pcr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	kind, issuerKey, ok := issuerOfSigner(pcr.Spec.SignerName)
	if !ok || pcrIsFinished(pcr) {
		return ctrl.Result{}, nil
	}
	out, err := r.decide(ctx, pcr, kind, issuerKey)
	var waitErr *PendingError
	var issuerErr *IssuerError
	switch {
	case errors.As(err, &waitErr), errors.As(err, &issuerErr):
		r.Recorder.Eventf(pcr, nil, corev1.EventTypeWarning, pcrReasonWaiting, "Sign", "%v", err)
		ctrl.LoggerFrom(ctx).V(1).Info("PodCertificateRequest waits for its issuer", "signerName", pcr.Spec.SignerName, "reason", err.Error())
		return ctrl.Result{RequeueAfter: r.PendingRecheck}, nil
	case err != nil:
		return ctrl.Result{}, err
	}

	written, err := r.write(ctx, pcr, out)
	if err != nil || !written {
		return ctrl.Result{}, err
	}
	eventType := corev1.EventTypeNormal
	if out.condition != certificatesv1.PodCertificateRequestConditionTypeIssued {
		eventType = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(pcr, nil, eventType, out.reason, "Sign", "%s", out.message)
	ctrl.LoggerFrom(ctx).Info("PodCertificateRequest answered", "condition", out.condition, "reason", out.reason, "message", out.message)
	if out.issued != nil {
		r.Metrics.observePodIssued(kind.Name, out.algorithm, out.signedTook)
	} else {
		r.Metrics.observePodDenied(kind.Name, out.reason)
	}
	return ctrl.Result{}, nil
}

// decide is the status function: the request's final answer, or a PendingError or IssuerError
// while its issuer cannot answer, or another error to retry with backoff.
func (r *PodCertificateRequestReconciler) decide(ctx context.Context, pcr *certificatesv1.PodCertificateRequest, kind IssuerKind, key types.NamespacedName) (*pcrOutcome, error) {
	ref := kind.Name + " " + key.Name
	deny := func(reason, format string, args ...any) (*pcrOutcome, error) {
		return &pcrOutcome{condition: certificatesv1.PodCertificateRequestConditionTypeDenied, reason: reason,
			message: fmt.Sprintf("%s does not sign this request: ", ref) + fmt.Sprintf(format, args...)}, nil
	}
	// A PQIssuer signs for its own namespace only, whatever else holds: pod authors choose the
	// signer, and a team's CA must not vouch for another team's pods.
	if !kind.ClusterScoped && pcr.Namespace != key.Namespace {
		return deny(string(signer.ReasonPolicyViolation), "the pod is in namespace %s, and a PQIssuer signs only for pods of its own namespace %s; use a PQIssuer in %s or a PQClusterIssuer", pcr.Namespace, key.Namespace, pcr.Namespace)
	}
	dnsNames, err := dnsNamesOf(pcr.Spec.UnverifiedUserAnnotations)
	if err != nil {
		return deny(certificatesv1.PodCertificateRequestConditionInvalidUserConfig, "%v", err)
	}

	issuer := kind.New()
	if err := r.Client.Get(ctx, key, issuer); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, pending("Waiting for %s: it does not exist; create it, or fix the signerName of the pod's podCertificate volume", ref)
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
	if err := checkNamespace(ctx, r.Client, kind, issuer, pcr.Namespace); err != nil {
		var permanentErr *PermanentError
		if errors.As(err, &permanentErr) {
			return deny(permanentErr.Reason, "%v", permanentErr.Err)
		}
		return nil, err
	}
	csr, err := signer.ParseCSRDER(pcr.Spec.StubPKCS10Request)
	if err != nil {
		return deny(string(signer.ReasonOf(err)), "the stub CSR: %v", err)
	}
	if err := pol.CheckKey(csr.PublicKey); err != nil {
		return deny(certificatesv1.PodCertificateRequestConditionUnsupportedKeyType, "%v; set the keyType of the pod's podCertificate volume to one the issuer allows", err)
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

	started := time.Now()
	issued, err := ca.Issue(signer.LeafRequest{
		CSR:       csr,
		Namespace: pcr.Namespace,
		Duration:  podCertificateLifetime(pcr, issuer),
		Workload:  &signer.Workload{ServiceAccount: pcr.Spec.ServiceAccountName, DNSNames: dnsNames},
	}, pol, r.Clock.Now())
	if reason := signer.ReasonOf(err); reason != "" {
		return deny(string(reason), "%v", err)
	}
	if err != nil {
		return nil, err
	}
	leaf := issued.Certificate
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	if lifetime < signer.MinDuration {
		// Only the CA's expiry shortens a pod certificate this much; the API server refuses it.
		return nil, &IssuerError{Err: fmt.Errorf("%s: its CA expires at %s, too soon for a pod certificate of at least %s; rotate the CA", ref, ca.NotAfter.UTC().Format(time.RFC3339), signer.MinDuration)}
	}
	message := fmt.Sprintf("Issued by %s with its %s: %s, serial %x, valid until %s", ref, ca.Describe(),
		signer.SPIFFEID(pol.TrustDomain, pcr.Namespace, pcr.Spec.ServiceAccountName), leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
	for _, note := range issued.Notes() {
		message += ". " + note
	}
	return &pcrOutcome{
		condition: certificatesv1.PodCertificateRequestConditionTypeIssued, reason: pcrReasonIssued, message: message,
		issued: issued, algorithm: string(ca.Algorithm()), signedTook: time.Since(started),
		// Half the lifetime, where Istio and ztunnel rotate: a missed renewal has the other half.
		refreshAt: leaf.NotBefore.Add(lifetime / 2).Truncate(time.Second),
	}, nil
}

// podCertificateLifetime is what the pod asked for (maxExpirationSeconds, defaulted to 24h by the
// API server) within the issuer's pod maximum; the builder also applies spec.maxDuration and the
// CA's expiry.
func podCertificateLifetime(pcr *certificatesv1.PodCertificateRequest, issuer v1alpha1.Issuer) time.Duration {
	lifetime := issuer.GetSpec().PodCertificateMaxDuration()
	if s := pcr.Spec.MaxExpirationSeconds; s != nil {
		lifetime = min(lifetime, time.Duration(*s)*time.Second)
	}
	return lifetime
}

// dnsNamesOf reads the unverified annotations: only DNSNamesAnnotation means anything to
// pq-issuer, and an annotation it does not know is refused rather than ignored, so that a typo
// does not silently give a pod less than its author meant.
func dnsNamesOf(annotations map[string]string) ([]string, error) {
	var unknown []string
	for k := range annotations {
		if k != DNSNamesAnnotation {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, fmt.Errorf("the podCertificate volume's userAnnotations %q are unknown to pq-issuer; the only one it reads is %s", unknown, DNSNamesAnnotation)
	}
	v, ok := annotations[DNSNamesAnnotation]
	if !ok {
		return nil, nil
	}
	var names []string
	for n := range strings.SplitSeq(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("the userAnnotation %s is empty; list DNS names separated by commas, or remove it", DNSNamesAnnotation)
	}
	return names, nil
}

// write applies out to the request's status, its only status write (answerOnce).
func (r *PodCertificateRequestReconciler) write(ctx context.Context, pcr *certificatesv1.PodCertificateRequest, out *pcrOutcome) (bool, error) {
	written, err := answerOnce(ctx, r.Client, r.APIReader, pcr, func() *certificatesv1.PodCertificateRequest { return &certificatesv1.PodCertificateRequest{} },
		pcrIsFinished, func(latest *certificatesv1.PodCertificateRequest) { out.applyTo(latest, r.Clock.Now()) })
	if err != nil {
		return false, fmt.Errorf("updating the status of PodCertificateRequest %s: %w", client.ObjectKeyFromObject(pcr), err)
	}
	return written, nil
}

// applyTo sets out as pcr's status. The times are the parsed leaf's, to the second, as the API
// server compares them with the certificate's.
func (out *pcrOutcome) applyTo(pcr *certificatesv1.PodCertificateRequest, now time.Time) {
	pcr.Status = certificatesv1.PodCertificateRequestStatus{Conditions: []metav1.Condition{{
		Type: out.condition, Status: metav1.ConditionTrue, Reason: out.reason, Message: out.message,
		LastTransitionTime: metav1.NewTime(now), ObservedGeneration: pcr.Generation,
	}}}
	if out.issued != nil {
		leaf := out.issued.Certificate
		pcr.Status.CertificateChain = string(out.issued.ChainPEM)
		pcr.Status.NotBefore = &metav1.Time{Time: leaf.NotBefore}
		pcr.Status.NotAfter = &metav1.Time{Time: leaf.NotAfter}
		pcr.Status.BeginRefreshAt = &metav1.Time{Time: out.refreshAt}
	}
}

// pcrIsFinished reports whether the request has its one status already.
func pcrIsFinished(pcr *certificatesv1.PodCertificateRequest) bool {
	for _, t := range []string{certificatesv1.PodCertificateRequestConditionTypeIssued, certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed} {
		if meta.IsStatusConditionTrue(pcr.Status.Conditions, t) {
			return true
		}
	}
	return false
}

// SetupWithManager registers the reconciler: requests for pq-issuer's signers, and the issuers
// they wait for.
func (r *PodCertificateRequestReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts controller.Options) error {
	if err := indexBySignerName(ctx, mgr, &certificatesv1.PodCertificateRequest{}); err != nil {
		return fmt.Errorf("indexing PodCertificateRequests by signer name: %w", err)
	}
	b := ctrl.NewControllerManagedBy(mgr).Named("podcertificaterequest").
		For(&certificatesv1.PodCertificateRequest{}, builder.WithPredicates(forPQSigners())).WithOptions(opts)
	for _, kind := range issuerKinds {
		b = b.Watches(kind.New(), handler.EnqueueRequestsFromMapFunc(r.requestsForIssuer(kind)))
	}
	return b.Complete(r)
}

// requestsForIssuer maps an issuer to the unanswered requests for its signer name.
func (r *PodCertificateRequestReconciler) requestsForIssuer(kind IssuerKind) handler.MapFunc {
	return func(ctx context.Context, issuer client.Object) []reconcile.Request {
		list := &certificatesv1.PodCertificateRequestList{}
		name := kind.signerName(client.ObjectKeyFromObject(issuer))
		if err := r.Client.List(ctx, list, client.MatchingFields{signerNameField: name}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Cannot list PodCertificateRequests for a changed issuer", "kind", kind.Name, "issuer", client.ObjectKeyFromObject(issuer))
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if !pcrIsFinished(&list.Items[i]) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
}

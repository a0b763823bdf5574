package controllers

import (
	"context"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// Field indexes the watches use to find what a change affects.
const (
	caSecretNameField = "spec.caSecretName"
	issuerRefField    = "spec.issuerRef.pq-issuer"
)

// Options configure pq-issuer's controllers.
type Options struct {
	// ClusterResourceNamespace holds the Secrets of PQClusterIssuers and every issuer's trust
	// ConfigMap.
	ClusterResourceNamespace string
	// ClusterIssuersOnly is for installs that may read Secrets only in ClusterResourceNamespace:
	// PQIssuers elsewhere are reported not Ready instead of failing on a refused read.
	ClusterIssuersOnly bool
	// MaxConcurrentReconciles is the number of CertificateRequests signed in parallel.
	MaxConcurrentReconciles int
	// MaxRetryDuration is how long after its creation a request that meets transient errors is
	// retried before it is failed; zero means DefaultMaxRetryDuration.
	MaxRetryDuration time.Duration
	Metrics          *Metrics
	// Clock is for tests that step time, e.g. past the removeAfter of a previous CA's root; nil is
	// the real clock. Only the issuer controllers use it: certificates are signed at the real time.
	Clock clock.PassiveClock

	// clusterTrustBundles is set by NewManager, which caches ClusterTrustBundles only where the API
	// server serves them: issuers publish their trust anchors in ClusterTrustBundles too.
	clusterTrustBundles bool
	// podCertificateRequests is set by NewManager, which caches PodCertificateRequests only where
	// the API server serves them: pq-issuer then signs pod certificates.
	podCertificateRequests bool
}

// pendingRecheck is how soon a request waiting for its issuer is looked at again, besides when the
// issuer changes.
const pendingRecheck = time.Minute

// DefaultMaxRetryDuration bounds retries as issuer-lib's MaxRetryDuration does: an hour rides out
// an API server or etcd outage, and a request that still fails then is better Failed, so that
// cert-manager retries its Certificate with a new request on its own backoff, than Pending forever.
const DefaultMaxRetryDuration = time.Hour

// NewScheme knows the types the controllers read: Kubernetes', cert-manager's and pq-issuer's.
func NewScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}

// SetupWithManager registers the PQIssuer, PQClusterIssuer, CertificateRequest,
// CertificateSigningRequest and (where served) PodCertificateRequest controllers and the indexes
// they use.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	if opts.ClusterResourceNamespace == "" {
		return fmt.Errorf("the cluster resource namespace is not set")
	}
	indexer := mgr.GetFieldIndexer()
	for _, kind := range issuerKinds {
		if err := indexer.IndexField(ctx, kind.New(), caSecretNameField, func(o client.Object) []string {
			return []string{o.(v1alpha1.Issuer).GetSpec().CASecretName}
		}); err != nil {
			return fmt.Errorf("indexing %s by CA Secret: %w", kind.Name, err)
		}
	}
	if err := indexer.IndexField(ctx, &cmapi.CertificateRequest{}, issuerRefField, func(o client.Object) []string {
		ref := o.(*cmapi.CertificateRequest).Spec.IssuerRef
		if _, ok := issuerKindOf(ref); !ok {
			return nil
		}
		return []string{issuerRefValue(ref.Kind, ref.Name)}
	}); err != nil {
		return fmt.Errorf("indexing CertificateRequests by issuer: %w", err)
	}

	cas := &CASource{Metadata: mgr.GetClient(), API: mgr.GetAPIReader()}
	issuerClock := opts.Clock
	if issuerClock == nil {
		issuerClock = clock.RealClock{}
	}
	for _, kind := range issuerKinds {
		r := &IssuerReconciler{
			Kind: kind, Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), CAs: cas, Clock: issuerClock, Metrics: opts.Metrics,
			Recorder:                 mgr.GetEventRecorder("pq-issuer"),
			ClusterResourceNamespace: opts.ClusterResourceNamespace,
			ClusterIssuersOnly:       opts.ClusterIssuersOnly,
			ClusterTrustBundles:      opts.clusterTrustBundles,
		}
		if err := r.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the %s controller: %w", kind.Name, err)
		}
	}
	maxRetry := opts.MaxRetryDuration
	if maxRetry == 0 {
		maxRetry = DefaultMaxRetryDuration
	}
	r := &CertificateRequestReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), CAs: cas, Clock: clock.RealClock{}, Metrics: opts.Metrics,
		Recorder:                 mgr.GetEventRecorder("pq-issuer"),
		ClusterResourceNamespace: opts.ClusterResourceNamespace,
		PendingRecheck:           pendingRecheck,
		MaxRetryDuration:         maxRetry,
	}
	if err := r.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}); err != nil {
		return err
	}
	// CertificateSigningRequests are served by every Kubernetes pq-issuer supports: no probe.
	csrs := &CertificateSigningRequestReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), CAs: cas, Clock: clock.RealClock{}, Metrics: opts.Metrics,
		Recorder:                 mgr.GetEventRecorder("pq-issuer"),
		ClusterResourceNamespace: opts.ClusterResourceNamespace,
		PendingRecheck:           pendingRecheck,
		MaxRetryDuration:         maxRetry,
	}
	if err := csrs.SetupWithManager(ctx, mgr, controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles}); err != nil {
		return err
	}
	return setupPodCertificates(ctx, mgr, opts, cas)
}

// setupPodCertificates registers the PodCertificateRequest controller where the API server serves
// PodCertificateRequests (Kubernetes 1.37 and later); elsewhere pq-issuer signs cert-manager's
// requests only, and says so.
func setupPodCertificates(ctx context.Context, mgr ctrl.Manager, opts Options, cas *CASource) error {
	log := ctrl.LoggerFrom(ctx).WithName("setup")
	if !opts.podCertificateRequests {
		log.Info("Not signing pod certificates: the API server does not serve certificates.k8s.io/v1 PodCertificateRequests (Kubernetes 1.37 and later do)")
		return nil
	}
	r := &PodCertificateRequestReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), CAs: cas, Clock: clock.RealClock{}, Metrics: opts.Metrics,
		Recorder:                 mgr.GetEventRecorder("pq-issuer"),
		ClusterResourceNamespace: opts.ClusterResourceNamespace,
		PendingRecheck:           pendingRecheck,
	}
	log.Info("Signing pod certificates: PodCertificateRequests for signer names " + pqClusterIssuerSignerDomain + "/<name> and " + pqIssuerSignerDomain + "/<namespace>.<name>")
	return r.SetupWithManager(ctx, mgr, controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles})
}

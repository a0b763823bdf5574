package controllers

import (
	"context"
	"fmt"
	"maps"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// LeaderElectionID names the Lease the replicas compete for in their own namespace.
const LeaderElectionID = "pq-issuer.pq-issuer.dev"

// ManagerOptions configure the controller manager that runs pq-issuer's controllers: the pq-issuer
// binary fills them from its flags, the local control plane from its test settings.
type ManagerOptions struct {
	Options
	// MetricsBindAddress and HealthProbeBindAddress are where /metrics and /healthz, /readyz are
	// served; "0" or "" turns them off. /metrics is served over HTTPS to clients the API server
	// authenticates and authorizes (metricsServer).
	MetricsBindAddress     string
	HealthProbeBindAddress string
	// PprofBindAddress serves /debug/pprof for profiling; "" or "0" (the default) turns it off.
	PprofBindAddress string
	// LeaderElection lets only one of several replicas sign, holding the Lease LeaderElectionID in
	// LeaderElectionNamespace.
	LeaderElection          bool
	LeaderElectionNamespace string
	// SkipNameValidation allows the controllers to be started more than once in one process.
	SkipNameValidation bool
}

// Leader election keeps the Lease LeaderElectionID in the controller's namespace and records "became
// leader" as a core/v1 event there (the Helm chart's Role grants both in the release namespace). RBAC
// cannot restrict create by name, so create is a rule of its own; get and update are for our Lease
// only.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;update,resourceNames=pq-issuer.pq-issuer.dev,namespace=pq-issuer
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=create,namespace=pq-issuer
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=pq-issuer

// /metrics asks the API server who a scraper is (TokenReview) and whether it may get /metrics
// (SubjectAccessReview).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// NewManager creates a controller manager with pq-issuer's controllers and health checks; Start it
// with the same ctx.
func NewManager(ctx context.Context, cfg *rest.Config, opts ManagerOptions) (ctrl.Manager, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	// Managed fields are never read; requests (CertificateRequests, CertificateSigningRequests and
	// PodCertificateRequests) and Secrets are slimmed to what is (cache_transform.go), only CA Secrets are watched
	// (secretCache), only our issuers' requests where the CRD allows it (request_selector.go), and
	// only the ConfigMaps and ClusterTrustBundles we publish.
	probe, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	requests := cache.ByObject{Transform: slimCertificateRequest, Field: requestFieldSelector(ctx, probe)}
	// A cache setting for a kind the API server does not serve would fail the cache.
	if opts.clusterTrustBundles, err = certificatesV1Served(probe.RESTMapper(), "ClusterTrustBundle"); err != nil {
		return nil, fmt.Errorf("asking the API server whether it serves ClusterTrustBundles: %w", err)
	}
	if log := ctrl.LoggerFrom(ctx).WithName("setup"); opts.clusterTrustBundles {
		log.Info("Publishing trust anchors in ClusterTrustBundles and ConfigMaps")
	} else {
		log.Info("Publishing trust anchors in ConfigMaps only: the API server does not serve certificates.k8s.io/v1 ClusterTrustBundles (Kubernetes 1.37 and later do)")
	}
	cacheOpts := cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&cmapi.CertificateRequest{}:                 requests,
			&certificatesv1.CertificateSigningRequest{}: {Transform: slimCertificateSigningRequest},
			&corev1.Secret{}:                            secretCache(opts.Options),
		},
	}
	maps.Copy(cacheOpts.ByObject, trustAnchorCaches(opts.Options))
	if opts.podCertificateRequests, err = certificatesV1Served(probe.RESTMapper(), "PodCertificateRequest"); err != nil {
		return nil, fmt.Errorf("asking the API server whether it serves PodCertificateRequests: %w", err)
	}
	if opts.podCertificateRequests {
		cacheOpts.ByObject[&certificatesv1.PodCertificateRequest{}] = cache.ByObject{Transform: slimPodCertificateRequest}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         cacheOpts,
		Metrics:                       metricsServer(opts.MetricsBindAddress),
		HealthProbeBindAddress:        opts.HealthProbeBindAddress,
		PprofBindAddress:              opts.PprofBindAddress,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(opts.SkipNameValidation)},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the controller manager: %w", err)
	}
	if err := SetupWithManager(ctx, mgr, opts.Options); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return nil, err
	}
	return mgr, nil
}

// secretCache is what the cache keeps of Secrets: the metadata of CA Secrets (the label selector),
// and nothing of the others, some 20,000 in a cluster with 10,000 Certificates. CASource reads a
// Secret the cache lacks from the API server, to tell an unmarked one from a missing one.
func secretCache(opts Options) cache.ByObject {
	secrets := cache.ByObject{Label: caSecretSelector(), Transform: slimSecretMetadata}
	if opts.ClusterIssuersOnly {
		// The chart grants Secret read only in this namespace; a cluster-wide watch would be refused.
		secrets.Namespaces = map[string]cache.Config{opts.ClusterResourceNamespace: {}}
	}
	return secrets
}

// metricsServer serves /metrics over HTTPS, with a self-signed certificate made at start, to clients
// with a token the API server accepts and RBAC to get the non-resource URL /metrics (the Helm
// chart's metrics-reader ClusterRole). The metrics name every issuer, its namespace and its CA's
// expiry, and /metrics must not depend on a NetworkPolicy the cluster may not enforce.
func metricsServer(bindAddress string) metricsserver.Options {
	return metricsserver.Options{
		BindAddress:    bindAddress,
		SecureServing:  true,
		FilterProvider: metricsAuthFilter,
	}
}

// Command pq-issuer runs the PQIssuer, PQClusterIssuer and CertificateRequest controllers: a
// cert-manager external issuer that signs with ML-DSA CAs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pq-issuer/pq-issuer/controllers"
)

// serviceAccountNamespaceFile is where Kubernetes tells a pod its namespace.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

type options struct {
	metricsAddr              string
	probeAddr                string
	leaderElect              bool
	namespace                string
	clusterResourceNamespace string
	maxConcurrentReconciles  int
	zap                      zap.Options
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "pq-issuer:", err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.zap)))
	log := ctrl.Log.WithName("setup")
	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Error(err, "Cannot find the Kubernetes API server: run in a pod or set KUBECONFIG")
		os.Exit(1)
	}
	if err := run(cfg, opts); err != nil {
		log.Error(err, "pq-issuer stopped")
		os.Exit(1)
	}
}

func parseFlags(args []string, output *os.File) (options, error) {
	var opts options
	fs := flag.NewFlagSet("pq-issuer", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&opts.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 turns it off")
	fs.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints")
	fs.BoolVar(&opts.leaderElect, "leader-elect", true, "Elect a leader, so that of several replicas only one signs")
	fs.StringVar(&opts.namespace, "namespace", "", "The controller's own namespace, for the leader election lease (default: the pod's namespace)")
	fs.StringVar(&opts.clusterResourceNamespace, "cluster-resource-namespace", "", "Where PQClusterIssuers' CA Secrets live (default: --namespace)")
	fs.IntVar(&opts.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "CertificateRequests signed in parallel")
	opts.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if opts.namespace == "" {
		opts.namespace = podNamespace()
	}
	if opts.clusterResourceNamespace == "" {
		opts.clusterResourceNamespace = opts.namespace
	}
	if opts.clusterResourceNamespace == "" {
		return opts, errors.New("cannot tell the cluster resource namespace outside a pod: set --cluster-resource-namespace (cert-manager's is usually cert-manager)")
	}
	if opts.leaderElect && opts.namespace == "" {
		return opts, errors.New("cannot tell the leader election namespace outside a pod: set --namespace, or --leader-elect=false for a single replica")
	}
	if opts.maxConcurrentReconciles < 1 {
		return opts, fmt.Errorf("--max-concurrent-reconciles must be at least 1, not %d", opts.maxConcurrentReconciles)
	}
	return opts, nil
}

// podNamespace is the namespace the pod runs in, from the downward API (POD_NAMESPACE) or the
// service account, or "" outside a pod.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, err := os.ReadFile(serviceAccountNamespaceFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Leader election keeps a Lease in the controller's namespace (the Helm chart's Role grants it there).
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=pq-issuer

func run(cfg *rest.Config, opts options) error {
	scheme, err := controllers.NewScheme()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: opts.metricsAddr},
		HealthProbeBindAddress:        opts.probeAddr,
		LeaderElection:                opts.leaderElect,
		LeaderElectionID:              "pq-issuer.pq-issuer.dev",
		LeaderElectionNamespace:       opts.namespace,
		LeaderElectionReleaseOnCancel: true,
		// Every CertificateRequest is cached; their managed fields are never read.
		Cache: cache.Options{DefaultTransform: cache.TransformStripManagedFields()},
	})
	if err != nil {
		return fmt.Errorf("creating the controller manager: %w", err)
	}
	m, err := controllers.NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	if err := controllers.SetupWithManager(ctx, mgr, controllers.Options{
		ClusterResourceNamespace: opts.clusterResourceNamespace,
		MaxConcurrentReconciles:  opts.maxConcurrentReconciles,
		Metrics:                  m,
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting pq-issuer", "clusterResourceNamespace", opts.clusterResourceNamespace,
		"leaderElection", opts.leaderElect, "namespace", opts.namespace, "maxConcurrentReconciles", opts.maxConcurrentReconciles)
	return mgr.Start(ctx)
}

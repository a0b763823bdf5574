// Command pq-issuer runs the PQIssuer, PQClusterIssuer and CertificateRequest controllers: a
// cert-manager external issuer that signs with ML-DSA CAs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/pq-issuer/pq-issuer/controllers"
	"github.com/pq-issuer/pq-issuer/internal/buildinfo"
)

// serviceAccountNamespaceFile is where Kubernetes tells a pod its namespace.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// version is the release, stamped by `make release` and the image build with
// -ldflags "-X main.version=<VERSION>"; empty in other builds.
var version = ""

type options struct {
	metricsAddr              string
	probeAddr                string
	pprofAddr                string
	leaderElect              bool
	namespace                string
	clusterResourceNamespace string
	clusterIssuersOnly       bool
	maxConcurrentReconciles  int
	maxRetryDuration         time.Duration
	zap                      zap.Options
	showVersion              bool
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
	if opts.showVersion {
		fmt.Printf("pq-issuer %s (%s, %s/%s)\n", buildinfo.Version(version), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return
	}
	// The heap is mostly the informer cache, which lives as long as the process; what the GC frees
	// is decoded watch events. Go's default (GOGC=100) lets the heap grow to twice the cache before
	// collecting; 50 keeps it near 1.5 times, for a little more GC CPU (docs/benchmarks.md). GOGC in
	// the environment still decides when set.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(50)
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
	fs.StringVar(&opts.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint (HTTPS, for clients RBAC lets get /metrics); 0 turns it off")
	fs.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints")
	fs.StringVar(&opts.pprofAddr, "pprof-bind-address", "", "Address of /debug/pprof, for profiling; empty turns it off")
	fs.BoolVar(&opts.leaderElect, "leader-elect", true, "Elect a leader, so that of several replicas only one signs")
	fs.StringVar(&opts.namespace, "namespace", "", "The controller's own namespace, for the leader election lease (default: the pod's namespace)")
	fs.StringVar(&opts.clusterResourceNamespace, "cluster-resource-namespace", "", "Where PQClusterIssuers' CA Secrets and every issuer's trust ConfigMap live (default: --namespace)")
	fs.BoolVar(&opts.clusterIssuersOnly, "cluster-issuers-only", false, "Read Secrets only in --cluster-resource-namespace (for RBAC that grants no more); PQIssuers elsewhere are reported not Ready")
	fs.IntVar(&opts.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "CertificateRequests signed in parallel")
	fs.DurationVar(&opts.maxRetryDuration, "max-retry-duration", controllers.DefaultMaxRetryDuration,
		"How long after its creation a CertificateRequest that meets transient errors (API server, CA Secret reads) is retried before it is Failed")
	fs.BoolVar(&opts.showVersion, "version", false, "Print the version and exit")
	opts.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if opts.showVersion {
		// Answered anywhere, without the namespaces a running controller needs.
		return opts, nil
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
	if opts.maxRetryDuration <= 0 {
		return opts, fmt.Errorf("--max-retry-duration must be positive, not %s", opts.maxRetryDuration)
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

func run(cfg *rest.Config, opts options) error {
	m, err := controllers.NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	mgr, err := controllers.NewManager(ctx, cfg, controllers.ManagerOptions{
		Options: controllers.Options{
			ClusterResourceNamespace: opts.clusterResourceNamespace,
			ClusterIssuersOnly:       opts.clusterIssuersOnly,
			MaxConcurrentReconciles:  opts.maxConcurrentReconciles,
			MaxRetryDuration:         opts.maxRetryDuration,
			Metrics:                  m,
		},
		MetricsBindAddress:      opts.metricsAddr,
		HealthProbeBindAddress:  opts.probeAddr,
		PprofBindAddress:        opts.pprofAddr,
		LeaderElection:          opts.leaderElect,
		LeaderElectionNamespace: opts.namespace,
	})
	if err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting pq-issuer", "clusterResourceNamespace", opts.clusterResourceNamespace,
		"clusterIssuersOnly", opts.clusterIssuersOnly, "leaderElection", opts.leaderElect, "namespace", opts.namespace,
		"maxConcurrentReconciles", opts.maxConcurrentReconciles, "maxRetryDuration", opts.maxRetryDuration)
	return mgr.Start(ctx)
}

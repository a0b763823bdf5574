// Package localcluster runs a Kubernetes control plane without Docker: the real kube-apiserver and
// etcd (built into bin/ by `make tools`) started by controller-runtime's envtest, with cert-manager's
// and trust-manager's own controllers running in this process. It is the cluster the e2e tests and
// `make local-cluster` use.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DefaultClusterResourceNamespace is where ClusterIssuers keep their Secrets and where trust-manager
// reads Bundle sources, as in a cert-manager installed with its Helm chart.
const DefaultClusterResourceNamespace = "cert-manager"

// Runner is a controller (or a whole manager) that runs in the control plane's process until ctx
// is cancelled. cfg authenticates as a cluster administrator.
type Runner func(ctx context.Context, cfg *rest.Config) error

// Options configures a local control plane.
type Options struct {
	// BinDir holds kube-apiserver, etcd and kubectl, as built by `make tools`.
	BinDir string
	// ClusterResourceNamespace is created at start; cert-manager and trust-manager use it as their
	// cluster resource / trust namespace. Defaults to DefaultClusterResourceNamespace.
	ClusterResourceNamespace string
	// Log receives the controllers' logs.
	Log logr.Logger
	// CertManagerQPS and CertManagerBurst limit cert-manager's API client, like its --kube-api-qps
	// and --kube-api-burst; zero means cert-manager's defaults, 20 and 50.
	CertManagerQPS   float32
	CertManagerBurst int
	// Approver approves or denies CertificateRequests: cert-manager's approver (the default),
	// approver-policy (with cert-manager's approver left out) or none.
	Approver Approver
	// Extra runs next to cert-manager's and trust-manager's controllers, for example pq-issuer's
	// manager with --cluster-resource-namespace=ClusterResourceNamespace. A Runner that returns an
	// error before Stop is reported by Stop.
	Extra []Runner
}

// Cluster is a running local control plane. Stop it to end the processes and remove its files.
type Cluster struct {
	opts       Options
	env        *envtest.Environment
	client     client.Client
	kubeconfig []byte
	// dir holds the kubeconfig cert-manager's controllers read.
	dir string

	// runCtx is cancelled by Stop. Processes started after Start, such as nodes, run until then.
	runCtx   context.Context
	cancel   context.CancelFunc
	running  sync.WaitGroup
	shutdown []func()

	mu   sync.Mutex
	errs []error

	stopOnce sync.Once
	stopErr  error
}

// Start brings up etcd and kube-apiserver, installs the cert-manager, Gateway API and trust-manager
// CRDs, creates the cluster resource namespace and starts the controllers. It returns once their
// caches are synced. On error everything started so far is stopped again.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.ClusterResourceNamespace == "" {
		opts.ClusterResourceNamespace = DefaultClusterResourceNamespace
	}
	if opts.Approver == "" {
		opts.Approver = ApproverCertManager
	}
	if _, err := ParseApprover(string(opts.Approver)); err != nil {
		return nil, err
	}
	log := opts.Log.WithName("localcluster")
	started := time.Now()

	if err := checkBinaries(opts.BinDir); err != nil {
		return nil, err
	}
	if opts.Approver == ApproverPolicy {
		if err := downloadApproverPolicy(ctx); err != nil {
			return nil, err
		}
	}
	crdDirs, err := crdDirectories(ctx, crdSources(opts.Approver))
	if err != nil {
		return nil, err
	}

	c := &Cluster{
		opts: opts,
		env: &envtest.Environment{
			BinaryAssetsDirectory: opts.BinDir,
			// Explicit paths, because envtest prefers KUBEBUILDER_ASSETS and TEST_ASSET_* from the
			// environment over BinaryAssetsDirectory, and those may hold other versions.
			ControlPlane: envtest.ControlPlane{
				APIServer:   &envtest.APIServer{Path: filepath.Join(opts.BinDir, "kube-apiserver")},
				Etcd:        &envtest.Etcd{Path: filepath.Join(opts.BinDir, "etcd")},
				KubectlPath: filepath.Join(opts.BinDir, "kubectl"),
			},
			CRDDirectoryPaths:     crdDirs,
			ErrorIfCRDPathMissing: true,
		},
	}
	// Authorization and admission as in a real cluster, for StartNode's nodes. The Node authorizer
	// lets a node read and create only what concerns its pods. NodeRestriction holds it to
	// PodCertificateRequests for its own pods and the signers they mount. Neither changes
	// anything for other users.
	c.env.ControlPlane.GetAPIServer().Configure().
		Set("authorization-mode", "Node,RBAC").
		Append("enable-admission-plugins", "NodeRestriction")
	runCtx, cancel := context.WithCancel(logr.NewContext(context.WithoutCancel(ctx), opts.Log))
	c.runCtx, c.cancel = runCtx, cancel

	if err := c.start(ctx, runCtx); err != nil {
		return nil, errors.Join(err, c.Stop())
	}
	log.Info("Local control plane ready", "apiServer", c.env.Config.Host, "duration", time.Since(started).Round(time.Millisecond))
	return c, nil
}

func (c *Cluster) start(ctx, runCtx context.Context) error {
	log := c.opts.Log.WithName("localcluster")

	log.V(1).Info("Starting etcd and kube-apiserver", "binDir", c.opts.BinDir)
	cfg, err := c.env.Start()
	if err != nil {
		return fmt.Errorf("starting etcd and kube-apiserver from %s: %w", c.opts.BinDir, err)
	}
	c.kubeconfig = c.env.KubeConfig

	c.client, err = client.New(cfg, client.Options{Scheme: NewScheme()})
	if err != nil {
		return fmt.Errorf("creating a client for %s: %w", cfg.Host, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.opts.ClusterResourceNamespace}}
	if err := c.client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", ns.Name, err)
	}

	// cert-manager's context factory reads a kubeconfig file, like the real binary.
	c.dir, err = os.MkdirTemp("", "localcluster-")
	if err != nil {
		return fmt.Errorf("creating a directory for the kubeconfig: %w", err)
	}
	kubeconfigPath := filepath.Join(c.dir, "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, c.kubeconfig, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", kubeconfigPath, err)
	}

	if err := c.startCertManager(ctx, runCtx, kubeconfigPath); err != nil {
		return fmt.Errorf("starting cert-manager's controllers: %w", err)
	}
	if err := c.startTrustManager(ctx, runCtx, cfg); err != nil {
		return fmt.Errorf("starting trust-manager's Bundle controller: %w", err)
	}
	if c.opts.Approver == ApproverPolicy {
		if err := c.startApproverPolicy(ctx, runCtx, kubeconfigPath); err != nil {
			return fmt.Errorf("starting approver-policy: %w", err)
		}
	}
	for i, run := range c.opts.Extra {
		c.goRun(runCtx, fmt.Sprintf("extra runner %d", i), func(ctx context.Context) error {
			return run(ctx, rest.CopyConfig(cfg))
		})
	}
	return nil
}

// goRun runs fn until Stop, and keeps its error for Stop to report. Errors that come after Stop
// cancelled ctx (a controller still waiting for its caches, say) are part of shutting down.
func (c *Cluster) goRun(ctx context.Context, name string, fn func(context.Context) error) {
	c.running.Go(func() {
		err := fn(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			c.opts.Log.V(1).Info("Controller stopped", "controller", name, "reason", err)
		default:
			c.opts.Log.Error(err, "Controller stopped with an error", "controller", name)
			c.mu.Lock()
			c.errs = append(c.errs, fmt.Errorf("%s: %w", name, err))
			c.mu.Unlock()
		}
	})
}

// Config returns a copy of the cluster administrator's REST config.
func (c *Cluster) Config() *rest.Config { return rest.CopyConfig(c.env.Config) }

// KubeConfig returns a kubeconfig for the cluster administrator (group system:masters).
func (c *Cluster) KubeConfig() []byte { return c.kubeconfig }

// Client returns a cluster administrator's client that knows the Kubernetes, cert-manager, Gateway
// API and trust-manager types.
func (c *Cluster) Client() client.Client { return c.client }

// ClusterResourceNamespace is the namespace for ClusterIssuer Secrets and trust-manager sources.
func (c *Cluster) ClusterResourceNamespace() string { return c.opts.ClusterResourceNamespace }

// Stop stops the controllers first (so they do not log errors about a vanished API server), then
// kube-apiserver and etcd, and removes every file the cluster wrote. It is safe to call twice.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		log := c.opts.Log.WithName("localcluster")
		log.V(1).Info("Stopping controllers")
		c.cancel()
		c.running.Wait()
		for _, shutdown := range c.shutdown {
			shutdown()
		}

		log.V(1).Info("Stopping kube-apiserver and etcd")
		errs := c.errs
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping kube-apiserver and etcd: %w", err))
		}
		if c.dir != "" {
			if err := os.RemoveAll(c.dir); err != nil {
				errs = append(errs, err)
			}
		}
		c.stopErr = errors.Join(errs...)
		log.Info("Local control plane stopped")
	})
	return c.stopErr
}

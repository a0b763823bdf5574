package localcluster

import (
	"context"
	"fmt"
	"slices"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	shimgateway "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/gateways"
	crapprover "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// The issuers and clusterissuers controllers look issuer implementations up in a registry that
	// these packages fill in init().
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// certManagerWorkers is what cert-manager's controller binary runs each controller with.
const certManagerWorkers = 5

// certManagerControllers are the cert-manager controllers this control plane runs: the Certificate
// pipeline, the approver, the SelfSigned and CA issuers, and gateway-shim. ACME, Vault, Venafi and
// ingress-shim need infrastructure that is not here.
// Without the approver (--controllers=-certificaterequests-approver, as with approver-policy),
// requests wait for another approver.
func certManagerControllers(withApprover bool) []string {
	names := []string{
		trigger.ControllerName,
		keymanager.ControllerName,
		requestmanager.ControllerName,
		issuing.ControllerName,
		readiness.ControllerName,
		revisionmanager.ControllerName,
		crapprover.ControllerName,
		crselfsigned.CRControllerName,
		crca.CRControllerName,
		issuers.ControllerName,
		clusterissuers.ControllerName,
		shimgateway.ControllerName,
	}
	if !withApprover {
		names = slices.DeleteFunc(names, func(n string) bool { return n == crapprover.ControllerName })
	}
	return names
}

// certManagerOptions are cert-manager's controller defaults (internal/apis/config/controller/v1alpha1
// in cert-manager v1.21) with the Gateway API enabled, as `--enable-gateway-api` does.
func certManagerOptions(kubeconfig, clusterResourceNamespace string, qps float32, burst int) controllerpkg.ContextOptions {
	if qps == 0 {
		qps, burst = 20, 50
	}
	return controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   qps,
		KubernetesAPIBurst: burst,
		IssuerOptions: controllerpkg.IssuerOptions{
			ClusterResourceNamespace:        clusterResourceNamespace,
			ClusterIssuerAmbientCredentials: true,
		},
		IngressShimOptions: controllerpkg.IngressShimOptions{
			DefaultIssuerKind:                 cmapi.IssuerKind,
			DefaultIssuerGroup:                cmapi.SchemeGroupVersion.Group,
			DefaultAutoCertificateAnnotations: []string{"kubernetes.io/tls-acme"},
		},
		CertificateOptions: controllerpkg.CertificateOptions{
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
		},
		ConfigOptions: controllerpkg.ConfigOptions{EnableGatewayAPI: true},
	}
}

// startCertManager does what cert-manager's controller binary does after leader election: build
// every enabled controller from the shared context factory, run them, then start the informer
// factories they registered with.
func (c *Cluster) startCertManager(ctx, runCtx context.Context, kubeconfig string) error {
	runCtx = logf.NewContext(runCtx, c.opts.Log, "cert-manager")
	factory, err := controllerpkg.NewContextFactory(runCtx, certManagerOptions(kubeconfig, c.opts.ClusterResourceNamespace, c.opts.CertManagerQPS, c.opts.CertManagerBurst))
	if err != nil {
		return fmt.Errorf("creating the controller context: %w", err)
	}

	known := controllerpkg.Known()
	for _, name := range certManagerControllers(c.opts.Approver == ApproverCertManager) {
		constructor, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %q is not registered: its package is not imported", name)
		}
		ctrl, err := constructor(factory)
		if err != nil {
			return fmt.Errorf("creating controller %q: %w", name, err)
		}
		c.goRun(runCtx, name, func(ctx context.Context) error { return ctrl.Run(certManagerWorkers, ctx) })
	}

	// Every controller shares these factories; Build only hands out a per-component copy.
	shared, err := factory.Build()
	if err != nil {
		return fmt.Errorf("building the shared controller context: %w", err)
	}
	c.shutdown = append(c.shutdown, shared.KubeSharedInformerFactory.Shutdown, shared.SharedInformerFactory.Shutdown, shared.GWShared.Shutdown)
	shared.KubeSharedInformerFactory.Start(runCtx.Done())
	shared.SharedInformerFactory.Start(runCtx.Done())
	shared.GWShared.Start(runCtx.Done())

	var notSynced []string
	notSynced = append(notSynced, unsynced(shared.KubeSharedInformerFactory.WaitForCacheSync(ctx.Done()))...)
	notSynced = append(notSynced, unsynced(shared.SharedInformerFactory.WaitForCacheSync(ctx.Done()))...)
	notSynced = append(notSynced, unsynced(shared.GWShared.WaitForCacheSync(ctx.Done()))...)
	if len(notSynced) > 0 {
		return fmt.Errorf("informer caches did not sync: %v: %w", notSynced, context.Cause(ctx))
	}
	return nil
}

// unsynced names the informers of a WaitForCacheSync result that did not sync.
func unsynced[K comparable](synced map[K]bool) []string {
	var names []string
	for informer, ok := range synced {
		if !ok {
			names = append(names, fmt.Sprint(informer))
		}
	}
	return names
}

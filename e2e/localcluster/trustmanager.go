package localcluster

import (
	"context"
	"fmt"

	trustapi "github.com/cert-manager/trust-manager/pkg/apis/trust/v1alpha1"
	"github.com/cert-manager/trust-manager/pkg/bundle"
	bundlecontroller "github.com/cert-manager/trust-manager/pkg/bundle/controller"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// startTrustManager runs trust-manager's Bundle controller in its own manager, set up as
// trust-manager's binary does (cmd/trust-manager/app), minus the webhook, leader election and
// metrics/health listeners. Its cache only sees Secrets and ConfigMaps in the trust namespace,
// which is why other controllers get managers of their own.
func (c *Cluster) startTrustManager(ctx, runCtx context.Context, cfg *rest.Config) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := trustapi.AddToScheme(scheme); err != nil {
		return err
	}

	opts := bundlecontroller.Options{Namespace: c.opts.ClusterResourceNamespace}
	log := c.opts.Log.WithName("trust-manager")
	mgr, err := ctrl.NewManager(rest.CopyConfig(cfg), ctrl.Options{
		Scheme:                 scheme,
		Logger:                 log,
		Cache:                  bundle.CacheOpts(opts),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Controller names must be unique per process; a test may start several clusters in turn.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := bundle.SetupWithManager(ctrl.LoggerInto(runCtx, log), mgr, opts); err != nil {
		return err
	}
	// The controller would only create these informers once it starts, so WaitForCacheSync below
	// could return before they exist. Until the Bundle informer has synced, a Stop makes
	// trust-manager's event handlers panic ("failed to list all Bundles, panicking"), which would
	// take this process down and orphan etcd and kube-apiserver.
	for _, obj := range []client.Object{&trustapi.Bundle{}, &corev1.Namespace{}, &corev1.ConfigMap{}, &corev1.Secret{}} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj, cache.BlockUntilSynced(false)); err != nil {
			return fmt.Errorf("creating the informer for %T: %w", obj, err)
		}
	}

	c.goRun(runCtx, "trust-manager", mgr.Start)
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return fmt.Errorf("trust-manager's cache did not sync: %w", context.Cause(ctx))
	}
	return nil
}

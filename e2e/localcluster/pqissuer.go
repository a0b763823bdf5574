package localcluster

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pq-issuer/pq-issuer/controllers"
)

// PQIssuer is a Runner for pq-issuer's controllers, set up as the pq-issuer binary sets them up with
// --cluster-resource-namespace=clusterResourceNamespace --leader-elect=false. Its metrics go to a
// registry of its own and are not served, so it can start many times in one process.
func PQIssuer(clusterResourceNamespace string) Runner {
	return func(ctx context.Context, cfg *rest.Config) error {
		scheme, err := controllers.NewScheme()
		if err != nil {
			return err
		}
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:  scheme,
			Metrics: metricsserver.Options{BindAddress: "0"},
			// Controller names are process-wide; tests start the controllers more than once.
			Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		})
		if err != nil {
			return fmt.Errorf("creating pq-issuer's manager: %w", err)
		}
		metrics, err := controllers.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			return err
		}
		if err := controllers.SetupWithManager(ctx, mgr, controllers.Options{
			ClusterResourceNamespace: clusterResourceNamespace,
			MaxConcurrentReconciles:  4,
			Metrics:                  metrics,
		}); err != nil {
			return err
		}
		return mgr.Start(ctx)
	}
}

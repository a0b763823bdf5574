package localcluster

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"

	"github.com/pq-issuer/pq-issuer/controllers"
)

// PQIssuer is a Runner for pq-issuer's controllers, set up as the pq-issuer binary sets them up with
// --cluster-resource-namespace=clusterResourceNamespace --leader-elect=false. Its metrics go to a
// registry of its own and are not served, so it can start many times in one process.
func PQIssuer(clusterResourceNamespace string) Runner {
	return PQIssuerWith(controllers.ManagerOptions{Options: controllers.Options{ClusterResourceNamespace: clusterResourceNamespace}})
}

// PQIssuerWith is PQIssuer with the manager settings of opts (leader election, cluster issuers
// only, ...). Unset MaxConcurrentReconciles and Metrics get the binary's default and a registry of
// their own; probes are not served, metrics only when opts.MetricsBindAddress is set (the
// controller-runtime metrics there; the pq_issuer_* ones stay in the registry of their own).
func PQIssuerWith(opts controllers.ManagerOptions) Runner {
	return func(ctx context.Context, cfg *rest.Config) error {
		opts := opts // each start gets its own copy
		if opts.MaxConcurrentReconciles == 0 {
			opts.MaxConcurrentReconciles = 4
		}
		if opts.Metrics == nil {
			m, err := controllers.NewMetrics(prometheus.NewRegistry())
			if err != nil {
				return err
			}
			opts.Metrics = m
		}
		if opts.MetricsBindAddress == "" {
			opts.MetricsBindAddress = "0"
		}
		opts.HealthProbeBindAddress = "0"
		// Controller names are process-wide; tests start the controllers more than once.
		opts.SkipNameValidation = true
		mgr, err := controllers.NewManager(ctx, cfg, opts)
		if err != nil {
			return err
		}
		return mgr.Start(ctx)
	}
}

// Command reference-signer runs Kubernetes' in-tree reference signer for PodCertificateRequests,
// k8s.io/kubernetes/test/utils/hermeticpodcertificatesigner. That is the signer Kubernetes' own
// e2e tests use, also known as `agnhost podcertificatesigner`. It signs every request for
// --signer-name with a fresh Ed25519 CA. The leaf carries the SPIFFE URI
// spiffe://cluster.local/ns/<namespace>/sa/<service account> and lasts
// min(24h, maxExpirationSeconds), with beginRefreshAt 30 minutes before notAfter. The signer keeps
// the ClusterTrustBundle <signer name with / as :>:primary-bundle holding the root up to date,
// and deletes it on exit.
//
// The local control plane runs it to check the node side (kubelet-podcerts) against a signer
// known to be correct, and to compare pq-issuer with it. It logs JSON lines to stderr and stops on
// SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/test/utils/hermeticpodcertificatesigner"
	"k8s.io/utils/clock"

	"github.com/pq-issuer/pq-issuer/e2e/tools/internal/jsonlog"
)

type options struct {
	kubeconfig       string
	signerName       string
	clusterDNSDomain string
	intermediates    int
	verbosity        int
}

func parseFlags(args []string) (options, error) {
	var opts options
	flags := flag.NewFlagSet("reference-signer", flag.ContinueOnError)
	flags.StringVar(&opts.kubeconfig, "kubeconfig", "", "Kubeconfig of a user that may sign for the signer name and write ClusterTrustBundles (required)")
	flags.StringVar(&opts.signerName, "signer-name", "", "Signer name to sign PodCertificateRequests for, such as example.com/reference (required)")
	flags.StringVar(&opts.clusterDNSDomain, "cluster-dns-domain", "cluster.local", "Cluster DNS domain for the leaf's DNS name server.<namespace>.svc.<domain>; empty for server.<namespace>.svc only")
	flags.IntVar(&opts.intermediates, "intermediates", 1, "Intermediate CAs between the root and the leaves")
	flags.IntVar(&opts.verbosity, "v", 0, "Log verbosity (logr's V levels)")
	if err := flags.Parse(args); err != nil {
		return opts, err
	}
	if opts.kubeconfig == "" || opts.signerName == "" {
		return opts, fmt.Errorf("--kubeconfig and --signer-name are required")
	}
	if !strings.Contains(opts.signerName, "/") {
		return opts, fmt.Errorf("--signer-name=%s: a signer name has the form <domain>/<path>", opts.signerName)
	}
	if opts.intermediates < 0 {
		return opts, fmt.Errorf("--intermediates=%d: must not be negative", opts.intermediates)
	}
	return opts, nil
}

func main() { os.Exit(runMain()) }

func runMain() int {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "reference-signer:", err)
		return 2
	}
	log, err := jsonlog.New(opts.verbosity)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reference-signer: setting up logging:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(klog.NewContext(ctx, log), opts); err != nil {
		log.Error(err, "Reference signer stopped with an error", "signerName", opts.signerName)
		return 1
	}
	return 0
}

func run(ctx context.Context, opts options) error {
	log := klog.FromContext(ctx).WithValues("signerName", opts.signerName)
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading --kubeconfig=%s: %w", opts.kubeconfig, err)
	}
	cfg.UserAgent = "reference-signer"
	// No client-side rate limit, like controller-runtime's managers (pq-issuer's too): with
	// client-go's default of 5 requests a second, one status update per request, the limit and not
	// the signer would set its pace.
	cfg.QPS = -1
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a client for %s: %w", cfg.Host, err)
	}
	caKeys, caCerts, err := hermeticpodcertificatesigner.GenerateCAHierarchy(opts.intermediates)
	if err != nil {
		return fmt.Errorf("generating the CA hierarchy: %w", err)
	}
	signer := hermeticpodcertificatesigner.New(clock.RealClock{}, opts.signerName, opts.clusterDNSDomain, caKeys, caCerts, kc)
	log.Info("Reference signer starting", "intermediates", opts.intermediates, "clusterDNSDomain", opts.clusterDNSDomain)
	// Run returns when ctx ends, after deleting its ClusterTrustBundle.
	signer.Run(ctx)
	log.Info("Reference signer stopped")
	return nil
}

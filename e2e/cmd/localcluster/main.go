// Command localcluster runs the local control plane (kube-apiserver, etcd, cert-manager's,
// trust-manager's and pq-issuer's controllers) in the foreground until Ctrl-C or SIGTERM, and writes a kubeconfig
// for it. `make local-cluster` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

type options struct {
	binDir     string
	kubeconfig string
	approver   string
	nodes      string
	nodesDir   string
	verbosity  int
}

func main() {
	var opts options
	// A FlagSet of its own: controller-runtime registers --kubeconfig on the global one.
	flags := flag.NewFlagSet(filepath.Base(os.Args[0]), flag.ExitOnError)
	flags.StringVar(&opts.binDir, "bin-dir", "../bin", "Directory with kube-apiserver, etcd and kubectl (built by `make tools`)")
	flags.StringVar(&opts.kubeconfig, "kubeconfig", "../bin/local/kubeconfig", "Where to write the kubeconfig for the cluster administrator")
	flags.StringVar(&opts.approver, "approver", string(localcluster.ApproverCertManager),
		fmt.Sprintf("Who approves CertificateRequests, one of %v: cert-manager's approver (approves all), approver-policy (CertificateRequestPolicies decide; cert-manager runs without its approver) or none", localcluster.Approvers()))
	flags.StringVar(&opts.nodes, "nodes", "node-1", "Comma-separated names of the nodes to run: each runs the kubelet's pod certificate code for the pods bound to it (empty: none)")
	flags.StringVar(&opts.nodesDir, "nodes-dir", "../bin/local/nodes", "Where each node's directory appears as <name>, holding pods/<pod UID>/volumes/kubernetes.io~projected/<volume> as under a kubelet's root")
	flags.IntVar(&opts.verbosity, "v", 0, "Log verbosity; 1 adds debug logs")
	_ = flags.Parse(os.Args[1:]) // ExitOnError: Parse exits on a bad flag

	log := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(opts.verbosity)))
	// client-go and controller-runtime log through these process-wide loggers.
	klog.SetLogger(log)
	ctrl.SetLogger(log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, opts); err != nil {
		log.Error(err, "Local control plane failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, log logr.Logger, opts options) (err error) {
	binDir, err := filepath.Abs(opts.binDir)
	if err != nil {
		return err
	}
	kubeconfig, err := filepath.Abs(opts.kubeconfig)
	if err != nil {
		return err
	}
	approver, err := localcluster.ParseApprover(opts.approver)
	if err != nil {
		return fmt.Errorf("--approver: %w", err)
	}

	cluster, err := localcluster.Start(ctx, localcluster.Options{
		BinDir:   binDir,
		Log:      log,
		Approver: approver,
		Extra:    []localcluster.Runner{localcluster.PQIssuer(localcluster.DefaultClusterResourceNamespace)},
	})
	if err != nil {
		return err
	}
	defer func() {
		// The kubeconfig's credentials die with the cluster.
		err = errors.Join(err, cluster.Stop(), removeIfExists(kubeconfig))
	}()

	if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfig, cluster.KubeConfig(), 0o600); err != nil {
		return err
	}

	nodeLines, links, err := startNodes(ctx, cluster, opts)
	defer func() {
		for _, l := range links { // they would point into the removed cluster directory
			err = errors.Join(err, removeIfExists(l))
		}
	}()
	if err != nil {
		return err
	}

	kubectl := filepath.Join(binDir, "kubectl")
	fmt.Printf(`
Local control plane is running: kube-apiserver %s
cert-manager (Certificate pipeline, SelfSigned and CA issuers, gateway-shim), trust-manager and
pq-issuer (--cluster-resource-namespace=%s) run in this process.
%s
%s
  %s --kubeconfig %s get crds
  export KUBECONFIG=%s

Press Ctrl-C to stop it.
`, cluster.Config().Host, localcluster.DefaultClusterResourceNamespace, approverLine(approver), nodeLines, kubectl, kubeconfig, kubeconfig)

	<-ctx.Done()
	log.Info("Shutting down")
	return nil
}

// startNodes starts the nodes opts names and links each one's directory into opts.nodesDir; it
// returns what to tell the user about them, and the links.
func startNodes(ctx context.Context, cluster *localcluster.Cluster, opts options) (lines string, links []string, err error) {
	if opts.nodes == "" {
		return "", nil, nil
	}
	dir, err := filepath.Abs(opts.nodesDir)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	for name := range strings.SplitSeq(opts.nodes, ",") {
		node, err := cluster.StartNode(ctx, name)
		if err != nil {
			return "", links, err
		}
		link := filepath.Join(dir, name)
		if err := removeIfExists(link); err != nil {
			return "", links, err
		}
		if err := os.Symlink(node.Dir(), link); err != nil {
			return "", links, err
		}
		links = append(links, link)
		lines += fmt.Sprintf("Node %s (no containers) writes the podCertificate and clusterTrustBundle volumes of the pods bound\nto it under %s.\n", name, link)
	}
	return lines, links, nil
}

// approverLine says who approves CertificateRequests.
func approverLine(approver localcluster.Approver) string {
	switch approver {
	case localcluster.ApproverPolicy:
		return "approver-policy (its own process) approves CertificateRequests that a CertificateRequestPolicy allows;\ncert-manager runs without its approver."
	case localcluster.ApproverNone:
		return "Nothing approves CertificateRequests: approve or deny them yourself."
	default:
		return "cert-manager's approver approves every CertificateRequest."
	}
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

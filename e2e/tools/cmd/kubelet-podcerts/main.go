// Command kubelet-podcerts is the part of a kubelet that fills the podCertificate and
// clusterTrustBundle sources of a pod's projected volumes. The local control plane runs no
// kubelet, so it runs this in its place. It uses the kubelet's own code:
// k8s.io/kubernetes/pkg/kubelet/podcertificate's IssuingManager creates the PodCertificateRequests,
// refreshes them and raises the pod events, pkg/kubelet/clustertrustbundle's manager reads the
// trust bundles, and pkg/volume/util's AtomicWriter writes each volume where the kubelet would:
//
//	<dir>/pods/<pod UID>/volumes/kubernetes.io~projected/<volume name>/
//
// It authenticates as system:node:<node-name> with --kubeconfig, so the Node authorizer and the
// NodeRestriction admission plugin treat it as they treat a kubelet. It registers its Node and
// serves every pod whose spec.nodeName names it. The pods' containers never run.
//
// The PodCertificateRequest manager reads the time from a fake clock. The clock starts at the
// real time and moves only when told to, so a test can reach a certificate's refresh time without
// waiting for it. Signers keep the real time, because kube-apiserver checks an issued
// certificate's notBefore against its own clock. The control endpoint (--control-address) writes
// the address it is bound to into --control-address-file once it listens, and serves:
//
//	GET  /healthz        200 once the informers have synced, 503 before
//	POST /step?by=<d>    moves the clock forward by the Go duration d (24h, 90m) and answers with
//	                     the clock's new time, RFC 3339
//
// It logs JSON lines to stderr and stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/clustertrustbundle"
	"k8s.io/kubernetes/pkg/kubelet/podcertificate"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/pq-issuer/pq-issuer/e2e/tools/internal/jsonlog"
)

const (
	// The kubelet sizes its ClusterTrustBundle cache at twice its pod limit (110 by default)
	// and keeps entries for 5 minutes.
	trustBundleCacheSize = 2 * 110
	trustBundleCacheTTL  = 5 * time.Minute
)

type options struct {
	kubeconfig         string
	nodeName           string
	dir                string
	controlAddress     string
	controlAddressFile string
	syncInterval       time.Duration
	verbosity          int
}

func parseFlags(args []string) (options, error) {
	var opts options
	flags := flag.NewFlagSet("kubelet-podcerts", flag.ContinueOnError)
	flags.StringVar(&opts.kubeconfig, "kubeconfig", "", "Kubeconfig of the node's user: system:node:<node-name> in group system:nodes (required)")
	flags.StringVar(&opts.nodeName, "node-name", "", "Name of the Node to register and serve (required)")
	flags.StringVar(&opts.dir, "dir", "", "Directory for the pods' volumes, like the kubelet's --root-dir (required)")
	flags.StringVar(&opts.controlAddress, "control-address", "127.0.0.1:0", "host:port of the control endpoint; port 0 picks a free port")
	flags.StringVar(&opts.controlAddressFile, "control-address-file", "", "File to write the control endpoint's host:port to once it listens")
	flags.DurationVar(&opts.syncInterval, "sync-interval", time.Second, "How often to bring the volumes up to date")
	flags.IntVar(&opts.verbosity, "v", 0, "Log verbosity (logr's V levels)")
	if err := flags.Parse(args); err != nil {
		return opts, err
	}
	for name, value := range map[string]string{"kubeconfig": opts.kubeconfig, "node-name": opts.nodeName, "dir": opts.dir} {
		if value == "" {
			return opts, fmt.Errorf("--%s is required", name)
		}
	}
	if opts.syncInterval <= 0 {
		return opts, fmt.Errorf("--sync-interval=%s: must be positive", opts.syncInterval)
	}
	return opts, nil
}

func main() { os.Exit(runMain()) }

func runMain() int {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubelet-podcerts:", err)
		return 2
	}
	log, err := jsonlog.New(opts.verbosity)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubelet-podcerts: setting up logging:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(klog.NewContext(ctx, log), opts); err != nil {
		log.Error(err, "Node stopped with an error", "node", opts.nodeName)
		return 1
	}
	return 0
}

func run(ctx context.Context, opts options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := klog.FromContext(ctx).WithValues("node", opts.nodeName)
	ctx = klog.NewContext(ctx, log)

	cfg, err := clientcmd.BuildConfigFromFlags("", opts.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading --kubeconfig=%s: %w", opts.kubeconfig, err)
	}
	cfg.UserAgent = "kubelet-podcerts/" + opts.nodeName
	// The kubelet's own defaults (--kube-api-qps, --kube-api-burst). client-go's, 5 and 10, would
	// let a node create a PodCertificateRequest only every 400ms: it also reads the pod's service
	// account for each.
	cfg.QPS, cfg.Burst = 50, 100
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a client for %s: %w", cfg.Host, err)
	}
	node, err := registerNode(ctx, kc, opts.nodeName)
	if err != nil {
		return err
	}
	log.Info("Node registered", "uid", node.UID)

	// As the kubelet and upstream's integration test of the manager do: pods and
	// PodCertificateRequests bound to this node, this node's Node (the Node authorizer allows
	// nothing wider) and every ClusterTrustBundle.
	onNode := informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", opts.nodeName).String()
	}))
	thisNode := informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", opts.nodeName).String()
	}))
	allBundles := informers.NewSharedInformerFactory(kc, 0)
	factories := []informers.SharedInformerFactory{onNode, thisNode, allBundles}

	podInformer := onNode.Core().V1().Pods().Informer()
	pods, err := newPodManager(podInformer)
	if err != nil {
		return err
	}

	// The manager raises Warning events on pods (Denied, Failed, CertificateOverdueForRefresh,
	// CertificateExpired); they go to the API server like the kubelet's, and into the log.
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartStructuredLogging(0)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kc.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: opts.nodeName})

	clock := testingclock.NewFakeClock(time.Now())
	certs := podcertificate.NewIssuingManager(kc, pods, recorder,
		onNode.Certificates().V1().PodCertificateRequests(), thisNode.Core().V1().Nodes(),
		types.NodeName(opts.nodeName), clock)
	bundles, err := clustertrustbundle.NewGAInformerManager(ctx, allBundles, trustBundleCacheSize, trustBundleCacheTTL)
	if err != nil {
		return fmt.Errorf("creating the ClusterTrustBundle manager: %w", err)
	}

	// What the kubelet's pod workers tell the manager: a pod arrived or changed, or is gone.
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { certs.TrackPod(ctx, obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { certs.TrackPod(ctx, obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				certs.ForgetPod(ctx, pod)
			}
		},
	}); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}

	ctl := &control{log: log, clock: clock, pods: pods, certs: certs}
	serveErr, err := ctl.serve(ctx, opts.controlAddress, opts.controlAddressFile)
	if err != nil {
		return err
	}

	for _, factory := range factories {
		factory.Start(ctx.Done())
	}
	for _, factory := range factories {
		for typ, synced := range factory.WaitForCacheSync(ctx.Done()) {
			if !synced {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("the %v informer did not sync", typ)
			}
		}
	}
	ctl.synced.Store(true)
	log.Info("Informers synced, serving pods", "dir", opts.dir)

	go certs.Run(ctx)
	volumes := newVolumeWriter(opts.dir, pods, certs, bundles, func(ctx context.Context, pod *corev1.Pod) error {
		return finishPodDeletion(ctx, kc, pod)
	})
	volumesDone := make(chan struct{})
	go func() {
		defer close(volumesDone)
		wait.UntilWithContext(ctx, volumes.sync, opts.syncInterval)
	}()

	select {
	case <-ctx.Done():
		err = nil
		log.Info("Stopping")
	case err = <-serveErr:
		err = fmt.Errorf("serving the control endpoint: %w", err)
	}
	// A volume write in progress completes, so no half-made data directory is left behind.
	cancel()
	<-volumesDone
	return err
}

// registerNode gets the Node, or creates it as the kubelet registers itself: the Node authorizer
// lets a node create its own Node, and NodeRestriction lets it set these labels.
func registerNode(ctx context.Context, kc kubernetes.Interface, name string) (*corev1.Node, error) {
	node, err := kc.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return node, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("getting Node %s: %w", name, err)
	}
	node, err = kc.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				corev1.LabelHostname:   name,
				corev1.LabelOSStable:   runtime.GOOS,
				corev1.LabelArchStable: runtime.GOARCH,
			},
		},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		node, err = kc.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		if apierrors.IsForbidden(err) {
			err = errors.Join(err, fmt.Errorf("the kubeconfig must authenticate as system:node:%s in group system:nodes, and kube-apiserver must run with --authorization-mode=Node,RBAC", name))
		}
		return nil, fmt.Errorf("registering Node %s: %w", name, err)
	}
	return node, nil
}

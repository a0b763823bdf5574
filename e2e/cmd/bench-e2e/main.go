// Command bench-e2e measures issuance on one local control plane, with pq-issuer (an ML-DSA-65
// PQClusterIssuer, the pq-issuer binary as its own process) against a reference, in alternating
// batches so that machine noise hits both, and writes the figures and their ratios as Markdown.
// `make bench-e2e` runs it. In -mode certificates it issues N cert-manager Certificates through
// pq-issuer and N through cert-manager's built-in CA ClusterIssuer (ECDSA P-256 CA); in -mode pods
// (pods.go) it creates N pods whose podCertificate volume names pq-issuer and N whose volume names
// Kubernetes' in-tree reference signer, and the node's kubelet code asks each for a certificate.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

type options struct {
	mode       string
	n, batch   int
	nodes      int // -mode pods: node processes the pods are spread over
	binDir     string
	out        string
	profile    string // CPU profile of pq-issuer during one of its batches
	workers    int    // pq-issuer --max-concurrent-reconciles
	clientsQPS float32
}

// The modes: what is issued.
const (
	modeCertificates = "certificates"
	modePods         = "pods"
)

// The issuers under test: pq-issuer, and the reference of each mode.
const (
	pq  = "pq-issuer"
	ca  = "ca-issuer"
	ref = "reference"
)

func main() {
	var opts options
	flags := flag.NewFlagSet("bench-e2e", flag.ExitOnError)
	flags.StringVar(&opts.mode, "mode", modeCertificates, "certificates: cert-manager Certificates through pq-issuer and cert-manager's CA issuer; pods: pods' PodCertificateRequests through pq-issuer and Kubernetes' reference signer")
	flags.IntVar(&opts.n, "n", 1000, "Certificates (or pods) per issuer")
	flags.IntVar(&opts.batch, "batch", 100, "Certificates (or pods) per batch; batches alternate between the issuers")
	flags.IntVar(&opts.nodes, "nodes", 5, "-mode pods: node processes (the kubelet's pod certificate code), each serving an equal share of every batch's pods; with fewer, the nodes' one-at-a-time requests, not the signers, set the pace")
	flags.StringVar(&opts.binDir, "bin-dir", "../bin", "Directory with kube-apiserver, etcd, kubectl (make tools), pq-issuer, kubectl-pq (make build), kubelet-podcerts and reference-signer (make kubelet-podcerts)")
	flags.StringVar(&opts.out, "out", "../docs/benchmarks.md", "Markdown report to write")
	flags.StringVar(&opts.profile, "profile", "../bin/bench/pq-issuer.cpu.pprof", "Where to write a CPU profile of pq-issuer during its last batch; empty: none")
	flags.IntVar(&opts.workers, "workers", 5, "pq-issuer --max-concurrent-reconciles (cert-manager runs 5 workers per controller)")
	qps := flags.Float64("cert-manager-qps", 1000, "cert-manager's --kube-api-qps (its default, 20, would make both issuers wait on cert-manager's client)")
	_ = flags.Parse(os.Args[1:])
	opts.clientsQPS = float32(*qps)

	log := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(-1)))
	klog.SetLogger(log)
	ctrl.SetLogger(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

// bench is what both modes run on: one control plane, the bench's client, and pq-issuer as its
// own process, so its CPU and memory are its own, with a Ready ML-DSA-65 PQClusterIssuer.
type bench struct {
	opts       options
	binDir     string
	cluster    *localcluster.Cluster
	c          client.Client
	kubeconfig string
	crNS       string
	pqPid      int
	pprofAddr  string
}

func run(ctx context.Context, opts options) error {
	if opts.n < 1 || opts.batch < 1 || opts.n%opts.batch != 0 {
		return fmt.Errorf("-n %d must be a positive multiple of -batch %d", opts.n, opts.batch)
	}
	if opts.mode != modeCertificates && opts.mode != modePods {
		return fmt.Errorf("-mode %q: use %s or %s", opts.mode, modeCertificates, modePods)
	}
	if opts.mode == modePods && (opts.nodes < 1 || opts.batch%opts.nodes != 0) {
		return fmt.Errorf("-nodes %d must be positive and divide -batch %d, so that every node gets as many pods of each batch", opts.nodes, opts.batch)
	}
	binDir, err := filepath.Abs(opts.binDir)
	if err != nil {
		return err
	}
	for _, tool := range []string{"pq-issuer", "kubectl-pq"} {
		if _, err := os.Stat(filepath.Join(binDir, tool)); err != nil {
			return fmt.Errorf("%s is missing in %s: run `make build`", tool, binDir)
		}
	}

	fmt.Printf("Starting the local control plane (cert-manager's controllers at %g QPS, as --kube-api-qps)\n", opts.clientsQPS)
	cluster, err := localcluster.Start(ctx, localcluster.Options{
		BinDir: binDir, Log: klog.Background(),
		CertManagerQPS: opts.clientsQPS, CertManagerBurst: int(2 * opts.clientsQPS),
	})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	work, err := os.MkdirTemp("", "bench-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	kubeconfig := filepath.Join(work, "kubeconfig")
	if err := os.WriteFile(kubeconfig, cluster.KubeConfig(), 0o600); err != nil {
		return err
	}
	c, err := client.New(benchConfig(cluster), client.Options{Scheme: localcluster.NewScheme()})
	if err != nil {
		return err
	}
	b := &bench{opts: opts, binDir: binDir, cluster: cluster, c: c, kubeconfig: kubeconfig, crNS: cluster.ClusterResourceNamespace()}

	if err := setUpPQIssuer(ctx, c, binDir, work, kubeconfig, b.crNS); err != nil {
		return err
	}
	if b.pprofAddr, err = freeAddr(); err != nil {
		return err
	}
	proc, err := startPQIssuer(binDir, work, kubeconfig, b.crNS, b.pprofAddr, opts.workers)
	if err != nil {
		return err
	}
	defer func() { _ = proc.Process.Kill(); _ = proc.Wait() }()
	b.pqPid = proc.Process.Pid
	if err := waitReady(ctx, "PQClusterIssuer "+pq, func() bool {
		pqi := &v1alpha1.PQClusterIssuer{}
		return c.Get(ctx, client.ObjectKey{Name: pq}, pqi) == nil &&
			meta.IsStatusConditionTrue(pqi.Status.Conditions, v1alpha1.ConditionReady)
	}); err != nil {
		return fmt.Errorf("%w (pq-issuer log: %s)", err, filepath.Join(work, "pq-issuer.log"))
	}
	if opts.mode == modePods {
		return b.runPods(ctx)
	}
	return b.runCertificates(ctx)
}

// runCertificates issues the Certificates through pq-issuer and cert-manager's CA issuer.
func (b *bench) runCertificates(ctx context.Context) error {
	if err := setUpCAIssuer(ctx, b.c, b.crNS); err != nil {
		return err
	}
	if err := waitReady(ctx, "ClusterIssuer "+ca, func() bool {
		cai := &cmapi.ClusterIssuer{}
		if b.c.Get(ctx, client.ObjectKey{Name: ca}, cai) != nil {
			return false
		}
		return slices.ContainsFunc(cai.Status.Conditions, func(cond cmapi.IssuerCondition) bool {
			return cond.Type == cmapi.IssuerConditionReady && cond.Status == cmmeta.ConditionTrue
		})
	}); err != nil {
		return err
	}

	w, err := newWatcher(ctx, b.cluster)
	if err != nil {
		return err
	}
	res := map[string]*result{pq: {}, ca: {}}
	procs := processes{rolePQIssuer: {b.pqPid}, roleBench: {os.Getpid()}}
	started := time.Now()
	err = b.alternate(ca, func(issuer string, batch int) error {
		return runBatch(ctx, b.c, w, res[issuer], issuer, batch, b.opts.batch, procs)
	}, func(batch, batches int) {
		fmt.Printf("batch %d/%d: pq-issuer %.1f/s, CA issuer %.1f/s so far\n", batch+1, batches, res[pq].rate(), res[ca].rate())
	})
	if err != nil {
		return err
	}
	total := time.Since(started)
	pqRSS, err := peakRSS(b.pqPid)
	if err != nil {
		return err
	}
	selfRSS, err := peakRSS(os.Getpid())
	if err != nil {
		return err
	}
	section := markdown(b.opts, res, w, total, pqRSS, selfRSS)
	fmt.Print(section)
	return writeSection(b.opts.out, sectionKey{modeCertificates, b.opts.n}, section)
}

// alternate runs the batches of pq-issuer and other: pq-issuer first in even batches, other first
// in odd ones, so that neither always runs on the machine the other just warmed or loaded. It
// profiles pq-issuer during its last batch, and calls progress after each pair.
func (b *bench) alternate(other string, batch func(issuer string, b int) error, progress func(b, batches int)) error {
	batches := b.opts.n / b.opts.batch
	for i := range batches {
		order := []string{pq, other}
		if i%2 == 1 {
			order = []string{other, pq}
		}
		for _, issuer := range order {
			var profile func() error
			if issuer == pq && i == batches-1 && b.opts.profile != "" {
				profile = cpuProfile(b.pprofAddr, b.opts.profile)
			}
			if err := batch(issuer, i); err != nil {
				return err
			}
			if profile != nil {
				if err := profile(); err != nil {
					return err
				}
			}
		}
		progress(i, batches)
	}
	return nil
}

const reportTitle = "# Issuance benchmarks: pq-issuer vs cert-manager's CA issuer, and vs Kubernetes' reference pod certificate signer\n\n" +
	"Each section is written by `make bench-e2e N=<n>` (cert-manager Certificates; sections \"N = <n>\") or `make bench-e2e MODE=pods N=<n>` " +
	"(pods' PodCertificateRequests; sections \"Pod certificates, N = <n>\"), both `e2e/cmd/bench-e2e`, which replace the section of their mode and N and keep the others. " +
	"pq-issuer runs with the binary's own memory settings (GOGC 50, no GOMEMLIMIT: the chart adds one only from a container memory limit); " +
	"peak RSS is the kernel's VmHWM of its process, which includes about 27 MiB of the binary's mapped code.\n"

// sectionKey names a section of the report: a run's mode and N. Sections are in the order of
// modeOrder, then of N.
type sectionKey struct {
	mode string
	n    int
}

var modeOrder = []string{modeCertificates, modePods}

// sectionHeadings are the headings of each mode's sections, formatted with N.
var sectionHeadings = map[string]string{modeCertificates: "## N = %d", modePods: "## Pod certificates, N = %d"}

func (k sectionKey) heading() string { return fmt.Sprintf(sectionHeadings[k.mode], k.n) }

// parseHeading is the key of the section with this heading, if heading wrote it.
func parseHeading(heading string) (sectionKey, bool) {
	for _, mode := range modeOrder {
		if rest, ok := strings.CutPrefix(heading, strings.TrimSuffix(sectionHeadings[mode], "%d")); ok {
			if n, err := strconv.Atoi(rest); err == nil {
				return sectionKey{mode, n}, true
			}
		}
	}
	return sectionKey{}, false
}

// writeSection puts section, the report of the run key, into the Markdown file at path in place
// of an earlier run's with the same key, keeping the sections of other modes and N.
func writeSection(path string, key sectionKey, section string) error {
	sections := map[sectionKey]string{key: section}
	if old, err := os.ReadFile(path); err == nil {
		for _, part := range strings.Split(string(old), "\n## ")[1:] {
			heading, _, _ := strings.Cut(part, "\n")
			if k, ok := parseHeading("## " + heading); ok && k != key {
				sections[k] = "## " + strings.TrimRight(part, "\n") + "\n"
			}
		}
	}
	keys := slices.SortedFunc(maps.Keys(sections), func(a, b sectionKey) int {
		if c := slices.Index(modeOrder, a.mode) - slices.Index(modeOrder, b.mode); c != 0 {
			return c
		}
		return a.n - b.n
	})
	var b strings.Builder
	b.WriteString(reportTitle)
	for _, k := range keys {
		b.WriteString("\n" + sections[k])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// result is one issuer's batches: what they issued, the time spent, and the CPU seconds of the
// processes the bench watches, by role.
type result struct {
	names []string
	wall  time.Duration
	cpu   map[string]time.Duration
}

func (r *result) rate() float64 {
	if r.wall == 0 {
		return 0
	}
	return float64(len(r.names)) / r.wall.Seconds()
}

// The roles of processes whose CPU time a batch records.
const (
	rolePQIssuer  = "pq-issuer"
	roleBench     = "bench"            // the control-plane process: cert-manager's controllers, the bench's client and informers
	roleReference = "reference-signer" // -mode pods
	roleNodes     = "nodes"            // -mode pods
	roleAPIServer = "kube-apiserver and etcd"
)

// processes are the PIDs of each role.
type processes map[string][]int

// cpuTimes is the CPU time each role's processes have used so far.
func (p processes) cpuTimes() (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for role, pids := range p {
		for _, pid := range pids {
			t, err := cpuTime(pid)
			if err != nil {
				return nil, fmt.Errorf("reading the CPU time of the %s process %d: %w", role, pid, err)
			}
			out[role] += t
		}
	}
	return out, nil
}

// measure runs batch, and adds its time to res.wall and the CPU time the processes used meanwhile
// to res.cpu.
func (p processes) measure(res *result, batch func() error) error {
	before, err := p.cpuTimes()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := batch(); err != nil {
		return err
	}
	res.wall += time.Since(start)
	after, err := p.cpuTimes()
	if err != nil {
		return err
	}
	if res.cpu == nil {
		res.cpu = map[string]time.Duration{}
	}
	for role, t := range after {
		res.cpu[role] += t - before[role]
	}
	return nil
}

// setUpPQIssuer creates the PQClusterIssuer with an ML-DSA-65 root made by kubectl-pq, as a user
// would.
func setUpPQIssuer(ctx context.Context, c client.Client, binDir, work, kubeconfig, crNS string) error {
	root := filepath.Join(work, "root")
	if out, err := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl-pq"), "ca", "create", "--algorithm", "ML-DSA-65",
		"--subject", "CN=Bench ML-DSA-65 Root", "--duration", "8760h", "--out-dir", root).CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl-pq ca create: %v\n%s", err, out)
	}
	secret, err := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl-pq"), "ca", "secret", "--ca-dir", root, "--name", "bench-pq", "--namespace", crNS).Output()
	if err != nil {
		return fmt.Errorf("kubectl-pq ca secret: %v", err)
	}
	apply := exec.CommandContext(ctx, filepath.Join(binDir, "kubectl"), "--kubeconfig", kubeconfig, "apply", "-f", "-")
	apply.Stdin = bytes.NewReader(secret)
	if out, err := apply.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl apply: %v\n%s", err, out)
	}
	return c.Create(ctx, &v1alpha1.PQClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: pq}, Spec: v1alpha1.IssuerSpec{CASecretName: "bench-pq"}})
}

// setUpCAIssuer creates cert-manager's CA ClusterIssuer with an ECDSA P-256 root.
func setUpCAIssuer(ctx context.Context, c client.Client, crNS string) error {
	certPEM, keyPEM, err := ecdsaRoot()
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: crNS, Name: "bench-ca"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}); err != nil {
		return err
	}
	return c.Create(ctx, &cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: ca},
		Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "bench-ca"}}}})
}

func ecdsaRoot() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench ECDSA P-256 Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

func startPQIssuer(binDir, work, kubeconfig, crNS, pprofAddr string, workers int) (*exec.Cmd, error) {
	logFile, err := os.Create(filepath.Join(work, "pq-issuer.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(binDir, "pq-issuer"), "--leader-elect=false", "--cluster-resource-namespace="+crNS,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--pprof-bind-address="+pprofAddr,
		"--max-concurrent-reconciles="+strconv.Itoa(workers), "--zap-log-level=error")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	return cmd, cmd.Start()
}

// waitReady polls ready until it holds, for at most a minute.
func waitReady(ctx context.Context, what string, ready func() bool) error {
	deadline := time.Now().Add(time.Minute)
	for !ready() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not become Ready within a minute", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// watcher records, from informers, when each CertificateRequest was first seen and turned Ready,
// and which Certificates are Ready.
type watcher struct {
	mu        sync.Mutex
	crSeen    map[string]time.Time // by the Certificate's name: one request each
	crReady   map[string]time.Time
	certReady map[string]bool
}

// benchConfig is the administrator's config without client-side rate limits: the bench's own
// client and informers must not be what limits.
func benchConfig(cluster *localcluster.Cluster) *rest.Config {
	cfg := cluster.Config()
	cfg.QPS, cfg.Burst = -1, 0
	return cfg
}

func newWatcher(ctx context.Context, cluster *localcluster.Cluster) (*watcher, error) {
	w := &watcher{crSeen: map[string]time.Time{}, crReady: map[string]time.Time{}, certReady: map[string]bool{}}
	informers, err := cache.New(benchConfig(cluster), cache.Options{Scheme: localcluster.NewScheme()})
	if err != nil {
		return nil, err
	}
	crInformer, err := informers.GetInformer(ctx, &cmapi.CertificateRequest{})
	if err != nil {
		return nil, err
	}
	onCR := func(obj any) {
		cr, ok := obj.(*cmapi.CertificateRequest)
		if !ok {
			return
		}
		key := cr.Namespace + "/" + cr.Annotations[cmapi.CertificateNameKey]
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.crSeen[key]; !ok {
			w.crSeen[key] = now
		}
		for _, cond := range cr.Status.Conditions {
			if cond.Type == cmapi.CertificateRequestConditionReady && cond.Status == cmmeta.ConditionTrue {
				if _, ok := w.crReady[key]; !ok {
					w.crReady[key] = now
				}
			}
		}
	}
	if _, err := crInformer.AddEventHandler(handlerFuncs(onCR)); err != nil {
		return nil, err
	}
	certInformer, err := informers.GetInformer(ctx, &cmapi.Certificate{})
	if err != nil {
		return nil, err
	}
	onCert := func(obj any) {
		crt, ok := obj.(*cmapi.Certificate)
		if !ok {
			return
		}
		for _, cond := range crt.Status.Conditions {
			if cond.Type == cmapi.CertificateConditionReady && cond.Status == cmmeta.ConditionTrue {
				w.mu.Lock()
				w.certReady[crt.Namespace+"/"+crt.Name] = true
				w.mu.Unlock()
			}
		}
	}
	if _, err := certInformer.AddEventHandler(handlerFuncs(onCert)); err != nil {
		return nil, err
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		return nil, errors.New("the bench's informers did not sync")
	}
	return w, nil
}

// runBatch creates size Certificates for issuer in a namespace of their own and waits until all are
// Ready. One namespace per batch because cert-manager's Certificate controllers list every
// CertificateRequest and Certificate of the namespace on each reconcile
// (pkg/controller/certificates/listers.go): with all N in one namespace, that O(N) scan, not either
// issuer, sets the pace, and a real cluster spreads its workloads over namespaces.
func runBatch(ctx context.Context, c client.Client, w *watcher, res *result, issuer string, b, size int, procs processes) error {
	ns := fmt.Sprintf("%s-b%d", issuer, b)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	names := make([]string, size)
	for i := range size {
		names[i] = fmt.Sprintf("%s/c%d", ns, i)
	}
	err := procs.measure(res, func() error {
		if err := createAll(ctx, c, size, func(i int) client.Object { return certificate(issuer, ns, fmt.Sprintf("c%d", i)) }); err != nil {
			return err
		}
		return waitBatch(ctx, fmt.Sprintf("batch %d of %s", b, issuer), "Certificates Ready", size, func() (int, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			ready := 0
			for _, n := range names {
				if w.certReady[n] {
					ready++
				}
			}
			return ready, nil
		})
	})
	if err != nil {
		return err
	}
	res.names = append(res.names, names...)
	return nil
}

// createAll creates the objects object(0) to object(n-1), 32 at a time, as a controller or a
// deployment tool would.
func createAll(ctx context.Context, c client.Client, n int, object func(i int) client.Object) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- c.Create(ctx, object(i))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitBatch polls done, which counts what is finished or fails for good, until it reaches size,
// for at most 10 minutes.
func waitBatch(ctx context.Context, batch, what string, size int, done func() (int, error)) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		n, err := done()
		if err != nil {
			return fmt.Errorf("%s: %w", batch, err)
		}
		if n == size {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d of %d %s after 10 minutes", batch, n, size, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func certificate(issuer, ns, name string) *cmapi.Certificate {
	issuerRef := cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "PQClusterIssuer", Name: pq}
	if issuer == ca {
		issuerRef = cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "ClusterIssuer", Name: ca}
	}
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cmapi.CertificateSpec{
			SecretName: name, DNSNames: []string{name + "." + ns + ".svc"},
			Duration:   &metav1.Duration{Duration: 24 * time.Hour},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:  issuerRef,
		},
	}
}

// latencies are the CertificateRequest first-seen → Ready times of names.
func (w *watcher) latencies(names []string) []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []time.Duration
	for _, n := range names {
		seen, ok1 := w.crSeen[n]
		ready, ok2 := w.crReady[n]
		if ok1 && ok2 {
			out = append(out, ready.Sub(seen))
		}
	}
	slices.Sort(out)
	return out
}

// handlerFuncs calls f with the object of every add and update.
func handlerFuncs(f func(any)) toolscache.ResourceEventHandlerFuncs {
	return toolscache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, obj any) { f(obj) }}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// cpuTime is the user+system CPU time of a process, from /proc.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may contain spaces.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

// peakRSS is a process's peak resident set size (VmHWM), in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmHWM in " + fmt.Sprintf("/proc/%d/status", pid))
}

// cpuProfile starts a 10 s CPU profile of pq-issuer and returns the function that waits for it
// and writes it to path.
func cpuProfile(addr, path string) func() error {
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=10")
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			done <- err
			return
		}
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		done <- err
	}()
	return func() error { return <-done }
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func markdown(opts options, res map[string]*result, w *watcher, total time.Duration, pqRSS, selfRSS int64) string {
	var b strings.Builder
	cpu := cpuModel()
	lat := map[string][]time.Duration{pq: w.latencies(res[pq].names), ca: w.latencies(res[ca].names)}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Fprintf(&b, "%s\n\n", sectionKey{modeCertificates, opts.n}.heading())
	fmt.Fprintf(&b, "`make bench-e2e N=%d`, %s. Machine: %s, %d CPUs, %s.\n\n",
		opts.n, time.Now().UTC().Format("2006-01-02 15:04 MST"), cpu, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(&b, "One local control plane (kube-apiserver v1.37.2 and etcd built from Go modules; cert-manager v1.21.2's controllers in the bench process with `--kube-api-qps=%g`). "+
		"N = %d Certificates per issuer (ECDSA P-256 keys, 24h), in batches of %d, each batch in a namespace of its own, that alternate between the issuers "+
		"(pq-issuer first in even batches, the CA issuer first in odd ones); all Certificates stay in the cluster until the end. pq-issuer is the `pq-issuer` binary, its own process, with "+
		"`--max-concurrent-reconciles=%d`; cert-manager runs 5 workers per controller. Latency is from the bench's informer first seeing a "+
		"CertificateRequest to seeing it Ready.\n\n", opts.clientsQPS, opts.n, opts.batch, opts.workers)
	fmt.Fprintf(&b, "| | pq-issuer (ML-DSA-65 PQClusterIssuer) | cert-manager CA ClusterIssuer (ECDSA P-256) | ratio pq-issuer / CA issuer |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| Certificates Ready | %d | %d | |\n", len(res[pq].names), len(res[ca].names))
	fmt.Fprintf(&b, "| wall time to all Ready (sum of its batches) | %.1f s | %.1f s | %s |\n", res[pq].wall.Seconds(), res[ca].wall.Seconds(), ratio(res[pq].wall.Seconds(), res[ca].wall.Seconds()))
	fmt.Fprintf(&b, "| **certificates/second** | **%.1f** | **%.1f** | **%s** |\n", res[pq].rate(), res[ca].rate(), ratio(res[pq].rate(), res[ca].rate()))
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}} {
		a, c := percentile(lat[pq], p.q), percentile(lat[ca], p.q)
		fmt.Fprintf(&b, "| CertificateRequest created → Ready, %s | %s | %s | %s |\n", p.name, ms(a), ms(c), ratio(a.Seconds(), c.Seconds()))
	}
	fmt.Fprintf(&b, "| pq-issuer process CPU during the batches | %.1f s | %.1f s (it caches no Secret nor request of the CA issuer's) | |\n", res[pq].cpu[rolePQIssuer].Seconds(), res[ca].cpu[rolePQIssuer].Seconds())
	fmt.Fprintf(&b, "| control-plane process CPU during the batches (all cert-manager controllers, the bench's client) | %.1f s | %.1f s | |\n", res[pq].cpu[roleBench].Seconds(), res[ca].cpu[roleBench].Seconds())
	fmt.Fprintf(&b, "| peak RSS | pq-issuer process: %.1f MiB | control-plane process (cert-manager, trust-manager, bench): %.1f MiB | |\n\n",
		float64(pqRSS)/(1<<20), float64(selfRSS)/(1<<20))
	fmt.Fprintf(&b, "The whole run took %.0f s. The CA issuer's signing runs inside cert-manager's process, so its own CPU and memory "+
		"cannot be separated from cert-manager's other controllers; pq-issuer's are its process's alone, including its cache: its own "+
		"%d CertificateRequests (the API server filters out the CA issuer's by field selector) and the metadata of the CA Secrets (label pq-issuer.dev/ca-secret), not of the %d Secrets the Certificates fill.", total.Seconds(), opts.n, 2*opts.n)
	if opts.profile != "" {
		fmt.Fprintf(&b, " A 10 s CPU profile of pq-issuer during its last batch is in `%s` (`go tool pprof -top`).", filepath.Base(opts.profile))
	}
	b.WriteString("\n")
	return b.String()
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
		}
	}
	return "unknown CPU"
}

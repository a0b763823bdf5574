package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// The signer names of -mode pods: the PQClusterIssuer's, and the reference signer's.
const (
	pqSignerName        = "pqclusterissuers.pq-issuer.dev/" + pq
	referenceSignerName = "example.com/reference"
)

// The bench's pods (localcluster.PodWithIdentity): how many service accounts a batch's pods share,
// so that their certificates carry different SPIFFE IDs.
const (
	podServiceAccounts = 10
	// volumeWait bounds how long the volume check waits for a node to write a sampled volume; nodes
	// write every second.
	volumeWait = time.Minute
)

// signerNames maps the signers under test to their signer names.
var signerNames = map[string]string{pq: pqSignerName, ref: referenceSignerName}

// podBatch is what the volume check needs of one batch: its first pod and the node it is on.
type podBatch struct {
	pod  *corev1.Pod
	node *localcluster.Node
}

// runPods creates the pods of both signers, on nodes that run the kubelet's podcertificate manager.
func (b *bench) runPods(ctx context.Context) error {
	// A node may log that it may not read a service account ("no relationship found between
	// node"): it saw the pod before the API server's Node authorizer did, and retries, as a kubelet
	// does.
	nodes := make([]*localcluster.Node, b.opts.nodes)
	for i := range nodes {
		var err error
		if nodes[i], err = b.cluster.StartNode(ctx, fmt.Sprintf("bench-node-%d", i+1)); err != nil {
			return err
		}
	}
	if _, err := b.cluster.StartReferenceSigner(ctx, referenceSignerName); err != nil {
		return err
	}
	// The pods' volumes project the signer's ClusterTrustBundle too; pq-issuer publishes its own
	// once the issuer is Ready.
	pqBundle := strings.Replace(pqSignerName, "/", ":", 1) + ":bundle"
	if err := waitReady(ctx, "ClusterTrustBundle "+pqBundle, func() bool {
		return b.c.Get(ctx, client.ObjectKey{Name: pqBundle}, &certificatesv1.ClusterTrustBundle{}) == nil
	}); err != nil {
		return err
	}
	procs := processes{rolePQIssuer: {b.pqPid}, roleBench: {os.Getpid()}}
	for role, exes := range map[string][]string{
		roleReference: {"reference-signer"}, roleNodes: {"kubelet-podcerts"}, roleAPIServer: {"kube-apiserver", "etcd"},
	} {
		pids, err := children(exes...)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return fmt.Errorf("found no %s process among the bench's children", strings.Join(exes, " or "))
		}
		procs[role] = pids
	}
	refPid := procs[roleReference][0]

	w, err := newPCRWatcher(ctx, b.cluster)
	if err != nil {
		return err
	}
	res := map[string]*result{pq: {}, ref: {}}
	firsts := map[string][]podBatch{}
	load := loadAverage()
	started := time.Now()
	err = b.alternate(ref, func(signer string, batch int) error {
		first, err := runPodBatch(ctx, b.c, w, res[signer], signer, batch, b.opts.batch, nodes, procs)
		if err != nil {
			return err
		}
		firsts[signer] = append(firsts[signer], first)
		return nil
	}, func(batch, batches int) {
		fmt.Printf("batch %d/%d: pq-issuer %.1f/s, reference signer %.1f/s so far\n", batch+1, batches, res[pq].rate(), res[ref].rate())
	})
	if err != nil {
		return err
	}
	total := time.Since(started)
	verified := map[string]int{}
	for signer, batches := range firsts {
		for _, pb := range batches {
			if err := verifyVolume(ctx, pb, signer); err != nil {
				return err
			}
			verified[signer]++
		}
	}
	rss := map[string]int64{}
	for signer, pid := range map[string]int{pq: b.pqPid, ref: refPid} {
		if rss[signer], err = peakRSS(pid); err != nil {
			return err
		}
	}
	section := podMarkdown(b.opts, res, w, total, rss, verified, load)
	fmt.Print(section)
	return writeSection(b.opts.out, sectionKey{modePods, b.opts.n}, section)
}

// runPodBatch creates size pods for signer in a namespace of their own, spread evenly over nodes,
// and waits until each pod's PodCertificateRequest is Issued. It returns the batch's first pod.
func runPodBatch(ctx context.Context, c client.Client, w *pcrWatcher, res *result, signer string, b, size int, nodes []*localcluster.Node, procs processes) (podBatch, error) {
	ns := fmt.Sprintf("pods-%s-b%d", signer, b)
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return podBatch{}, err
	}
	// Envtest's API server runs no ServiceAccount admission plugin: the service accounts are the
	// bench's to create, before the clock starts.
	if err := createAll(ctx, c, podServiceAccounts, func(i int) client.Object {
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("sa-%d", i)}}
	}); err != nil {
		return podBatch{}, err
	}
	pods := make([]*corev1.Pod, size)
	for i := range pods {
		pods[i] = localcluster.PodWithIdentity(ns, fmt.Sprintf("p%d", i), fmt.Sprintf("sa-%d", i%podServiceAccounts), nodes[i%len(nodes)].Name(), signerNames[signer], "ECDSAP256", nil)
	}
	err := procs.measure(res, func() error {
		if err := createAll(ctx, c, size, func(i int) client.Object {
			w.podCreating(pods[i])
			return pods[i]
		}); err != nil {
			return err
		}
		return waitBatch(ctx, fmt.Sprintf("batch %d of %s", b, signer), "PodCertificateRequests Issued", size, func() (int, error) {
			return w.issued(ns)
		})
	})
	if err != nil {
		return podBatch{}, err
	}
	for _, p := range pods {
		res.names = append(res.names, p.Namespace+"/"+p.Name)
	}
	return podBatch{pod: pods[0], node: nodes[0]}, nil
}

// pcrWatcher records, from an informer, when each PodCertificateRequest was first seen and first
// seen answered, and when the bench sent each pod's create.
type pcrWatcher struct {
	mu          sync.Mutex
	byNamespace map[string]map[string]*pcrRecord // by namespace, then name
	podsCreated map[string]time.Time             // by namespace/pod name: when the bench sent its create
}

type pcrRecord struct {
	pod    string // namespace/name
	signer string
	seen   time.Time
	issued time.Time
	// refused is the Denied or Failed condition, which no batch may see.
	refused *metav1.Condition
}

func newPCRWatcher(ctx context.Context, cluster *localcluster.Cluster) (*pcrWatcher, error) {
	w := &pcrWatcher{byNamespace: map[string]map[string]*pcrRecord{}, podsCreated: map[string]time.Time{}}
	informers, err := cache.New(benchConfig(cluster), cache.Options{Scheme: localcluster.NewScheme()})
	if err != nil {
		return nil, err
	}
	informer, err := informers.GetInformer(ctx, &certificatesv1.PodCertificateRequest{})
	if err != nil {
		return nil, err
	}
	onPCR := func(obj any) {
		pcr, ok := obj.(*certificatesv1.PodCertificateRequest)
		if !ok {
			return
		}
		now := time.Now()
		w.mu.Lock()
		defer w.mu.Unlock()
		inNS := w.byNamespace[pcr.Namespace]
		if inNS == nil {
			inNS = map[string]*pcrRecord{}
			w.byNamespace[pcr.Namespace] = inNS
		}
		rec := inNS[pcr.Name]
		if rec == nil {
			rec = &pcrRecord{pod: pcr.Namespace + "/" + pcr.Spec.PodName, signer: pcr.Spec.SignerName, seen: now}
			inNS[pcr.Name] = rec
		}
		if rec.issued.IsZero() && meta.IsStatusConditionTrue(pcr.Status.Conditions, certificatesv1.PodCertificateRequestConditionTypeIssued) {
			rec.issued = now
		}
		for _, t := range []string{certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed} {
			if cond := meta.FindStatusCondition(pcr.Status.Conditions, t); cond != nil && rec.refused == nil {
				rec.refused = cond
			}
		}
	}
	if _, err := informer.AddEventHandler(handlerFuncs(onPCR)); err != nil {
		return nil, err
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		return nil, errors.New("the bench's informer did not sync")
	}
	return w, nil
}

// podCreating records that the bench is about to create pod.
func (w *pcrWatcher) podCreating(pod *corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.podsCreated[pod.Namespace+"/"+pod.Name] = time.Now()
}

// issued counts the Issued PodCertificateRequests in namespace ns, or fails on one that was Denied
// or Failed.
func (w *pcrWatcher) issued(ns string) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for name, rec := range w.byNamespace[ns] {
		if rec.refused != nil {
			return 0, fmt.Errorf("PodCertificateRequest %s/%s of pod %s is %s: %s: %s", ns, name, rec.pod, rec.refused.Type, rec.refused.Reason, rec.refused.Message)
		}
		if !rec.issued.IsZero() {
			n++
		}
	}
	return n, nil
}

// latencies are, for the PodCertificateRequests of signerName, sorted: first seen → Issued, and
// the pod's create → the request first seen, which is the node's part.
func (w *pcrWatcher) latencies(signerName string) (issue, node []time.Duration, refused int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, inNS := range w.byNamespace {
		for _, rec := range inNS {
			if rec.signer != signerName {
				continue
			}
			if rec.refused != nil {
				refused++
			}
			if !rec.issued.IsZero() {
				issue = append(issue, rec.issued.Sub(rec.seen))
			}
			if created, ok := w.podsCreated[rec.pod]; ok {
				node = append(node, rec.seen.Sub(created))
			}
		}
	}
	slices.Sort(issue)
	slices.Sort(node)
	return issue, node, refused
}

// verifyVolume waits until the node has written the volume of the batch's first pod, and checks it
// as a workload would: an ECDSA P-256 key, a chain from its certificate to the volume's trust
// bundle, the pod's SPIFFE ID, and the signature algorithm of the signer's CA.
func verifyVolume(ctx context.Context, pb podBatch, signer string) error {
	dir := pb.node.VolumeDir(pb.pod, localcluster.IdentityVolume)
	deadline := time.Now().Add(volumeWait)
	for {
		bundle, err1 := os.ReadFile(filepath.Join(dir, localcluster.CredentialBundle))
		trust, err2 := os.ReadFile(filepath.Join(dir, localcluster.TrustBundle))
		if err := errors.Join(err1, err2); err == nil {
			if err := checkCredentials(bundle, trust, pb.pod, signer); err != nil {
				return fmt.Errorf("the volume of pod %s/%s (%s): %w", pb.pod.Namespace, pb.pod.Name, dir, err)
			}
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("node %s did not write the volume of pod %s/%s within %s: %w", pb.node.Name(), pb.pod.Namespace, pb.pod.Name, volumeWait, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func checkCredentials(bundle, trust []byte, pod *corev1.Pod, signer string) error {
	block, rest := pem.Decode(bundle)
	if block == nil || block.Type != "PRIVATE KEY" {
		return fmt.Errorf("%s does not start with a PRIVATE KEY block", localcluster.CredentialBundle)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return err
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return fmt.Errorf("the key is a %T, want ECDSA P-256 (keyType ECDSAP256)", parsed)
	}
	chain, err := certificates(rest)
	if err != nil || len(chain) == 0 {
		return fmt.Errorf("the chain in %s: %d certificates, %v", localcluster.CredentialBundle, len(chain), err)
	}
	roots, err := certificates(trust)
	if err != nil || len(roots) == 0 {
		return fmt.Errorf("%s: %d certificates, %v", localcluster.TrustBundle, len(roots), err)
	}
	leaf := chain[0]
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return errors.New("the key does not match the certificate")
	}
	rootPool, intermediates := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rootPool.AddCert(r)
	}
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: rootPool, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the chain does not verify against the trust bundle: %w", err)
	}
	want := "spiffe://cluster.local/ns/" + pod.Namespace + "/sa/" + pod.Spec.ServiceAccountName
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
		return fmt.Errorf("the certificate's URIs are %v, want %s", leaf.URIs, want)
	}
	if wantAlg := map[string]string{pq: "ML-DSA-65", ref: "Ed25519"}[signer]; leaf.SignatureAlgorithm.String() != wantAlg {
		return fmt.Errorf("the certificate is signed with %s, want %s", leaf.SignatureAlgorithm, wantAlg)
	}
	return nil
}

// certificates parses a PEM bundle that holds only CERTIFICATE blocks.
func certificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return certs, nil
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("a %s block among the certificates", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
}

// children are the PIDs of this process's children that run one of the executables names.
func children(names ...string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err1 := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		stat, err2 := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err1 != nil || err2 != nil {
			continue // gone, or not ours to read
		}
		// After the command name, in parentheses: the state, then the parent's PID.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) && slices.Contains(names, filepath.Base(exe)) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// loadAverage is the machine's 1-minute load average, as /proc/loadavg has it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

func podMarkdown(opts options, res map[string]*result, w *pcrWatcher, total time.Duration, rss map[string]int64, verified map[string]int, load string) string {
	var b strings.Builder
	type figures struct {
		issue, node []time.Duration
		refused     int
	}
	fig := map[string]figures{}
	for _, signer := range []string{pq, ref} {
		issue, node, refused := w.latencies(signerNames[signer])
		fig[signer] = figures{issue, node, refused}
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	cpu := func(role string) (string, string) {
		return fmt.Sprintf("%.1f s", res[pq].cpu[role].Seconds()), fmt.Sprintf("%.1f s", res[ref].cpu[role].Seconds())
	}
	fmt.Fprintf(&b, "%s\n\n", sectionKey{modePods, opts.n}.heading())
	fmt.Fprintf(&b, "`make bench-e2e MODE=pods N=%d`, %s. Machine: %s, %d CPUs, %s; load average %s when the batches started.\n\n",
		opts.n, time.Now().UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), runtime.Version(), load)
	fmt.Fprintf(&b, "One local control plane (kube-apiserver v1.37.2 with the Node authorizer and NodeRestriction, and etcd, built from Go modules) with %d node processes "+
		"(`kubelet-podcerts`: the kubelet's own podcertificate manager with the kubelet's API client limits of 50 QPS, burst 100; its one worker reads the pod's service account "+
		"and creates the request, one pod at a time, so with fewer nodes the nodes, not the signers, set the pace) and Kubernetes' "+
		"reference signer (`reference-signer`: `k8s.io/kubernetes/test/utils/hermeticpodcertificatesigner`, one worker, Ed25519 root and intermediate, no client-side rate limit, like pq-issuer's). "+
		"N = %d pods per signer, each with a projected volume of a podCertificate source (keyType ECDSAP256, 24h) and the signer's ClusterTrustBundle, in batches of %d, "+
		"each batch in a namespace of its own with %d service accounts and its pods spread evenly over the nodes, that alternate between the signers "+
		"(pq-issuer first in even batches, the reference signer first in odd ones); all pods stay until the end. pq-issuer is the `pq-issuer` binary, its own process, with "+
		"`--max-concurrent-reconciles=%d`, signing for a PQClusterIssuer with an ML-DSA-65 CA. A batch's wall time runs from the bench creating its first pod to the bench's "+
		"informer seeing its last PodCertificateRequest Issued; latency is from that informer first seeing a PodCertificateRequest to seeing it Issued.\n\n",
		opts.nodes, opts.n, opts.batch, podServiceAccounts, opts.workers)
	fmt.Fprintf(&b, "| | pq-issuer (ML-DSA-65 PQClusterIssuer) | reference signer (Ed25519) | ratio pq-issuer / reference signer |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| PodCertificateRequests Issued | %d | %d | |\n", len(fig[pq].issue), len(fig[ref].issue))
	fmt.Fprintf(&b, "| PodCertificateRequests Denied or Failed | %d | %d | |\n", fig[pq].refused, fig[ref].refused)
	fmt.Fprintf(&b, "| wall time to all Issued (sum of its batches) | %.1f s | %.1f s | %s |\n", res[pq].wall.Seconds(), res[ref].wall.Seconds(), ratio(res[pq].wall.Seconds(), res[ref].wall.Seconds()))
	fmt.Fprintf(&b, "| **pod certificates/second** | **%.1f** | **%.1f** | **%s** |\n", res[pq].rate(), res[ref].rate(), ratio(res[pq].rate(), res[ref].rate()))
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}} {
		a, c := percentile(fig[pq].issue, p.q), percentile(fig[ref].issue, p.q)
		fmt.Fprintf(&b, "| PodCertificateRequest created → Issued, %s | %s | %s | %s |\n", p.name, ms(a), ms(c), ratio(a.Seconds(), c.Seconds()))
	}
	fmt.Fprintf(&b, "| pod created → its PodCertificateRequest created (the node's part), p50 / p99 | %s / %s | %s / %s | |\n",
		ms(percentile(fig[pq].node, 0.5)), ms(percentile(fig[pq].node, 0.99)), ms(percentile(fig[ref].node, 0.5)), ms(percentile(fig[ref].node, 0.99)))
	a, c := cpu(rolePQIssuer)
	fmt.Fprintf(&b, "| pq-issuer process CPU during the batches | %s | %s (its informer receives every PodCertificateRequest, the reference signer's too) | |\n", a, c)
	a, c = cpu(roleReference)
	fmt.Fprintf(&b, "| reference signer process CPU during the batches | %s | %s | |\n", a, c)
	a, c = cpu(roleNodes)
	fmt.Fprintf(&b, "| node processes CPU during the batches (%d) | %s | %s | |\n", opts.nodes, a, c)
	a, c = cpu(roleAPIServer)
	fmt.Fprintf(&b, "| kube-apiserver and etcd CPU during the batches | %s | %s | |\n", a, c)
	a, c = cpu(roleBench)
	fmt.Fprintf(&b, "| control-plane process CPU during the batches (the bench's client and informer, idle cert-manager and trust-manager) | %s | %s | |\n", a, c)
	fmt.Fprintf(&b, "| peak RSS | pq-issuer process: %.1f MiB | reference signer process: %.1f MiB | |\n", float64(rss[pq])/(1<<20), float64(rss[ref])/(1<<20))
	fmt.Fprintf(&b, "| volumes checked: each batch's first pod (ECDSA P-256 key, chain to the volume's trust bundle, SPIFFE ID, CA's signature algorithm) | %d, all good | %d, all good | |\n\n",
		verified[pq], verified[ref])
	fmt.Fprintf(&b, "The whole run took %.0f s.", total.Seconds())
	if opts.profile != "" {
		fmt.Fprintf(&b, " A 10 s CPU profile of pq-issuer during its last batch is in `%s` (`go tool pprof -top`); "+
			"a batch of 100 takes it under a second, so for a profile of a whole batch run `BENCH_BATCH=<N>`, one batch per signer.", filepath.Base(opts.profile))
	}
	b.WriteString("\n")
	return b.String()
}

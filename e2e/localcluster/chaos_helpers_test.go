package localcluster_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

var buildPQIssuer = sync.OnceValues(func() (string, error) { return goBuild("github.com/pq-issuer/pq-issuer") })

// pqProcess is the pq-issuer binary running as its own process against the local control plane.
type pqProcess struct {
	cmd         *exec.Cmd
	metricsAddr string
	metrics     *metricsClient
	logPath     string
	exited      chan error
}

// startPQProcess runs the pq-issuer binary with leader election in namespace pq-issuer (or
// without), its cluster resource namespace the control plane's, and metrics on a free port.
func startPQProcess(t *testing.T, pc *pqCluster, leaderElect bool) *pqProcess {
	t.Helper()
	bin, err := buildPQIssuer()
	if err != nil {
		t.Fatal(err)
	}
	p := &pqProcess{metricsAddr: freeAddr(t), metrics: pc.metrics(t), logPath: filepath.Join(t.TempDir(), "pq-issuer.log"), exited: make(chan error, 1)}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	p.cmd = exec.Command(bin, "--namespace=pq-issuer", "--cluster-resource-namespace="+pc.ClusterResourceNamespace(),
		"--leader-elect="+strconv.FormatBool(leaderElect), "--metrics-bind-address="+p.metricsAddr, "--health-probe-bind-address=0")
	p.cmd.Env = append(os.Environ(), "KUBECONFIG="+pc.kubeconfig)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

// kill ends the process with SIGKILL, as an OOM kill or a node loss would: no lease release, no
// cleanup.
func (p *pqProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// metric sums the samples of a metric whose label set contains every one of labels, from the
// process's /metrics; 0 when there are none (a counter never incremented is not exported).
func (p *pqProcess) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, err := p.scrape(name, labels...)
	if err != nil {
		t.Fatalf("scraping pq-issuer: %v\n%s", err, p.logs())
	}
	return v
}

func (p *pqProcess) scrape(name string, labels ...string) (float64, error) {
	status, body, err := p.metrics.get(p.metricsAddr)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %d %q", status, body)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		matches := true
		for _, l := range labels {
			matches = matches && strings.Contains(line, l)
		}
		if !matches {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

func (p *pqProcess) logs() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// isLeader reports whether the process holds the leader election lease; not while its metrics
// endpoint is not up yet.
func (p *pqProcess) isLeader() bool {
	v, err := p.scrape("leader_election_master_status", `name="pq-issuer.pq-issuer.dev"`)
	return err == nil && v == 1
}

// ecdsaCSR is a PEM CSR for an ECDSA P-256 key with one DNS name.
func ecdsaCSR(t *testing.T, dnsName string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName}}, p256(t))
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// request is a CertificateRequest for the PQClusterIssuer issuer, with cert-manager's default
// usages.
func request(namespace, name, issuer string, csrPEM []byte) *cmapi.CertificateRequest {
	return &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: cmapi.CertificateRequestSpec{
			Request:   csrPEM,
			IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "PQClusterIssuer", Name: issuer},
		},
	}
}

// burst creates n requests named <prefix>-<i> for issuer, in parallel, and returns their names.
func burst(t *testing.T, c client.Client, namespace, prefix, issuer string, n int, csrPEM []byte) []string {
	t.Helper()
	names := make([]string, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- c.Create(t.Context(), request(namespace, names[i], issuer, csrPEM))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// tracker watches the CertificateRequests of a namespace and remembers, for each, the certificate
// it first had when Ready; it records a violation when a certificate changes after that, a request
// stops being Ready, or a request fails.
type tracker struct {
	mu         sync.Mutex
	issued     map[string][]byte
	pending    map[string]string // Ready=False reason Pending: its message
	violations []string
}

func newTracker(t *testing.T, pc *pqCluster, namespace string) *tracker {
	t.Helper()
	tr := &tracker{issued: map[string][]byte{}, pending: map[string]string{}}
	informers, err := cache.New(pc.Config(), cache.Options{Scheme: localcluster.NewScheme(), DefaultNamespaces: map[string]cache.Config{namespace: {}}})
	if err != nil {
		t.Fatal(err)
	}
	inf, err := informers.GetInformer(t.Context(), &cmapi.CertificateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	observe := func(obj any) {
		cr, ok := obj.(*cmapi.CertificateRequest)
		if !ok {
			return
		}
		tr.observe(cr)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: observe, UpdateFunc: func(_, obj any) { observe(obj) }}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { _ = informers.Start(ctx) }()
	t.Cleanup(cancel)
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("the tracker's informer did not sync")
	}
	return tr
}

func (tr *tracker) observe(cr *cmapi.CertificateRequest) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	prev, wasIssued := tr.issued[cr.Name]
	switch reason := readyReason(cr); {
	case reason == cmapi.CertificateRequestReasonIssued:
		if wasIssued && string(prev) != string(cr.Status.Certificate) {
			tr.violations = append(tr.violations, cr.Name+": certificate changed after Ready (issued twice)")
		}
		if !wasIssued {
			tr.issued[cr.Name] = cr.Status.Certificate
		}
		delete(tr.pending, cr.Name)
	case wasIssued:
		tr.violations = append(tr.violations, fmt.Sprintf("%s: Ready reason %q after Issued", cr.Name, reason))
	case reason == cmapi.CertificateRequestReasonFailed || reason == cmapi.CertificateRequestReasonDenied:
		tr.violations = append(tr.violations, fmt.Sprintf("%s: %s: %s", cr.Name, reason, readyMessage(cr)))
	case reason == cmapi.CertificateRequestReasonPending:
		tr.pending[cr.Name] = readyMessage(cr)
	}
}

func (tr *tracker) issuedCount() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.issued)
}

// waitIssued waits until at least n requests are issued.
func (tr *tracker) waitIssued(t *testing.T, n int, timeout time.Duration, logs func() string) {
	t.Helper()
	if !poll(t, timeout, func() bool { return tr.issuedCount() >= n }) {
		t.Fatalf("%d requests issued after %s, want %d; pq-issuer log tail:\n%s", tr.issuedCount(), timeout, n, logs())
	}
}

// check fails the test on any violation, on requests of names that are not issued, and on any
// request with more than one Issued event, or none unless eventsLost. Events are sent
// asynchronously: a process killed with SIGKILL right after writing a status loses that event, and
// the request, finished, is never looked at again.
func (tr *tracker) check(t *testing.T, c client.Client, namespace string, names []string, eventsLost bool) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, v := range tr.violations {
		t.Error(v)
	}
	for _, n := range names {
		if _, ok := tr.issued[n]; !ok {
			t.Errorf("%s was never issued", n)
		}
	}
	var list corev1.EventList
	if err := c.List(t.Context(), &list, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	issuedEvents := map[string]int{}
	for _, e := range list.Items {
		if e.Reason == cmapi.CertificateRequestReasonIssued && e.InvolvedObject.Kind == "CertificateRequest" {
			issuedEvents[e.InvolvedObject.Name] += max(1, int(e.Count))
		}
	}
	lost := 0
	for _, n := range names {
		switch got := issuedEvents[n]; {
		case got == 0 && eventsLost:
			lost++
		case got != 1:
			t.Errorf("%s has %d Issued events, want exactly 1", n, got)
		}
	}
	if lost > 0 {
		t.Logf("%d Issued events lost with the killed process (their requests are issued)", lost)
	}
}

// touchRequests patches a label onto the namespace's requests until stop, so that pq-issuer's
// status writes (optimistic lock) meet 409 Conflicts from another writer.
func touchRequests(t *testing.T, c client.Client, namespace string) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				var list cmapi.CertificateRequestList
				if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
					continue
				}
				for j := range list.Items {
					cr := &list.Items[j]
					if j%4 != w || readyReason(cr) == cmapi.CertificateRequestReasonIssued || ctx.Err() != nil {
						continue
					}
					patch := fmt.Appendf(nil, `{"metadata":{"labels":{"chaos.pq-issuer.dev/touch":"%d"}}}`, i)
					_ = c.Patch(ctx, cr, client.RawPatch("application/merge-patch+json", patch))
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

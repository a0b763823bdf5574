package localcluster_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestPQIssuerBinary runs the pq-issuer binary as a Deployment would, outside the control plane's
// process: it wins the leader election Lease in its namespace, signs, serves /healthz, /readyz and
// its Prometheus metrics (over HTTPS, to a ServiceAccount allowed to get /metrics and no one else),
// logs JSON, and on SIGTERM exits cleanly and gives the Lease up.
func TestPQIssuerBinary(t *testing.T) {
	pc := startPQCluster(t, localcluster.Options{})
	c := pc.c
	create(t, c, namespace("pq-issuer"))
	create(t, c, namespace("binary"))

	bin, err := buildPQIssuer()
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr, probeAddr := freeAddr(t), freeAddr(t)
	logPath := filepath.Join(t.TempDir(), "pq-issuer.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "--namespace=pq-issuer", "--cluster-resource-namespace="+pc.ClusterResourceNamespace(),
		"--metrics-bind-address="+metricsAddr, "--health-probe-bind-address="+probeAddr)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+pc.kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	logs := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	for _, path := range []string{"/healthz", "/readyz"} {
		if body := httpGet(t, "http://"+probeAddr+path, logs); body != "ok" {
			t.Errorf("%s answered %q, want ok", path, body)
		}
	}

	pc.readyClusterIssuer(t, offlineRoot(t, "ML-DSA-65", "Binary Root"), "mesh-ca")
	issuedSecret(t, c, pqCertificate("binary", "svc", "PQClusterIssuer", "mesh-ca", cmapi.CertificateSpec{
		DNSNames: []string{"svc.binary.svc"},
	}), "svc.binary.svc")

	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "pq-issuer", Name: "pq-issuer.pq-issuer.dev"}}
	waitFor(t, c, "leader election Lease pq-issuer/pq-issuer.pq-issuer.dev held", lease, func() bool {
		return ptr.Deref(lease.Spec.HolderIdentity, "") != ""
	})

	// /metrics: no token, 401; a token without RBAC for /metrics, 403; Prometheus's, the metrics.
	for _, tc := range []struct {
		name       string
		reader     *metricsClient
		wantStatus int
	}{
		{"no token", &metricsClient{http: pc.metrics(t).http}, http.StatusUnauthorized},
		{"a ServiceAccount without RBAC for /metrics", newMetricsClient(t, c, "stranger", ""), http.StatusForbidden},
	} {
		if status, body, err := tc.reader.get(metricsAddr); err != nil || status != tc.wantStatus {
			t.Errorf("GET /metrics with %s: %d %q (%v), want %d", tc.name, status, body, err, tc.wantStatus)
		}
	}
	metrics := pc.metrics(t).wait(t, metricsAddr, logs)
	for _, want := range []string{
		`pq_issuer_certificaterequests_signed_total{algorithm="ML-DSA-65",issuer_kind="PQClusterIssuer"} 1`,
		`pq_issuer_signing_duration_seconds_count{algorithm="ML-DSA-65",issuer_kind="PQClusterIssuer"} 1`,
		`pq_issuer_ca_expiry_seconds{algorithm="ML-DSA-65",issuer_kind="PQClusterIssuer",name="mesh-ca",namespace=""} 3.15`,
		`controller_runtime_reconcile_total{controller="certificaterequest"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Logs are JSON lines (zap's production encoder), one of them the signing, one saying that the
	// API server accepted the field selector on cert-manager's CRD, so only our requests are cached.
	signed, selected := false, false
	for sc := bufio.NewScanner(strings.NewReader(logs())); sc.Scan(); {
		var entry map[string]any
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if entry["msg"] == "CertificateRequest status changed" && entry["reason"] == cmapi.CertificateRequestReasonIssued {
			signed = true
		}
		if entry["msg"] == "Watching only the CertificateRequests of pq-issuer's issuers" && entry["fieldSelector"] == "spec.issuerRef.group=pq-issuer.dev" {
			selected = true
		}
	}
	if !signed || !selected {
		t.Errorf("no JSON log line for the signed request (%v) or the CertificateRequest field selector (%v):\n%s", signed, selected, logs())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("pq-issuer exited with %v on SIGTERM:\n%s", err, logs())
		}
	case <-time.After(waitTimeout):
		t.Fatalf("pq-issuer did not exit within %s of SIGTERM:\n%s", waitTimeout, logs())
	}
	waitFor(t, c, "the Lease released on shutdown", lease, func() bool { return ptr.Deref(lease.Spec.HolderIdentity, "") == "" })
}

// freeAddr returns a loopback address with a port nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// httpGet polls url until it answers 200 and returns the body; logs explains a failure.
func httpGet(t *testing.T, url string, logs func() string) string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, readErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && readErr == nil {
				return string(body)
			}
			err = fmt.Errorf("%s: %q (read error: %v)", resp.Status, body, readErr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v\npq-issuer's log:\n%s", url, err, logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// metricsClient reads pq-issuer's /metrics as Prometheus does: over HTTPS (pq-issuer's certificate is
// self-signed, made at start, so it is not verified) with a ServiceAccount token.
type metricsClient struct {
	http  *http.Client
	token string
}

// metricsReaderRole is the ClusterRole the chart's metrics-reader renders, for clusters without
// the chart.
const metricsReaderRole = "pq-issuer-metrics-reader"

// metrics returns the cluster's Prometheus: a ServiceAccount bound to metricsReaderRole, made on
// first use.
func (pc *pqCluster) metrics(t *testing.T) *metricsClient {
	t.Helper()
	if pc.metricsReader == nil {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: metricsReaderRole},
			Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
		create(t, pc.c, role)
		pc.metricsReader = newMetricsClient(t, pc.c, "prometheus", role.Name)
	}
	return pc.metricsReader
}

// newMetricsClient makes ServiceAccount monitoring/name, bound to clusterRole unless it is "", and a
// client with its token.
func newMetricsClient(t *testing.T, c client.Client, name, clusterRole string) *metricsClient {
	t.Helper()
	if err := c.Create(t.Context(), namespace("monitoring")); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "monitoring", Name: name}}
	create(t, c, sa)
	if clusterRole != "" {
		create(t, c, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: clusterRole + ":" + name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: sa.Namespace, Name: sa.Name}},
		})
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	if err := c.SubResource("token").Create(t.Context(), sa, tr); err != nil {
		t.Fatalf("requesting a token for ServiceAccount %s: %v", name, err)
	}
	return &metricsClient{
		http:  &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}},
		token: tr.Status.Token,
	}
}

// get reads https://addr/metrics once.
func (m *metricsClient) get(addr string) (status int, body string, err error) {
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
	if err != nil {
		return 0, "", err
	}
	if m.token != "" {
		req.Header.Set("Authorization", "Bearer "+m.token)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// wait polls /metrics until it answers 200 and returns the body; logs explains a failure.
func (m *metricsClient) wait(t *testing.T, addr string, logs func() string) string {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		status, body, err := m.get(addr)
		if err == nil && status == http.StatusOK {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET https://%s/metrics: %d %q (%v)\npq-issuer's log:\n%s", addr, status, body, err, logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

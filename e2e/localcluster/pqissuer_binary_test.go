package localcluster_test

import (
	"bufio"
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
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestPQIssuerBinary runs the pq-issuer binary as a Deployment would, outside the control plane's
// process: it wins the leader election Lease in its namespace, signs, serves /healthz, /readyz and
// its Prometheus metrics, logs JSON, and on SIGTERM exits cleanly and gives the Lease up.
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

	metrics := httpGet(t, "http://"+metricsAddr+"/metrics", logs)
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

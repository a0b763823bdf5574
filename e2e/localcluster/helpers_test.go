package localcluster_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gwapi "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// waitTimeout bounds every wait for a controller to act.
const waitTimeout = 2 * time.Minute

func TestMain(m *testing.M) {
	if os.Getenv(tlsServerEnv) != "" {
		os.Exit(tlsServerMain())
	}
	// client-go and controller-runtime log through these process-wide loggers.
	log := textlogger.NewLogger(textlogger.NewConfig())
	klog.SetLogger(log)
	ctrl.SetLogger(log)
	var err error
	if toolsDir, err = os.MkdirTemp("", "e2e-tools-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(toolsDir)
	os.Exit(code)
}

// binDir is the repository's bin/, where `make tools` puts kube-apiserver, etcd and kubectl.
func binDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// startCluster starts a local control plane that is stopped when the test ends. opts.BinDir and
// opts.Log are filled in.
func startCluster(t *testing.T, opts localcluster.Options) *localcluster.Cluster {
	t.Helper()
	started := time.Now()
	opts.BinDir, opts.Log = binDir(t), textlogger.NewLogger(textlogger.NewConfig())
	cluster, err := localcluster.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Starting the local control plane: %v", err)
	}
	t.Logf("Local control plane started in %s", time.Since(started).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Errorf("Stopping the local control plane: %v", err)
		}
	})
	return cluster
}

// waitFor polls cond until it holds. On timeout it fails the test with what was awaited and the
// current state of obj (and anything else describe returns), so a failure explains itself.
func waitFor(t *testing.T, c client.Client, what string, obj client.Object, cond func() bool, describe ...func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	var lastErr error
	for {
		lastErr = c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if lastErr == nil && cond() {
			return
		}
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("Timed out after %s waiting for %s; last get error: %v\n%s", waitTimeout, what, lastErr, dump(obj))
			for _, d := range describe {
				msg += "\n" + d()
			}
			t.Fatal(msg)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func dump(obj any) string {
	out, err := yaml.Marshal(obj)
	if err != nil {
		return fmt.Sprintf("%#v", obj)
	}
	return string(out)
}

// certificateRequests describes the CertificateRequests of a namespace, the usual place a stuck
// Certificate's reason shows.
func certificateRequests(t *testing.T, c client.Client, namespace string) func() string {
	return func() string {
		var list cmapi.CertificateRequestList
		if err := c.List(context.Background(), &list, client.InNamespace(namespace)); err != nil {
			return fmt.Sprintf("listing CertificateRequests in %s: %v", namespace, err)
		}
		return "CertificateRequests in " + namespace + ":\n" + dump(list.Items)
	}
}

func create(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(t.Context(), obj); err != nil {
		t.Fatalf("Creating %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

func clusterIssuer(name string, spec cmapi.IssuerConfig) *cmapi.ClusterIssuer {
	return &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       cmapi.IssuerSpec{IssuerConfig: spec},
	}
}

func certificate(namespace, name, issuer string, spec cmapi.CertificateSpec) *cmapi.Certificate {
	spec.SecretName = name
	spec.IssuerRef = cmmeta.IssuerReference{Name: issuer, Kind: cmapi.ClusterIssuerKind, Group: cmapi.SchemeGroupVersion.Group}
	return &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: spec}
}

// createGateway creates a GatewayClass and a Gateway of the same name with one HTTPS listener for
// hostname whose certificate goes to Secret secret; annotations tell gateway-shim which issuer to use.
func createGateway(t *testing.T, c client.Client, namespace, name, hostname, secret string, annotations map[string]string) {
	t.Helper()
	create(t, c, &gwapi.GatewayClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       gwapi.GatewayClassSpec{ControllerName: gwapi.GatewayController("example.com/" + name + "-gateway-controller")},
	})
	create(t, c, &gwapi.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: annotations},
		Spec: gwapi.GatewaySpec{
			GatewayClassName: gwapi.ObjectName(name),
			Listeners: []gwapi.Listener{{
				Name:     "https",
				Hostname: ptr.To(gwapi.Hostname(hostname)),
				Port:     443,
				Protocol: gwapi.HTTPSProtocolType,
				TLS: &gwapi.ListenerTLSConfig{
					Mode:            ptr.To(gwapi.TLSModeTerminate),
					CertificateRefs: []gwapi.SecretObjectReference{{Name: gwapi.ObjectName(secret)}},
				},
			}},
		},
	})
}

func hasCondition(conditions []cmapi.CertificateCondition, typ cmapi.CertificateConditionType) bool {
	for _, c := range conditions {
		if c.Type == typ && c.Status == cmmeta.ConditionTrue {
			return true
		}
	}
	return false
}

func issuerReady(conditions []cmapi.IssuerCondition) bool {
	for _, c := range conditions {
		if c.Type == cmapi.IssuerConditionReady && c.Status == cmmeta.ConditionTrue {
			return true
		}
	}
	return false
}

// parseCertificate decodes the first PEM certificate in data.
func parseCertificate(t *testing.T, what string, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate: %q", what, data)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("Parsing %s: %v", what, err)
	}
	return cert
}

// verifyTLSSecret checks what cert-manager promises about a Certificate's Secret: a key pair that
// matches, and a certificate for dnsName that chains to ca.crt. It returns the certificate.
func verifyTLSSecret(t *testing.T, secret *corev1.Secret, dnsName string) *x509.Certificate {
	t.Helper()
	for _, key := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey, cmmeta.TLSCAKey} {
		if len(secret.Data[key]) == 0 {
			t.Fatalf("Secret %s/%s has no %s; keys: %v", secret.Namespace, secret.Name, key, keys(secret.Data))
		}
	}
	if _, err := tls.X509KeyPair(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]); err != nil {
		t.Fatalf("Secret %s/%s: tls.crt and tls.key are not a key pair: %v", secret.Namespace, secret.Name, err)
	}
	cert := parseCertificate(t, secret.Name+" tls.crt", secret.Data[corev1.TLSCertKey])
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(secret.Data[cmmeta.TLSCAKey]) {
		t.Fatalf("Secret %s/%s: ca.crt holds no certificate", secret.Namespace, secret.Name)
	}
	// tls.crt is the leaf followed by the intermediates, if any.
	intermediates := x509.NewCertPool()
	for block, rest := pem.Decode(secret.Data[corev1.TLSCertKey]); block != nil; block, rest = pem.Decode(rest) {
		if c, err := x509.ParseCertificate(block.Bytes); err == nil && c.IsCA {
			intermediates.AddCert(c)
		}
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: intermediates, DNSName: dnsName, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := cert.Verify(opts); err != nil {
		t.Fatalf("Secret %s/%s: certificate does not verify against ca.crt for %q: %v", secret.Namespace, secret.Name, dnsName, err)
	}
	return cert
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

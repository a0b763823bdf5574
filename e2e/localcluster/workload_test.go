package localcluster_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
	"github.com/pq-issuer/pq-issuer/workload"
)

// TestWorkloadLibrary serves and dials mutual TLS with go-spiffe over the workload package,
// reading the volumes the kubelet's podcertificate manager writes with pq-issuer's ML-DSA-signed
// identities: the right peers complete TLS 1.3, the wrong SPIFFE ID and a foreign CA's pod are
// refused, and a renewal by the kubelet is served without a restart or a failed handshake.
func TestWorkloadLibrary(t *testing.T) {
	pc := startPQCluster(t, localcluster.Options{Extra: []localcluster.Runner{localcluster.PQIssuer(localcluster.DefaultClusterResourceNamespace)}})
	ctx, c := t.Context(), pc.c
	node, err := pc.StartNode(ctx, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	const podLife = 2 * time.Hour
	for _, ca := range []struct{ name, cn string }{{"mesh-ca", "Mesh Root"}, {"other-ca", "Other Root"}} {
		pc.installCASecret(t, offlineRoot(t, "ML-DSA-65", ca.cn), pc.ClusterResourceNamespace(), ca.name)
		iss := pqClusterIssuer(ca.name, ca.name)
		iss.Spec.PodCertificates = &v1alpha1.PodCertificates{MaxDuration: &metav1.Duration{Duration: podLife}}
		create(t, c, iss)
		waitIssuer(t, c, iss, metav1.ConditionTrue, v1alpha1.ReasonVerified)
	}
	create(t, c, namespace("shop"))
	for _, sa := range []string{"api", "backend"} {
		create(t, c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: sa}})
	}
	open := func(name, sa, signer, keyType string) (*workload.Source, *corev1.Pod) {
		t.Helper()
		pod := localcluster.PodWithIdentity("shop", name, sa, "node-1", "pqclusterissuers.pq-issuer.dev/"+signer, keyType, nil)
		create(t, c, pod)
		waitCredentials(t, c, node, pod, nil)
		dir := node.VolumeDir(pod, localcluster.IdentityVolume)
		src, err := workload.Open(ctx, workload.PodCertificate(filepath.Join(dir, localcluster.CredentialBundle), filepath.Join(dir, localcluster.TrustBundle)),
			workload.Options{Log: testr.New(t).WithValues("pod", name), Interval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return src, pod
	}
	api, _ := open("api", "api", "mesh-ca", "ECDSAP256")
	backend, backendPod := open("backend", "backend", "mesh-ca", "ED25519")
	impostor, _ := open("impostor", "api", "other-ca", "ECDSAP256")
	apiID := spiffeid.RequireFromString("spiffe://cluster.local/ns/shop/sa/api")
	backendID := spiffeid.RequireFromString("spiffe://cluster.local/ns/shop/sa/backend")

	ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsconfig.MTLSServerConfig(backend, backend, tlsconfig.AuthorizeID(apiID)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				if conn.(*tls.Conn).Handshake() == nil {
					_, _ = conn.Write([]byte("hello\n"))
				}
			}()
		}
	}()
	dial := func(src *workload.Source, want spiffeid.ID) (*x509.Certificate, error) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), tlsconfig.MTLSClientConfig(src, src, tlsconfig.AuthorizeID(want)))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 6)
		if _, err := conn.Read(buf); err != nil {
			return nil, err
		}
		state := conn.ConnectionState()
		if state.Version != tls.VersionTLS13 {
			return nil, errors.New("not TLS 1.3")
		}
		return state.PeerCertificates[0], nil
	}

	t.Run("mutual TLS with the pods' identities", func(t *testing.T) {
		leaf, err := dial(api, backendID)
		if err != nil {
			t.Fatal(err)
		}
		if leaf.SignatureAlgorithm != x509.MLDSA65 {
			t.Errorf("the backend's certificate is signed with %s, want ML-DSA-65", leaf.SignatureAlgorithm)
		}
	})
	t.Run("the wrong server ID is refused", func(t *testing.T) {
		if _, err := dial(api, apiID); err == nil || !strings.Contains(err.Error(), `unexpected ID "spiffe://cluster.local/ns/shop/sa/backend"`) {
			t.Errorf("dial: %v, want the backend's ID refused", err)
		}
	})
	t.Run("the wrong client ID is refused", func(t *testing.T) {
		if _, err := dial(backend, backendID); err == nil || !strings.Contains(err.Error(), "bad certificate") {
			t.Errorf("dial: %v, want the server to refuse the backend as a client", err)
		}
	})
	t.Run("a pod of a foreign CA is refused", func(t *testing.T) {
		if _, err := dial(impostor, backendID); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("dial: %v, want the mesh CA's backend refused by a pod trusting another CA", err)
		}
	})
	t.Run("the kubelet's renewal is served without a failed handshake", func(t *testing.T) {
		first, _ := backend.GetX509SVID()
		if err := node.StepClock(ctx, podLife/2+10*time.Minute); err != nil {
			t.Fatal(err)
		}
		renewed := waitCredentials(t, c, node, backendPod, first.Certificates[0])
		deadline := time.Now().Add(5 * time.Second)
		for n := 0; ; n++ {
			leaf, err := dial(api, backendID)
			if err != nil {
				t.Fatalf("handshake %d after the renewal: %v", n, err)
			}
			if leaf.Equal(renewed.leaf) {
				t.Logf("the renewed certificate was served after %d handshakes; expires %s", n, backend.NotAfter())
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the renewed certificate was not served within 5s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

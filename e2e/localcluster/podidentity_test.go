package localcluster_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/controllers"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// podCredentials is what a pod's identity volume holds.
type podCredentials struct {
	bundle []byte // key, then the chain
	trust  []byte
	leaf   *x509.Certificate
	chain  []*x509.Certificate
	roots  *x509.CertPool
}

// waitCredentials waits until the node has written the pod's identity volume with a certificate
// other than the one of not (nil: any), and returns it.
func waitCredentials(t *testing.T, c client.Client, node *localcluster.Node, pod *corev1.Pod, not *x509.Certificate) *podCredentials {
	t.Helper()
	dir := node.VolumeDir(pod, localcluster.IdentityVolume)
	deadline := time.Now().Add(waitTimeout)
	for {
		bundle, err1 := os.ReadFile(filepath.Join(dir, localcluster.CredentialBundle))
		trust, err2 := os.ReadFile(filepath.Join(dir, localcluster.TrustBundle))
		if err1 == nil && err2 == nil {
			creds := parseCredentials(t, bundle, trust)
			if not == nil || !creds.leaf.Equal(not) {
				return creds
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("No new credentials for pod %s/%s in %s within %s (%v, %v)\nits PodCertificateRequests:\n%s",
				pod.Namespace, pod.Name, dir, waitTimeout, err1, err2, dump(podCertificateRequests(t, c, pod)))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func parseCredentials(t *testing.T, bundle, trust []byte) *podCredentials {
	t.Helper()
	creds := &podCredentials{bundle: bundle, trust: trust, roots: x509.NewCertPool()}
	rest, keys := bundle, 0
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		switch block.Type {
		case "PRIVATE KEY":
			keys++
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			creds.chain = append(creds.chain, c)
		}
	}
	if keys != 1 || len(creds.chain) == 0 {
		t.Fatalf("the credential bundle has %d keys and %d certificates, want one key and a chain", keys, len(creds.chain))
	}
	creds.leaf = creds.chain[0]
	if !creds.roots.AppendCertsFromPEM(trust) {
		t.Fatal("the trust bundle holds no certificate")
	}
	return creds
}

// verify checks the chain against the trust bundle with Go, and returns the SPIFFE ID.
func (pc *podCredentials) verify(t *testing.T) string {
	t.Helper()
	inter := x509.NewCertPool()
	for _, c := range pc.chain[1:] {
		inter.AddCert(c)
	}
	if _, err := pc.leaf.Verify(x509.VerifyOptions{Roots: pc.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("the pod's certificate does not verify against its trust bundle with Go: %v", err)
	}
	if len(pc.leaf.URIs) != 1 {
		t.Fatalf("the pod's certificate has URIs %v, want one SPIFFE ID", pc.leaf.URIs)
	}
	return pc.leaf.URIs[0].String()
}

func podCertificateRequests(t *testing.T, c client.Client, pod *corev1.Pod) []certificatesv1.PodCertificateRequest {
	t.Helper()
	var list certificatesv1.PodCertificateRequestList
	if err := c.List(context.Background(), &list, client.InNamespace(pod.Namespace)); err != nil {
		t.Fatal(err)
	}
	var out []certificatesv1.PodCertificateRequest
	for _, p := range list.Items {
		if p.Spec.PodUID == pod.UID {
			out = append(out, p)
		}
	}
	return out
}

// spiffeMTLS has a server with server's credentials and a client with client's complete a TLS 1.3
// handshake, each authorizing the other's SPIFFE ID: the server accepts only clientID, the client
// only serverID. It returns the first error either side saw.
func spiffeMTLS(server, client *podCredentials, serverID, clientID string) error {
	pair := func(pc *podCredentials) (tls.Certificate, error) { return tls.X509KeyPair(pc.bundle, pc.bundle) }
	srvPair, err := pair(server)
	if err != nil {
		return err
	}
	cliPair, err := pair(client)
	if err != nil {
		return err
	}
	want := func(id string) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || len(cs.PeerCertificates[0].URIs) != 1 || cs.PeerCertificates[0].URIs[0].String() != id {
				return fmt.Errorf("peer is not %s", id)
			}
			return nil
		}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srvPair}, ClientCAs: server.roots, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS13, VerifyConnection: want(clientID),
	})
	if err != nil {
		return err
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err := conn.(*tls.Conn).Handshake(); err != nil {
			served <- fmt.Errorf("server: %w", err)
			return
		}
		_, err = conn.Write([]byte("hello\n"))
		served <- err
	}()
	// SPIFFE authorizes by ID, not host name: the client checks the chain itself (no ServerName).
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{
		Certificates: []tls.Certificate{cliPair}, MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: client.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return err
			}
			return want(serverID)(cs)
		},
	})
	if err != nil {
		return errors.Join(fmt.Errorf("client: %w", err), <-served)
	}
	defer conn.Close()
	reply, err := io.ReadAll(conn)
	if err := <-served; err != nil {
		return err
	}
	if err != nil || string(reply) != "hello\n" {
		return fmt.Errorf("reading the server's reply: %v (%q)", err, reply)
	}
	return nil
}

// TestPodIdentities runs the kubelet's own podcertificate manager (a node process) against the
// local control plane with pq-issuer signing: pods get ML-DSA-signed SPIFFE identities, renew them,
// and keep talking across a CA rotation.
func TestPodIdentities(t *testing.T) {
	issuerClock := clocktesting.NewFakeClock(time.Now())
	pc := startPQCluster(t, localcluster.Options{Extra: []localcluster.Runner{localcluster.PQIssuerWith(controllers.ManagerOptions{Options: controllers.Options{
		ClusterResourceNamespace: localcluster.DefaultClusterResourceNamespace, Clock: issuerClock,
	}})}})
	ctx, c := t.Context(), pc.c
	node1, err := pc.StartNode(ctx, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	node2, err := pc.StartNode(ctx, "node-2")
	if err != nil {
		t.Fatal(err)
	}

	// The mesh CA: pods live 2h; the overlap after a rotation is max(maxDuration,
	// podCertificates.maxDuration) = 3h.
	const podLife, overlap = 2 * time.Hour, 3 * time.Hour
	caDir := offlineRoot(t, "ML-DSA-65", "Mesh Root 1")
	pc.installCASecret(t, caDir, pc.ClusterResourceNamespace(), "mesh-ca")
	mesh := pqClusterIssuer("mesh-ca", "mesh-ca")
	mesh.Spec.MaxDuration = &metav1.Duration{Duration: overlap}
	mesh.Spec.PodCertificates = &v1alpha1.PodCertificates{MaxDuration: &metav1.Duration{Duration: podLife}, DNSNames: []string{"*.{namespace}.svc"}}
	create(t, c, mesh)
	waitIssuer(t, c, mesh, metav1.ConditionTrue, v1alpha1.ReasonVerified)
	const signer = "pqclusterissuers.pq-issuer.dev/mesh-ca"

	for _, ns := range []string{"shop", "team-a", "team-b"} {
		create(t, c, namespace(ns))
	}
	for _, sa := range []string{"shop/api", "shop/backend", "shop/db", "team-a/app", "team-b/app", "shop/late"} {
		ns, name, _ := strings.Cut(sa, "/")
		create(t, c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	}

	pods := map[string]*corev1.Pod{}
	var api, backend *podCredentials
	t.Run("three key types get SPIFFE identities", func(t *testing.T) {
		// The README's pod, as a user applies it; the scheduler's part, binding it to a node, is
		// the test's.
		sample, err := filepath.Abs(filepath.Join("..", "..", "config", "samples", "pod-identity.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readFile(t, filepath.Join("..", "..", "README.md"))), "```yaml\n"+string(readFile(t, sample))+"```") {
			t.Error("README.md does not show config/samples/pod-identity.yaml as it is")
		}
		pc.kubectl(t, nil, "apply", "-f", sample)
		pods["api"] = &corev1.Pod{}
		getObj(t, c, client.ObjectKey{Namespace: "shop", Name: "api"}, pods["api"])
		bind(t, c, pods["api"], "node-1")
		for _, p := range []struct{ sa, keyType string }{{"backend", "ED25519"}, {"db", "RSA3072"}} {
			pod := localcluster.PodWithIdentity("shop", p.sa, p.sa, "node-1", signer, p.keyType, nil)
			create(t, c, pod)
			pods[p.sa] = pod
		}
		for _, p := range []string{"api", "backend", "db"} {
			creds := waitCredentials(t, c, node1, pods[p], nil)
			if id, want := creds.verify(t), "spiffe://cluster.local/ns/shop/sa/"+p; id != want {
				t.Errorf("pod %s has SPIFFE ID %s, want %s", p, id, want)
			}
			if creds.leaf.SignatureAlgorithm.String() != "ML-DSA-65" || creds.leaf.Subject.String() != "" {
				t.Errorf("pod %s: signature %s, subject %q; want ML-DSA-65 and an empty subject", p, creds.leaf.SignatureAlgorithm, creds.leaf.Subject)
			}
			if got := creds.leaf.NotAfter.Sub(creds.leaf.NotBefore); got != podLife {
				t.Errorf("pod %s: lifetime %s, want the issuer's pod maximum %s", p, got, podLife)
			}
			nodeVerify(t, "pod "+p, creds.bundle[bytes.Index(creds.bundle, []byte("-----BEGIN CERTIFICATE")):], creds.trust)
			switch p {
			case "api":
				api = creds
				if !slices.Equal(creds.leaf.DNSNames, []string{"api.shop.svc"}) {
					t.Errorf("api's DNS names %q, want the annotated api.shop.svc", creds.leaf.DNSNames)
				}
			case "backend":
				backend = creds
			}
			pcrs := podCertificateRequests(t, c, pods[p])
			if len(pcrs) != 1 || !meta.IsStatusConditionTrue(pcrs[0].Status.Conditions, "Issued") {
				t.Errorf("pod %s: PodCertificateRequests %s, want one Issued", p, dump(pcrs))
			}
		}
	})

	t.Run("mutual TLS with peer SPIFFE IDs", func(t *testing.T) {
		apiID, be := "spiffe://cluster.local/ns/shop/sa/api", "spiffe://cluster.local/ns/shop/sa/backend"
		if err := spiffeMTLS(backend, api, be, apiID); err != nil {
			t.Fatalf("api → backend: %v", err)
		}
		if err := spiffeMTLS(backend, api, be, "spiffe://cluster.local/ns/shop/sa/db"); err == nil {
			t.Fatal("the backend accepted api while it allows only db")
		}
		if err := spiffeMTLS(backend, api, apiID, apiID); err == nil {
			t.Fatal("api accepted the backend as itself")
		}
	})

	t.Run("refresh at half the lifetime", func(t *testing.T) {
		// On node-2, whose kubelet clock the test moves; node-1's pods keep the real time.
		pod := localcluster.PodWithIdentity("shop", "cache", "db", "node-2", signer, "ECDSAP384", nil)
		create(t, c, pod)
		first := waitCredentials(t, c, node2, pod, nil)
		pcr := podCertificateRequests(t, c, pod)[0]
		if want := pcr.Status.NotBefore.Add(podLife / 2); !pcr.Status.BeginRefreshAt.Time.Equal(want) {
			t.Fatalf("beginRefreshAt %s, want %s", pcr.Status.BeginRefreshAt, want)
		}
		// The node's clock stands at its start until stepped. Before the refresh point the
		// kubelet keeps the certificate.
		if err := node2.StepClock(ctx, podLife/4); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if got := parseCredentials(t, readFile(t, filepath.Join(node2.VolumeDir(pod, localcluster.IdentityVolume), localcluster.CredentialBundle)), first.trust); !got.leaf.Equal(first.leaf) {
			t.Fatal("the certificate was replaced before beginRefreshAt")
		}
		// Past it, plus the kubelet's jitter of up to 5 minutes: a new key and certificate.
		if err := node2.StepClock(ctx, podLife/4+10*time.Minute); err != nil {
			t.Fatal(err)
		}
		renewed := waitCredentials(t, c, node2, pod, first.leaf)
		renewed.verify(t)
		if renewed.leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(first.leaf.PublicKey) {
			t.Error("the renewed certificate has the old key")
		}
		// The node's clock is now ahead of the signer's: it may renew again at each later look.
		if n := len(podCertificateRequests(t, c, pod)); n < 2 {
			t.Errorf("%d PodCertificateRequests for the pod, want the first and its renewal", n)
		}
	})

	t.Run("a pod cannot use another namespace's PQIssuer", func(t *testing.T) {
		teamCA := offlineRoot(t, "ML-DSA-44", "Team A Root")
		pc.installCASecret(t, teamCA, "team-a", "team-a-ca")
		teamA := pqIssuer("team-a", "ca", "team-a-ca")
		create(t, c, teamA)
		waitIssuer(t, c, teamA, metav1.ConditionTrue, v1alpha1.ReasonVerified)
		intruder := localcluster.PodWithIdentity("team-b", "app", "app", "node-1", "pqissuers.pq-issuer.dev/team-a.ca", "ECDSAP256", nil)
		create(t, c, intruder)
		var denied *metav1.Condition
		waitFor(t, c, "team-b's PodCertificateRequest denied", intruder, func() bool {
			for _, p := range podCertificateRequests(t, c, intruder) {
				denied = meta.FindStatusCondition(p.Status.Conditions, "Denied")
			}
			return denied != nil
		})
		if denied.Reason != "PolicyViolation" || !strings.Contains(denied.Message, "own namespace team-a") {
			t.Errorf("Denied %s: %q", denied.Reason, denied.Message)
		}
		own := localcluster.PodWithIdentity("team-a", "app", "app", "node-1", "pqissuers.pq-issuer.dev/team-a.ca", "ECDSAP256", nil)
		create(t, c, own)
		if id := waitCredentials(t, c, node1, own, nil).verify(t); id != "spiffe://cluster.local/ns/team-a/sa/app" {
			t.Errorf("team-a's pod has %s", id)
		}
	})

	t.Run("a node cannot request for another node's pod", func(t *testing.T) {
		nodeClient, err := client.New(node2.Config(), client.Options{Scheme: c.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{}
		if err := c.Get(ctx, clientKey(pods["db"]), pod); err != nil {
			t.Fatal(err)
		}
		sa := &corev1.ServiceAccount{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "db"}, sa); err != nil {
			t.Fatal(err)
		}
		stolen := podCertificateRequests(t, c, pods["db"])[0].DeepCopy()
		forged := &certificatesv1.PodCertificateRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", GenerateName: "req-"},
			Spec: certificatesv1.PodCertificateRequestSpec{
				SignerName: signer, PodName: pod.Name, PodUID: pod.UID, ServiceAccountName: sa.Name, ServiceAccountUID: sa.UID,
				NodeName: "node-1", NodeUID: stolen.Spec.NodeUID, StubPKCS10Request: stolen.Spec.StubPKCS10Request,
			},
		}
		err = nodeClient.Create(ctx, forged)
		if !apierrors.IsForbidden(err) {
			t.Fatalf("node-2 creating a request for node-1's pod: %v, want Forbidden by NodeRestriction", err)
		}
		t.Logf("NodeRestriction: %v", err)
	})

	t.Run("issuer not ready: the request waits, then is issued", func(t *testing.T) {
		late := pqClusterIssuer("late", "late")
		create(t, c, late)
		waitIssuer(t, c, late, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
		pod := localcluster.PodWithIdentity("shop", "late", "late", "node-1", "pqclusterissuers.pq-issuer.dev/late", "ECDSAP256", nil)
		create(t, c, pod)
		var pcr certificatesv1.PodCertificateRequest
		waitFor(t, c, "a PodCertificateRequest for pod late", pod, func() bool {
			pcrs := podCertificateRequests(t, c, pod)
			if len(pcrs) == 1 {
				pcr = pcrs[0]
			}
			return len(pcrs) == 1
		})
		msg := waitEvent(t, c, &pcr, "WaitingForIssuer")
		if !strings.Contains(msg, "PQClusterIssuer late to be ready") {
			t.Errorf("event %q", msg)
		}
		if err := c.Get(ctx, clientKey(&pcr), &pcr); err != nil || len(pcr.Status.Conditions) != 0 {
			t.Fatalf("the waiting request has a status: %v %s", err, dump(pcr.Status))
		}
		pc.installCASecret(t, offlineRoot(t, "ML-DSA-87", "Late Root"), pc.ClusterResourceNamespace(), "late")
		creds := waitCredentials(t, c, node1, pod, nil)
		if id := creds.verify(t); id != "spiffe://cluster.local/ns/shop/sa/late" || creds.leaf.SignatureAlgorithm.String() != "ML-DSA-87" {
			t.Errorf("late pod: %s signed with %s", id, creds.leaf.SignatureAlgorithm)
		}
	})

	t.Run("CA rotation without an outage", func(t *testing.T) {
		bundle := &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: "pqclusterissuers.pq-issuer.dev:mesh-ca:bundle"}}
		newDir := offlineRoot(t, "ML-DSA-65", "Mesh Root 2")
		pc.installCASecret(t, newDir, pc.ClusterResourceNamespace(), "mesh-ca")
		waitFor(t, c, "the mesh bundle with both roots", bundle, func() bool {
			return slices.Equal(bundleRoots(t, bundle.Spec.TrustBundle), []string{"Mesh Root 2", "Mesh Root 1"})
		})
		// The same overlap for cert-manager users: the trust ConfigMap trust-manager can source.
		trustCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: pc.ClusterResourceNamespace(), Name: "pqclusterissuer-mesh-ca-trust-anchors"}}
		waitFor(t, c, "the mesh trust ConfigMap with both roots", trustCM, func() bool {
			return trustCM.Data["ca.crt"] == bundle.Spec.TrustBundle
		})
		// A new pod gets a certificate of the new CA and a trust bundle with both roots.
		fresh := localcluster.PodWithIdentity("shop", "api-2", "api", "node-1", signer, "ECDSAP256", nil)
		create(t, c, fresh)
		newCreds := waitCredentials(t, c, node1, fresh, nil)
		if newCreds.verify(t); newCreds.leaf.Issuer.CommonName != "Mesh Root 2" {
			t.Fatalf("the new pod's certificate is from %s", newCreds.leaf.Issuer)
		}
		// The backend still holds its old-CA certificate; the node rewrote its trust bundle.
		oldCreds := waitTrustRoots(t, node1, pods["backend"], 2)
		if oldCreds.leaf.Issuer.CommonName != "Mesh Root 1" {
			t.Fatalf("the backend's certificate is from %s", oldCreds.leaf.Issuer)
		}
		apiID, be := "spiffe://cluster.local/ns/shop/sa/api", "spiffe://cluster.local/ns/shop/sa/backend"
		if err := spiffeMTLS(oldCreds, newCreds, be, apiID); err != nil {
			t.Fatalf("new-CA client → old-CA server: %v", err)
		}
		if err := spiffeMTLS(newCreds, oldCreds, apiID, be); err != nil {
			t.Fatalf("old-CA client → new-CA server: %v", err)
		}
		// Past the overlap the old root leaves.
		issuerClock.Step(overlap + time.Minute)
		touch(t, c, mesh)
		waitFor(t, c, "the mesh bundle without the old root", bundle, func() bool {
			return slices.Equal(bundleRoots(t, bundle.Spec.TrustBundle), []string{"Mesh Root 2"})
		})
		waitFor(t, c, "the mesh trust ConfigMap without the old root", trustCM, func() bool {
			return trustCM.Data["ca.crt"] == bundle.Spec.TrustBundle
		})
		// New pods keep getting new-CA certificates after the old root left.
		late := localcluster.PodWithIdentity("shop", "api-3", "api", "node-1", signer, "ED25519", nil)
		create(t, c, late)
		if creds := waitCredentials(t, c, node1, late, nil); creds.verify(t) != "spiffe://cluster.local/ns/shop/sa/api" || creds.leaf.Issuer.CommonName != "Mesh Root 2" {
			t.Errorf("a pod after the overlap got a certificate from %s", creds.leaf.Issuer)
		}
		out := runREADMEBlock(t, pc, t.TempDir(), readmeBlock(t, readmePods), nil)
		t.Logf("The README's pod commands:\n%s", out)
		for _, want := range []string{"pqclusterissuers.pq-issuer.dev:mesh-ca:bundle", "spiffe://cluster.local/ns/shop/sa/api", "Issued"} {
			if !strings.Contains(out, want) {
				t.Errorf("the README's pod commands do not show %q", want)
			}
		}
	})
}

// bind binds pod to node as the scheduler does, through the binding subresource.
func bind(t *testing.T, c client.Client, pod *corev1.Pod, node string) {
	t.Helper()
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
	if err := c.SubResource("binding").Create(t.Context(), pod, binding); err != nil {
		t.Fatalf("binding pod %s/%s to %s: %v", pod.Namespace, pod.Name, node, err)
	}
	getObj(t, c, client.ObjectKeyFromObject(pod), pod)
}

// waitTrustRoots waits until the pod's trust bundle holds n roots and returns its credentials.
func waitTrustRoots(t *testing.T, node *localcluster.Node, pod *corev1.Pod, n int) *podCredentials {
	t.Helper()
	dir := node.VolumeDir(pod, localcluster.IdentityVolume)
	deadline := time.Now().Add(waitTimeout)
	for {
		trust, _ := os.ReadFile(filepath.Join(dir, localcluster.TrustBundle))
		if bytes.Count(trust, []byte("-----BEGIN CERTIFICATE")) == n {
			return parseCredentials(t, readFile(t, filepath.Join(dir, localcluster.CredentialBundle)), trust)
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s's trust bundle does not hold %d roots within %s:\n%s", pod.Name, n, waitTimeout, trust)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// bundleRoots are the common names of the certificates of a PEM bundle, in order.
func bundleRoots(t *testing.T, bundle string) []string {
	t.Helper()
	var cns []string
	for _, c := range pemCerts(t, "trust bundle", []byte(bundle)) {
		cns = append(cns, c.Subject.CommonName)
	}
	return cns
}

// touch changes an annotation of obj, so that its controller reconciles it now.
func touch(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"metadata":{"annotations":{"e2e.pq-issuer.dev/touched":%q}}}`, time.Now().Format(time.RFC3339Nano)))
	if err := c.Patch(t.Context(), obj, patch); err != nil {
		t.Fatal(err)
	}
}

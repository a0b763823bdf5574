package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/testkeys"
	"github.com/pq-issuer/pq-issuer/signer"
)

const (
	apiID     = "spiffe://cluster.local/ns/shop/sa/api"
	backendID = "spiffe://cluster.local/ns/shop/sa/backend"
)

// TestAgent runs the agent as server on api's identity volume and as client on backend's, as
// make demo does with the kubelet-written volumes: each authorizes the other's SPIFFE ID, and a
// wrong ID on either side is refused.
func TestAgent(t *testing.T) {
	ca := newCA(t)
	api := podVolume(t, ca, "api", "ECDSA-P256")
	backend := podVolume(t, ca, "backend", "ML-DSA-65")
	backendSecret := secretVolume(t, ca, "backend", "Ed25519")
	tests := []struct {
		name                  string
		serverPeer            string
		clientArgs            []string
		wantClient, wantError string
		wantServer            string
	}{
		{name: "each authorizes the other",
			serverPeer: backendID, clientArgs: []string{"-dir", backend, "-peer", apiID},
			wantClient: "connected to " + apiID + " (ECDSA key, certificate signed with ML-DSA-65, TLS 1.3); it says: hello " + backendID + ", over TLS 1.3\n",
			wantServer: "accepted " + backendID + " (ML-DSA key, certificate signed with ML-DSA-65, TLS 1.3)\n"},
		{name: "client on a cert-manager Secret",
			serverPeer: backendID, clientArgs: []string{"-dir", backendSecret, "-credential-bundle", "", "-peer", apiID},
			wantClient: "connected to " + apiID + " (ECDSA key, certificate signed with ML-DSA-65, TLS 1.3); it says: hello " + backendID + ", over TLS 1.3\n",
			wantServer: "accepted " + backendID + " (Ed25519 key, certificate signed with ML-DSA-65, TLS 1.3)\n"},
		{name: "client refuses the wrong server",
			serverPeer: backendID, clientArgs: []string{"-dir", backend, "-peer", "spiffe://cluster.local/ns/shop/sa/payments"},
			wantError:  `unexpected ID "` + apiID + `"`,
			wantServer: "remote error: tls: bad certificate\n"},
		{name: "server refuses the wrong client",
			serverPeer: "spiffe://cluster.local/ns/shop/sa/payments", clientArgs: []string{"-dir", backend, "-peer", apiID},
			wantError:  "remote error: tls: bad certificate",
			wantServer: `unexpected ID "` + backendID + `"` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, serverOut := startServer(t, api, tc.serverPeer)
			var out bytes.Buffer
			err := run(t.Context(), append(tc.clientArgs, "-dial", addr), &out, &bytes.Buffer{})
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Errorf("client: %v, want %q", err, tc.wantError)
				}
			} else if err != nil || out.String() != tc.wantClient {
				t.Errorf("client: %v, printed %q; want %q", err, out.String(), tc.wantClient)
			}
			if got := serverOut(); !strings.HasSuffix(got, tc.wantServer) {
				t.Errorf("server printed %q, want a line ending %q", got, tc.wantServer)
			}
		})
	}
}

// TestAgentUsage refuses what the agent cannot run.
func TestAgentUsage(t *testing.T) {
	dir := podVolume(t, newCA(t), "api", "ECDSA-P256")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no peer", args: []string{"-dir", dir, "-dial", "127.0.0.1:1"}, wantErr: `-peer "": `},
		{name: "neither listen nor dial", args: []string{"-dir", dir, "-peer", apiID}, wantErr: "give one of -listen and -dial"},
		{name: "both listen and dial", args: []string{"-dir", dir, "-peer", apiID, "-listen", ":0", "-dial", "127.0.0.1:1"}, wantErr: "give one of -listen and -dial"},
		{name: "no identity", args: []string{"-dir", t.TempDir(), "-peer", apiID, "-dial", "127.0.0.1:1"}, wantErr: "reading the credential bundle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// startServer runs the agent with -listen on 127.0.0.1 until the test ends; output returns what it
// printed on stdout once it has printed a line about a connection.
func startServer(t *testing.T, dir, peer string) (addr string, output func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-dir", dir, "-peer", peer, "-listen", "127.0.0.1:0"}, stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("server ended with %v, want context.Canceled", err)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, rest, ok := strings.Cut(stderr.String(), "listening on "); ok {
			addr, _, _ = strings.Cut(rest, "\n")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not listen within 10s: %s", stderr.String())
		}
	}
	return addr, func() string {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && stdout.String() == ""; {
			time.Sleep(10 * time.Millisecond)
		}
		return stdout.String()
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newCA(t *testing.T) *signer.CA {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := signer.CreateRootCA(signer.CAOptions{Algorithm: signer.MLDSA65, Subject: pkix.Name{CommonName: "Mesh Root"}, Duration: 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := signer.LoadCA(certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue signs the identity of service account sa in namespace shop for a new key of kind, as
// pq-issuer signs a PodCertificateRequest, and returns the PKCS#8 key and the chain.
func issue(t *testing.T, ca *signer.CA, sa, kind string) (keyPEM, chainPEM []byte) {
	t.Helper()
	key := testkeys.New(t, kind)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ca.Issue(signer.LeafRequest{CSR: csr, Namespace: "shop", Duration: time.Hour, Workload: &signer.Workload{ServiceAccount: sa}}, signer.Policy{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), issued.ChainPEM
}

// podVolume writes a podCertificate volume: credentialbundle.pem and trust-bundle.pem.
func podVolume(t *testing.T, ca *signer.CA, sa, kind string) string {
	t.Helper()
	key, chain := issue(t, ca, sa, kind)
	return writeFiles(t, map[string][]byte{"credentialbundle.pem": append(key, chain...), "trust-bundle.pem": ca.TrustAnchorPEM()})
}

// secretVolume writes a mounted cert-manager Secret: tls.crt, tls.key and ca.crt.
func secretVolume(t *testing.T, ca *signer.CA, sa, kind string) string {
	t.Helper()
	key, chain := issue(t, ca, sa, kind)
	return writeFiles(t, map[string][]byte{"tls.key": key, "tls.crt": chain, "ca.crt": ca.TrustAnchorPEM()})
}

func writeFiles(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

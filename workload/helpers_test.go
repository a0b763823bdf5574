package workload

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/internal/testkeys"
	"github.com/pq-issuer/pq-issuer/signer"
)

// testCA is an ML-DSA-65 root of pq-issuer's signer package, as an issuer's CA Secret holds it.
type testCA struct {
	ca      *signer.CA
	rootPEM []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	now := time.Now()
	certPEM, keyPEM, err := signer.CreateRootCA(signer.CAOptions{Algorithm: signer.MLDSA65, Subject: pkix.Name{CommonName: name}, Duration: 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := signer.LoadCA(certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{ca: ca, rootPEM: ca.TrustAnchorPEM()}
}

// credential is what the kubelet writes for a pod: key and chain.
type credential struct {
	keyPEM, chainPEM []byte
	leaf             *x509.Certificate
}

// bundle is the podCertificate credential bundle: the PKCS#8 key, then the chain.
func (c credential) bundle() []byte { return append(append([]byte{}, c.keyPEM...), c.chainPEM...) }

// issue signs a pod identity (namespace shop, service account sa, and dnsNames as the
// pq-issuer.dev/dns-names annotation adds them) for a new key of kind, as pq-issuer signs a
// PodCertificateRequest.
func (tc *testCA) issue(t testing.TB, kind, sa string, dnsNames ...string) credential {
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
	issued, err := tc.ca.Issue(signer.LeafRequest{CSR: csr, Namespace: "shop", Duration: 2 * time.Hour, Workload: &signer.Workload{ServiceAccount: sa, DNSNames: dnsNames}},
		signer.Policy{WorkloadDNSNames: []string{"*.{namespace}.svc"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return credential{keyPEM: pkcs8PEM(t, key), chainPEM: issued.ChainPEM, leaf: issued.Certificate}
}

func pkcs8PEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// volume is a directory written the way the kubelet's atomic writer writes a projected volume:
// each file is a symlink into ..data, itself a symlink to a timestamped directory that a rename
// replaces at once.
type volume struct {
	dir string
	gen int
}

func newVolume(t testing.TB, files map[string][]byte) *volume {
	t.Helper()
	v := &volume{dir: t.TempDir()}
	v.write(t, files)
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func (v *volume) path(name string) string { return filepath.Join(v.dir, name) }

// write publishes files as the kubelet does: a new directory, ..data_tmp pointing at it, and a
// rename over ..data.
func (v *volume) write(t testing.TB, files map[string][]byte) {
	t.Helper()
	v.gen++
	gen := fmt.Sprintf("..gen_%d", v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, gen), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(v.dir, gen, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(gen, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// serveTLS accepts connections with cfg until the test ends; each completed handshake is
// answered with the client's SPIFFE ID.
func serveTLS(t testing.TB, cfg *tls.Config) (addr string, handshakeErrs <-chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	errs := make(chan error, 10000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tc.Handshake(); err != nil {
					errs <- err
					return
				}
				fmt.Fprintf(tc, "hello %s\n", tc.ConnectionState().PeerCertificates[0].URIs[0])
			}()
		}
	}()
	return ln.Addr().String(), errs
}

// dial completes a handshake with cfg and reads the server's greeting.
func dial(addr string, cfg *tls.Config) (tls.ConnectionState, string, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 200)
	n, err := c.Read(buf)
	if err != nil {
		return tls.ConnectionState{}, "", err
	}
	return c.(*tls.Conn).ConnectionState(), string(buf[:n]), nil
}

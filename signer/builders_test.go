package signer

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// vectors are the RFC 9881 and hackathon vectors kept in the repository (testdata/vectors/mldsa/README.md
// says where each file comes from).
const vectors = "../testdata/vectors/mldsa"

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectors, name))
	if err != nil {
		t.Fatalf("reading test vector %s (testdata/vectors/mldsa in the repository): %v", name, err)
	}
	return b
}

// derToPEM wraps the DER vectors from the hackathon set.
func derToPEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// fixedNow keeps validity checks independent of the wall clock.
var fixedNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// newRoot builds a root CA through the production path.
func newRoot(t testing.TB, alg Algorithm, d time.Duration) *CA {
	t.Helper()
	c, k, err := CreateRootCA(CAOptions{Algorithm: alg, Subject: pkix.Name{CommonName: "Test Root " + string(alg)}, Duration: d}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := LoadCA(c, k, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// newIntermediate builds an intermediate under parent and loads it; its
// tls.crt and tls.key contents come back too.
func newIntermediate(t testing.TB, parent *CA, alg Algorithm, d time.Duration) (ca *CA, certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := parent.CreateIntermediate(CAOptions{Algorithm: alg, Subject: pkix.Name{CommonName: "Test Intermediate " + string(alg)}, Duration: d}, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	ca, err = LoadCA(certPEM, keyPEM, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	return ca, certPEM, keyPEM
}

// caPEM returns a CA's tls.crt and tls.key contents.
func caPEM(t testing.TB, ca *CA) (certPEM, keyPEM []byte) {
	t.Helper()
	for _, c := range ca.Chain {
		certPEM = append(certPEM, encodeCert(c.Raw)...)
	}
	keyPEM, err := ca.Key.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// certOptions shape a hand-made certificate for negative cases.
type certOptions struct {
	notBefore, notAfter time.Time
	isCA                bool
	keyUsage            x509.KeyUsage
}

// rawCert signs a certificate for pub by parent (self-signed when parent is
// nil) without our checks, to build CAs that LoadCA must refuse.
func rawCert(t testing.TB, subject string, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, o certOptions) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: subject},
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  o.isCA,
		KeyUsage:              o.keyUsage,
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// csrDER makes a CSR for key with a DNS and a SPIFFE URI SAN.
func csrDER(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	spiffe, _ := url.Parse("spiffe://cluster.local/ns/demo/sa/api")
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "api.demo.svc"},
		DNSNames: []string{"api.demo.svc", "api.demo.svc.cluster.local"},
		URIs:     []*url.URL{spiffe},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func csrPEM(t testing.TB, key crypto.Signer) []byte {
	return derToPEM("CERTIFICATE REQUEST", csrDER(t, key))
}

// leafRequest is the happy-path request for key, from namespace demo (its SPIFFE ID's).
func leafRequest(t testing.TB, key crypto.Signer, d time.Duration, usages ...string) LeafRequest {
	t.Helper()
	csr, err := ParseCSR(csrPEM(t, key))
	if err != nil {
		t.Fatal(err)
	}
	if len(usages) == 0 {
		usages = DefaultUsages()
	}
	return LeafRequest{CSR: csr, Namespace: "demo", Duration: d, Usages: usages}
}

// wantReason fails unless err is a signer error with reason want.
func wantReason(t testing.TB, err error, want Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want reason %s", want)
	}
	if got := ReasonOf(err); got != want {
		t.Fatalf("got reason %q (%v), want %s", got, err, want)
	}
}

package interop

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/mldsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/signer"
)

const hello = "hello"

// fileName turns a case name into a file name.
func fileName(name string) string { return strings.ReplaceAll(name, "/", "_") }

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// leafKind is a key type a workload may put in its CSR.
type leafKind struct {
	name     string
	nodeType string // Node's KeyObject.asymmetricKeyType
	generate func() (crypto.Signer, error)
}

var leafKinds = []leafKind{
	{"ECDSA-P256", "ec", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
	{"Ed25519", "ed25519", func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}},
	{"RSA-2048", "rsa", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
	{"ML-DSA-65", "ml-dsa-65", func() (crypto.Signer, error) { return mldsa.GenerateKey(mldsa.MLDSA65()) }},
}

// caLevel is a CA hierarchy: leaves are issued by the root, or by an
// intermediate under it, which puts the intermediate in tls.crt chains.
type caLevel struct {
	name         string
	root         signer.Algorithm
	intermediate signer.Algorithm
}

var caLevels = []caLevel{
	{name: "ML-DSA-44", root: signer.MLDSA44},
	{name: "ML-DSA-65", root: signer.MLDSA65},
	{name: "ML-DSA-87", root: signer.MLDSA87},
	{name: "ML-DSA-44-under-ML-DSA-87", root: signer.MLDSA87, intermediate: signer.MLDSA44},
}

// credential is an issued leaf with its PKCS#8 key, as cert-manager would
// store it in a kubernetes.io/tls Secret.
type credential struct {
	cn       string
	chainPEM []byte
	keyPEM   []byte
	cert     *x509.Certificate
	tls      tls.Certificate
}

type leafPair struct{ server, client credential }

// hierarchy is one CA level with leaves of every kind, plus leaves from an
// impostor CA with the same names and algorithms, which no verifier may
// mistake for the real one.
type hierarchy struct {
	level    caLevel
	caPEM    []byte
	pool     *x509.CertPool
	leaves   map[string]leafPair // by leafKind.name
	impostor leafPair            // ML-DSA-65 leaves from the impostor CA
}

const serverName = "localhost"

// fixture issues every certificate once per test binary: RSA key generation
// is the slow part and the certificates are only read.
var fixture = sync.OnceValues(func() ([]hierarchy, error) {
	now := time.Now()
	var hs []hierarchy
	for _, level := range caLevels {
		ca, err := newCA(level, now)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", level.name, err)
		}
		h := hierarchy{level: level, caPEM: ca.TrustAnchorPEM(), pool: x509.NewCertPool(), leaves: map[string]leafPair{}}
		h.pool.AppendCertsFromPEM(h.caPEM)
		for _, kind := range leafKinds {
			p, err := issuePair(ca, kind, now)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", level.name, kind.name, err)
			}
			h.leaves[kind.name] = p
		}
		impostorCA, err := newCA(level, now)
		if err != nil {
			return nil, fmt.Errorf("%s impostor: %w", level.name, err)
		}
		if h.impostor, err = issuePair(impostorCA, leafKinds[3], now); err != nil {
			return nil, fmt.Errorf("%s impostor: %w", level.name, err)
		}
		hs = append(hs, h)
	}
	return hs, nil
})

func hierarchies(t *testing.T) []hierarchy {
	t.Helper()
	hs, err := fixture()
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func newCA(level caLevel, now time.Time) (*signer.CA, error) {
	opts := signer.CAOptions{Algorithm: level.root, Subject: pkix.Name{CommonName: "pq-issuer interop root " + level.name}, Duration: 24 * time.Hour}
	certPEM, keyPEM, err := signer.CreateRootCA(opts, now)
	if err != nil {
		return nil, err
	}
	ca, err := signer.LoadCA(certPEM, keyPEM, now)
	if err != nil || level.intermediate == "" {
		return ca, err
	}
	opts = signer.CAOptions{Algorithm: level.intermediate, Subject: pkix.Name{CommonName: "pq-issuer interop intermediate " + level.name}, Duration: time.Hour}
	if certPEM, keyPEM, err = ca.CreateIntermediate(opts, now); err != nil {
		return nil, err
	}
	return signer.LoadCA(certPEM, keyPEM, now)
}

func issuePair(ca *signer.CA, kind leafKind, now time.Time) (leafPair, error) {
	server, err := issue(ca, kind, "server "+kind.name, true, now)
	if err != nil {
		return leafPair{}, err
	}
	client, err := issue(ca, kind, "client "+kind.name, false, now)
	return leafPair{server, client}, err
}

// issue goes the way a CertificateRequest does: key, CSR, signer checks,
// the certificate builder, signature.
func issue(ca *signer.CA, kind leafKind, cn string, server bool, now time.Time) (credential, error) {
	key, err := kind.generate()
	if err != nil {
		return credential{}, err
	}
	req := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	if server {
		req.DNSNames = []string{serverName}
		req.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, req, key)
	if err != nil {
		return credential{}, err
	}
	csr, err := signer.ParseCSR(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	if err != nil {
		return credential{}, err
	}
	issued, err := ca.Issue(signer.LeafRequest{CSR: csr, Duration: time.Hour, Usages: signer.DefaultUsages()}, signer.Policy{}, now)
	if err != nil {
		return credential{}, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return credential{}, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	pair, err := tls.X509KeyPair(issued.ChainPEM, keyPEM)
	if err != nil {
		return credential{}, err
	}
	return credential{cn: cn, chainPEM: issued.ChainPEM, keyPEM: keyPEM, cert: issued.Certificate, tls: pair}, nil
}

// files writes c's chain and key and the CA the holder trusts for its peer.
func (c credential) files(t *testing.T, dir, name string, trustPEM []byte) NodeCreds {
	t.Helper()
	return NodeCreds{
		Chain: writeFile(t, dir, name+".crt", c.chainPEM),
		Key:   writeFile(t, dir, name+".key", c.keyPEM),
		CA:    writeFile(t, dir, name+".ca.crt", trustPEM),
	}
}

// serverConfig and clientConfig are the Go endpoints: TLS 1.3 only, both
// sides authenticated.
func serverConfig(c credential, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{c.tls},
		ClientCAs:    clientCAs,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

func clientConfig(c credential, rootCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{c.tls},
		RootCAs:      rootCAs,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS13,
	}
}

// anonymous names the peer in a Go server's reply when the server did not
// ask for a client certificate.
const anonymous = "an anonymous client"

// goServerResult is what a Go server saw of its one connection.
type goServerResult struct {
	err    error
	state  tls.ConnectionState
	peerCN string
}

// goServer accepts one connection on 127.0.0.1 (a real socket, so a
// rejecting side's alert is buffered instead of blocking as on net.Pipe),
// answers one line and reports the handshake.
func goServer(t *testing.T, cfg *tls.Config) (addr string, result <-chan goServerResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan goServerResult, 1)
	go func() {
		ch <- serveOne(ln, cfg)
	}()
	return ln.Addr().String(), ch
}

func serveOne(ln net.Listener, cfg *tls.Config) goServerResult {
	raw, err := ln.Accept()
	if err != nil {
		return goServerResult{err: err}
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	conn := tls.Server(raw, cfg)
	if err := conn.Handshake(); err != nil {
		// Read until the client hangs up: closing with its data unread
		// would reset the connection and could destroy the alert before
		// the client reads it.
		io.Copy(io.Discard, raw)
		return goServerResult{err: err}
	}
	res := goServerResult{state: conn.ConnectionState(), peerCN: anonymous}
	if len(res.state.PeerCertificates) > 0 {
		res.peerCN = res.state.PeerCertificates[0].Subject.CommonName
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		res.err = err
		return res
	}
	_, res.err = fmt.Fprintf(conn, "go to %s: %s\n", res.peerCN, strings.TrimSpace(line))
	return res
}

// goClient dials addr, sends hello and returns the reply. With TLS 1.3 a
// server's rejection of the client certificate arrives after the client's
// handshake has completed, so it surfaces here as a read error.
func goClient(addr string, cfg *tls.Config) (reply string, state tls.ConnectionState, err error) {
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "", state, err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	conn := tls.Client(raw, cfg)
	if err := conn.Handshake(); err != nil {
		return "", state, err
	}
	state = conn.ConnectionState()
	if _, err := fmt.Fprintln(conn, hello); err != nil {
		return "", state, err
	}
	reply, err = bufio.NewReader(conn).ReadString('\n')
	return reply, state, err
}

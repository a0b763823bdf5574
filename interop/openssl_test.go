package interop

import (
	"bytes"
	"crypto/mldsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/signer"
)

// nodeKeyType is Node's name for an ML-DSA parameter set.
func nodeKeyType(a signer.Algorithm) string { return strings.ToLower(string(a)) }

func TestNodeVersion(t *testing.T) {
	n, err := node()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(n.path, "-p", "process.version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", n.path, err, out)
	}
	version := strings.TrimSpace(string(out))
	t.Logf("Node %s (%s), OpenSSL %s", version, n.path, n.openssl)
	if os.Getenv(NodeEnv) == "" && version != "v"+NodeVersion {
		t.Errorf("%s is Node %s, want v%s: delete %s and rerun to reinstall", n.path, version, NodeVersion, NodePrefix)
	}
}

// tamper flips a byte in the middle of the certificate's signature, leaving
// the TBS intact, so only signature verification can notice.
func tamper(t *testing.T, chainPEM []byte) []byte {
	t.Helper()
	block, rest := pem.Decode(chainPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	der := bytes.Clone(block.Bytes)
	i := len(der) - len(cert.Signature)/2
	der[i] ^= 0x01
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatalf("the tampered certificate no longer parses, so it would not test the signature: %v", err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), rest...)
}

// TestNodeVerifiesChains has OpenSSL check every issued chain link by link
// up to the trust anchor, and reject a tampered leaf and an impostor's leaf.
func TestNodeVerifiesChains(t *testing.T) {
	hs := hierarchies(t)
	dir := t.TempDir()
	var cases []NodeCase
	add := func(name, ca string, chainPEM []byte) {
		cases = append(cases, NodeCase{Name: name, Op: "verify", CA: ca, Chain: writeFile(t, dir, fileName(name)+".crt", chainPEM)})
	}
	for _, h := range hs {
		ca := writeFile(t, dir, h.level.name+".ca.crt", h.caPEM)
		for _, kind := range leafKinds {
			p := h.leaves[kind.name]
			add(h.level.name+"/"+kind.name+"/server", ca, p.server.chainPEM)
			add(h.level.name+"/"+kind.name+"/client", ca, p.client.chainPEM)
			add(h.level.name+"/"+kind.name+"/tampered", ca, tamper(t, p.server.chainPEM))
		}
		add(h.level.name+"/other-CA", ca, h.impostor.server.chainPEM)
	}
	results := RunBatch(t, cases)

	for _, h := range hs {
		t.Run(h.level.name, func(t *testing.T) {
			wantLinks := 1
			if h.level.intermediate != "" {
				wantLinks = 2
			}
			for _, kind := range leafKinds {
				for _, role := range []string{"server", "client"} {
					t.Run(kind.name+"/"+role, func(t *testing.T) {
						r := results[h.level.name+"/"+kind.name+"/"+role]
						if r.Error != nil || len(r.Links) != wantLinks {
							t.Fatalf("want %d verified links, got %v", wantLinks, r)
						}
						for _, l := range r.Links {
							if !l.CheckIssued || !l.Verify {
								t.Errorf("OpenSSL rejects %s: checkIssued=%v verify=%v", l.Subject, l.CheckIssued, l.Verify)
							}
						}
						if r.KeyType != kind.nodeType || r.CAKeyType != nodeKeyType(h.level.root) {
							t.Errorf("OpenSSL sees a %s leaf under a %s CA, want %s under %s", r.KeyType, r.CAKeyType, kind.nodeType, nodeKeyType(h.level.root))
						}
					})
				}
				t.Run(kind.name+"/tampered", func(t *testing.T) {
					r := results[h.level.name+"/"+kind.name+"/tampered"]
					if r.Error != nil || len(r.Links) != wantLinks {
						t.Fatalf("want %d links, got %v", wantLinks, r)
					}
					// The names still match; only the signature gives it away.
					if l := r.Links[0]; !l.CheckIssued || l.Verify {
						t.Errorf("tampered leaf: checkIssued=%v verify=%v, want true, false", l.CheckIssued, l.Verify)
					}
				})
			}
			t.Run("other-CA", func(t *testing.T) {
				r := results[h.level.name+"/other-CA"]
				if r.Error != nil || len(r.Links) != wantLinks {
					t.Fatalf("want %d links, got %v", wantLinks, r)
				}
				// The impostor chain is internally sound; its link to our
				// trust anchor must not be.
				for i, l := range r.Links {
					last := i == len(r.Links)-1
					if l.Verify == last {
						t.Errorf("link %d (%s): verify=%v, want %v", i, l.Subject, l.Verify, !last)
					}
				}
			})
		})
	}
}

// TestNodeMTLS runs a Node server and a Node client on each hierarchy and
// leaf kind, and checks each side rejects a peer from the impostor CA.
func TestNodeMTLS(t *testing.T) {
	hs := hierarchies(t)
	dir := t.TempDir()
	var cases []NodeCase
	for _, h := range hs {
		for _, kind := range leafKinds {
			p := h.leaves[kind.name]
			prefix := fileName(h.level.name + "/" + kind.name)
			cases = append(cases, NodeCase{
				Name: h.level.name + "/" + kind.name, Op: "mtls", Servername: serverName, Message: hello,
				Server: ptr(p.server.files(t, dir, prefix+"_server", h.caPEM)),
				Client: ptr(p.client.files(t, dir, prefix+"_client", h.caPEM)),
			})
		}
		p := h.leaves["ML-DSA-65"]
		prefix := h.level.name + "_impostor"
		cases = append(cases,
			NodeCase{
				Name: h.level.name + "/client-from-other-CA", Op: "mtls", Servername: serverName, Message: hello,
				Server: ptr(p.server.files(t, dir, prefix+"_real_server", h.caPEM)),
				Client: ptr(h.impostor.client.files(t, dir, prefix+"_client", h.caPEM)),
			},
			NodeCase{
				Name: h.level.name + "/server-from-other-CA", Op: "mtls", Servername: serverName, Message: hello,
				Server: ptr(h.impostor.server.files(t, dir, prefix+"_server", h.caPEM)),
				Client: ptr(p.client.files(t, dir, prefix+"_real_client", h.caPEM)),
			})
	}
	results := RunBatch(t, cases)

	for _, h := range hs {
		t.Run(h.level.name, func(t *testing.T) {
			for _, kind := range leafKinds {
				t.Run(kind.name, func(t *testing.T) {
					p := h.leaves[kind.name]
					checkAccepted(t, results[h.level.name+"/"+kind.name], p.server.cn, "node server to "+p.client.cn+" (authorized=true)")
				})
			}
			t.Run("client-from-other-CA", func(t *testing.T) {
				checkNodeServerRejected(t, results[h.level.name+"/client-from-other-CA"], opensslNoIssuer(h.level))
			})
			t.Run("server-from-other-CA", func(t *testing.T) {
				checkNodeRejectedServer(t, results[h.level.name+"/server-from-other-CA"], opensslNoIssuer(h.level))
			})
		})
	}
}

// checkAccepted asserts a Node client completed an authorised TLS 1.3
// handshake with the expected server and got the server's reply, which
// names the client certificate the server accepted.
func checkAccepted(t *testing.T, r NodeResult, serverCN, replyPrefix string) {
	t.Helper()
	if r.Error != nil || len(r.ServerErrors) != 0 {
		t.Fatalf("handshake failed: client %v, server %v", r.Error, r.ServerErrors)
	}
	if !r.Authorized || r.Protocol != "TLSv1.3" || r.PeerCN != serverCN {
		t.Errorf("client saw authorized=%v protocol=%q peer %q, want true, TLSv1.3, %q", r.Authorized, r.Protocol, r.PeerCN, serverCN)
	}
	if want := replyPrefix + ": " + hello + "\n"; r.Reply != want {
		t.Errorf("reply %q, want %q", r.Reply, want)
	}
}

// opensslNoIssuer is OpenSSL's verdict on a chain from the impostor CA. Its
// root has our root's name but another key identifier, so OpenSSL finds no
// issuer at all rather than a bad signature: for a lone leaf that is
// "unable to verify the first certificate", for a leaf and intermediate
// "unable to get local issuer certificate".
func opensslNoIssuer(l caLevel) string {
	if l.intermediate != "" {
		return "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
	}
	return "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
}

// checkNodeServerRejected asserts a Node server refused the client's chain
// for want, and the client, which did accept the server, got no reply.
func checkNodeServerRejected(t *testing.T, r NodeResult, want string) {
	t.Helper()
	if len(r.ServerErrors) != 1 || r.ServerErrors[0].AuthorizationError != want {
		t.Errorf("Node server errors %v, want one with authorizationError %s", r.ServerErrors, want)
	}
	if !r.Authorized || r.Reply != "" {
		t.Errorf("Node client: authorized=%v reply %q, want true and no reply", r.Authorized, r.Reply)
	}
}

// checkNodeRejectedServer asserts a Node client refused the server's chain
// for want.
func checkNodeRejectedServer(t *testing.T, r NodeResult, want string) {
	t.Helper()
	if r.Error == nil || r.Error.Code != want || r.Authorized || r.Reply != "" {
		t.Errorf("Node client: error %v authorized=%v reply %q, want %s", r.Error, r.Authorized, r.Reply, want)
	}
}

func ptr[T any](v T) *T { return &v }

// TestNodeGeneratedCAKeys takes CA keys generated by OpenSSL, loads them with
// the signer, makes a self-signed CA in Go around each, issues a leaf and has
// OpenSSL verify the result.
func TestNodeGeneratedCAKeys(t *testing.T) {
	dir := t.TempDir()
	var gen []NodeCase
	for _, alg := range signer.Algorithms() {
		name := string(alg)
		gen = append(gen, NodeCase{Name: name, Op: "keygen", Type: nodeKeyType(alg), Key: filepath.Join(dir, name+".key"), Pub: filepath.Join(dir, name+".pub")})
	}
	generated := RunBatch(t, gen)

	now := time.Now()
	var verify []NodeCase
	for i, alg := range signer.Algorithms() {
		c := gen[i]
		if r := generated[c.Name]; r.Error != nil || r.KeyType != c.Type {
			t.Fatalf("node keygen %s: %v", c.Type, r)
		}
		keyPEM, err := os.ReadFile(c.Key)
		if err != nil {
			t.Fatal(err)
		}
		key, err := signer.ParsePrivateKeyPEM(keyPEM)
		if err != nil {
			t.Fatalf("%s key from OpenSSL does not load: %v\n%s", alg, err, keyPEM)
		}
		if key.Algorithm() != alg {
			t.Fatalf("OpenSSL's %s key loads as %s", alg, key.Algorithm())
		}
		if want := readSPKI(t, c.Pub); !want.Equal(key.Public()) {
			t.Fatalf("the signer derives a different %s public key than OpenSSL", alg)
		}
		caPEM := selfSign(t, key, "OpenSSL-keyed "+string(alg), now)
		ca, err := signer.LoadCA(caPEM, keyPEM, now)
		if err != nil {
			t.Fatalf("LoadCA with OpenSSL's %s key: %v", alg, err)
		}
		caFile := writeFile(t, dir, c.Name+".ca.crt", caPEM)
		// The CA's self-signature, then a leaf of each kind it issued.
		verify = append(verify, NodeCase{Name: c.Name + "/self-signed", Op: "verify", Chain: caFile, CA: caFile})
		for _, kind := range leafKinds {
			leaf, err := issue(ca, kind, "leaf "+kind.name, true, now)
			if err != nil {
				t.Fatalf("%s CA signing a %s leaf: %v", alg, kind.name, err)
			}
			verify = append(verify, NodeCase{Name: c.Name + "/" + kind.name, Op: "verify", CA: caFile, Chain: writeFile(t, dir, c.Name+"_"+kind.name+".crt", leaf.chainPEM)})
		}
	}
	results := RunBatch(t, verify)

	for _, c := range verify {
		t.Run(c.Name, func(t *testing.T) {
			r := results[c.Name]
			if r.Error != nil || len(r.Links) != 1 || !r.Links[0].CheckIssued || !r.Links[0].Verify {
				t.Errorf("OpenSSL does not verify it: %v", r)
			}
		})
	}
}

func readSPKI(t *testing.T, path string) *mldsa.PublicKey {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(readPEMBlock(t, path))
	if err != nil {
		t.Fatal(err)
	}
	k, ok := pub.(*mldsa.PublicKey)
	if !ok {
		t.Fatalf("%s holds a %T", path, pub)
	}
	return k
}

// selfSign makes a root CA certificate for key directly with crypto/x509,
// as an operator bringing their own key would with any tool.
func selfSign(t *testing.T, key *signer.Key, cn string, now time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("self-signing with the %s: %v", key, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestRFC9881Vectors signs with the RFC 9881 example keys on both sides and
// verifies across: OpenSSL signs with each key format, Go verifies with the
// example certificate's public key, and the other way round.
func TestRFC9881Vectors(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	vectors := filepath.Join(root, "testdata", "vectors", "mldsa", "rfc9881-lamps-wg")
	data := []byte("pq-issuer cross-implementation check")

	type goSigned struct {
		alg  signer.Algorithm
		cert *x509.Certificate
	}
	var cases []NodeCase
	var certs []goSigned
	for _, alg := range signer.Algorithms() {
		certFile := filepath.Join(vectors, string(alg)+".crt.pem")
		cert := readCert(t, certFile)
		certs = append(certs, goSigned{alg, cert})
		for _, format := range []string{"both", "seed", "expanded"} {
			cases = append(cases, NodeCase{Name: string(alg) + "/" + format + "/node-signs", Op: "sign", Key: filepath.Join(vectors, string(alg)+"-"+format+".priv.pem"), Data: data})
		}
		// The signer reads the both format; OpenSSL checks what it signs.
		keyPEM, err := os.ReadFile(filepath.Join(vectors, string(alg)+"-both.priv.pem"))
		if err != nil {
			t.Fatal(err)
		}
		key, err := signer.ParsePrivateKeyPEM(keyPEM)
		if err != nil {
			t.Fatalf("the signer rejects the RFC 9881 %s both key: %v", alg, err)
		}
		sig, err := key.Sign(nil, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases,
			NodeCase{Name: string(alg) + "/go-signs", Op: "verifySignature", Cert: certFile, Data: data, Signature: sig},
			NodeCase{Name: string(alg) + "/go-signs-other-data", Op: "verifySignature", Cert: certFile, Data: append([]byte("not "), data...), Signature: sig},
			NodeCase{Name: string(alg) + "/certificate", Op: "verify", Chain: certFile, CA: certFile})
	}
	results := RunBatch(t, cases)

	for _, c := range certs {
		t.Run(string(c.alg), func(t *testing.T) {
			pub := c.cert.PublicKey.(*mldsa.PublicKey)
			for _, format := range []string{"both", "seed", "expanded"} {
				t.Run(format+"/node-signs", func(t *testing.T) {
					r := results[string(c.alg)+"/"+format+"/node-signs"]
					if r.Error != nil || r.KeyType != nodeKeyType(c.alg) {
						t.Fatalf("OpenSSL cannot sign with it: %v", r)
					}
					if !bytes.Equal(r.SPKI, c.cert.RawSubjectPublicKeyInfo) {
						t.Errorf("OpenSSL derives a public key that differs from the example certificate's")
					}
					if err := mldsa.Verify(pub, data, r.Signature, nil); err != nil {
						t.Errorf("Go rejects OpenSSL's signature: %v", err)
					}
					if err := mldsa.Verify(pub, data[1:], r.Signature, nil); err == nil {
						t.Errorf("Go accepts OpenSSL's signature for other data")
					}
				})
			}
			t.Run("go-signs", func(t *testing.T) {
				if r := results[string(c.alg)+"/go-signs"]; r.Error != nil || !r.OK {
					t.Errorf("OpenSSL rejects the signer's signature: %v", r)
				}
				if r := results[string(c.alg)+"/go-signs-other-data"]; r.Error != nil || r.OK {
					t.Errorf("OpenSSL accepts the signer's signature for other data: %v", r)
				}
			})
			t.Run("certificate", func(t *testing.T) {
				r := results[string(c.alg)+"/certificate"]
				if r.Error != nil || len(r.Links) != 1 || !r.Links[0].Verify || !r.Links[0].CheckIssued {
					t.Errorf("OpenSSL does not verify the example self-signed certificate: %v", r)
				}
			})
		})
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(readPEMBlock(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// readPEMBlock returns the DER of the first PEM block of a file.
func readPEMBlock(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s is not PEM", path)
	}
	return block.Bytes
}

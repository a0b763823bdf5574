package main

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pq-issuer/pq-issuer/signer"
)

// fixture is a root CA, an intermediate and an ML-DSA-65 CSR, made once and
// copied into each case's directory.
type fixture struct {
	root, issuing, csr string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{root: filepath.Join(dir, "root"), issuing: filepath.Join(dir, "issuing"), csr: filepath.Join(dir, "api", "csr.pem")}
	mustRun(t, "ca", "create", "--subject", "CN=Mesh Root", "--out-dir", f.root)
	mustRun(t, "ca", "intermediate", "--ca-dir", f.root, "--subject", "CN=Mesh Issuing CA", "--out-dir", f.issuing)
	mustRun(t, "csr", "--common-name", "api", "--dns", "api.demo.svc", "--out-dir", filepath.Join(dir, "api"))
	return f
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tamperCSR flips a bit in the CSR's signature, keeping it well-formed.
func tamperCSR(t *testing.T, csrPEM []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	der := slices.Clone(block.Bytes)
	der[len(der)-10] ^= 0x01 // the signature BIT STRING ends the structure
	if _, err := x509.ParseCertificateRequest(der); err != nil {
		t.Fatalf("the tampered CSR must still parse: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// expiredCA writes an ML-DSA CA into dir that expired yesterday, built
// directly with crypto/x509 since the signer refuses to create one.
func expiredCA(t *testing.T, dir string) {
	t.Helper()
	key, err := signer.GenerateKey(signer.MLDSA65)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "Old Root"},
		NotBefore:             now.Add(-48 * time.Hour),
		NotAfter:              now.Add(-24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := key.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, filepath.Join(dir, "tls.key"), keyPEM)
}

// TestBadInput checks that every bad input fails with the right exit code
// and one line on stderr that names the problem, and leaves the directory
// exactly as it was.
func TestBadInput(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name string
		// setup prepares dir and returns the command line.
		setup      func(t *testing.T, dir string) []string
		wantCode   int
		wantStderr string
	}{
		{
			name: "unknown CA algorithm",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "create", "--algorithm", "ML-DSA-99", "--subject", "CN=x", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: `kubectl-pq: ca create: --algorithm: unknown algorithm "ML-DSA-99"`,
		},
		{
			name: "classical CA algorithm",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "create", "--algorithm", "ECDSA-P256", "--subject", "CN=x", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: `unknown algorithm "ECDSA-P256": use one of ML-DSA-44, ML-DSA-65, ML-DSA-87`,
		},
		{
			name: "bad subject",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "create", "--subject", "Mesh Root", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: `kubectl-pq: ca create: --subject: subject "Mesh Root": "Mesh Root" is not ATTRIBUTE=value`,
		},
		{
			name: "unknown subject attribute",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "create", "--subject", "CN=x,DC=example", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: `unknown attribute "DC"`,
		},
		{
			name: "subject without CN",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "create", "--subject", "O=Example", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: `--subject "O=Example" has no common name`,
		},
		{
			name: "missing --out-dir",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "create", "--subject", "CN=x"}
			},
			wantCode: 2, wantStderr: "kubectl-pq: ca create: --out-dir is required",
		},
		{
			name: "negative duration",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "create", "--subject", "CN=x", "--duration", "-1h", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: "--duration -1h0m0s is not positive",
		},
		{
			name: "existing CA files without --force",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "out", "tls.key"), []byte("keep me"))
				return []string{"ca", "create", "--subject", "CN=x", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 1, wantStderr: "tls.key already exists; use --force to overwrite it",
		},
		{
			name: "existing csr.pem without --force",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "out", "csr.pem"), []byte("keep me"))
				return []string{"csr", "--dns", "api", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 1, wantStderr: "csr.pem already exists; use --force to overwrite it",
		},
		{
			name: "--out-dir is a file",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "out"), []byte("a file"))
				return []string{"csr", "--dns", "api", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 1, wantStderr: "is not a directory",
		},
		{
			name: "unknown CSR algorithm",
			setup: func(t *testing.T, dir string) []string {
				return []string{"csr", "--algorithm", "DSA-1024", "--dns", "api", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: `kubectl-pq: csr: --algorithm: unknown algorithm "DSA-1024"`,
		},
		{
			name: "CSR naming nobody",
			setup: func(t *testing.T, dir string) []string {
				return []string{"csr", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: "the request names nobody",
		},
		{
			name: "relative URI",
			setup: func(t *testing.T, dir string) []string {
				return []string{"csr", "--uri", "ns/demo/sa/api", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: `--uri "ns/demo/sa/api" is not an absolute URI`,
		},
		{
			name: "bad IP",
			setup: func(t *testing.T, dir string) []string {
				return []string{"csr", "--ip", "10.0.0.300", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 2, wantStderr: `--ip "10.0.0.300" is not an IP address`,
		},
		{
			name: "garbage CSR",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "csr.pem"), []byte("this is not a CSR\n"))
				return []string{"sign", "--ca-dir", fx.issuing, "--csr", filepath.Join(dir, "csr.pem")}
			},
			wantCode: 1, wantStderr: "the CSR is not PEM",
		},
		{
			name: "certificate instead of CSR",
			setup: func(t *testing.T, dir string) []string {
				return []string{"sign", "--ca-dir", fx.issuing, "--csr", filepath.Join(fx.root, "tls.crt")}
			},
			wantCode: 1, wantStderr: `the CSR PEM block is "CERTIFICATE"`,
		},
		{
			name: "CSR with a tampered signature",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "csr.pem"), tamperCSR(t, readFile(t, fx.csr)))
				return []string{"sign", "--ca-dir", fx.issuing, "--csr", filepath.Join(dir, "csr.pem")}
			},
			wantCode: 1, wantStderr: "signature does not verify with its own public key",
		},
		{
			name: "missing CSR file",
			setup: func(t *testing.T, dir string) []string {
				return []string{"sign", "--ca-dir", fx.issuing, "--csr", filepath.Join(dir, "nope.pem")}
			},
			wantCode: 1, wantStderr: "kubectl-pq: sign: reading the CSR: open ",
		},
		{
			name: "--ca-dir without key",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "ca", "tls.crt"), readFile(t, filepath.Join(fx.issuing, "tls.crt")))
				return []string{"sign", "--ca-dir", filepath.Join(dir, "ca"), "--csr", fx.csr}
			},
			wantCode: 1, wantStderr: "kubectl-pq: sign: reading the CA key: open ",
		},
		{
			name: "CA key of another CA",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "ca", "tls.crt"), readFile(t, filepath.Join(fx.issuing, "tls.crt")))
				writeFile(t, filepath.Join(dir, "ca", "tls.key"), readFile(t, filepath.Join(fx.root, "tls.key")))
				return []string{"sign", "--ca-dir", filepath.Join(dir, "ca"), "--csr", fx.csr}
			},
			wantCode: 1, wantStderr: "does not belong to the CA certificate",
		},
		{
			name: "leaf directory as CA",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "ca", "tls.crt"), []byte(mustRun(t, "sign", "--ca-dir", fx.issuing, "--csr", fx.csr).stdout))
				writeFile(t, filepath.Join(dir, "ca", "tls.key"), readFile(t, filepath.Join(filepath.Dir(fx.csr), "tls.key")))
				return []string{"sign", "--ca-dir", filepath.Join(dir, "ca"), "--csr", fx.csr}
			},
			wantCode: 1, wantStderr: "is not a CA certificate",
		},
		{
			name: "sign with an expired CA",
			setup: func(t *testing.T, dir string) []string {
				expiredCA(t, filepath.Join(dir, "ca"))
				return []string{"sign", "--ca-dir", filepath.Join(dir, "ca"), "--csr", fx.csr}
			},
			wantCode: 1, wantStderr: "the CA certificate CN=Old Root expired at ",
		},
		{
			name: "intermediate under an expired CA",
			setup: func(t *testing.T, dir string) []string {
				expiredCA(t, filepath.Join(dir, "ca"))
				return []string{"ca", "intermediate", "--ca-dir", filepath.Join(dir, "ca"), "--subject", "CN=x", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 1, wantStderr: "kubectl-pq: ca intermediate: loading the CA from ",
		},
		{
			name: "intermediate under a pathLen 0 CA",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "intermediate", "--ca-dir", fx.issuing, "--subject", "CN=x", "--out-dir", filepath.Join(dir, "out")}
			},
			wantCode: 1, wantStderr: "CN=Mesh Issuing CA has pathLen 0: an intermediate under CN=Mesh Issuing CA would not verify",
		},
		{
			name: "unknown usage",
			setup: func(t *testing.T, dir string) []string {
				return []string{"sign", "--ca-dir", fx.issuing, "--csr", fx.csr, "--usages", "digital signature,world domination"}
			},
			wantCode: 2, wantStderr: `--usages: unknown usage "world domination"`,
		},
		{
			name: "sign without --csr",
			setup: func(t *testing.T, dir string) []string {
				return []string{"sign", "--ca-dir", fx.issuing}
			},
			wantCode: 2, wantStderr: "kubectl-pq: sign: --csr is required",
		},
		{
			name: "invalid Secret name",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "secret", "--ca-dir", fx.issuing, "--name", "Mesh_CA"}
			},
			wantCode: 2, wantStderr: `--name "Mesh_CA" is not a valid Secret name`,
		},
		{
			name: "invalid namespace",
			setup: func(t *testing.T, dir string) []string {
				return []string{"ca", "secret", "--ca-dir", fx.issuing, "--name", "mesh-ca", "--namespace", "cert.manager"}
			},
			wantCode: 2, wantStderr: `--namespace "cert.manager" is not a valid namespace name`,
		},
		{
			name: "Secret of an expired CA",
			setup: func(t *testing.T, dir string) []string {
				expiredCA(t, filepath.Join(dir, "ca"))
				return []string{"ca", "secret", "--ca-dir", filepath.Join(dir, "ca"), "--name", "mesh-ca"}
			},
			wantCode: 1, wantStderr: "expired at",
		},
		{
			name: "inspect garbage",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "x"), []byte("hello\n"))
				return []string{"inspect", filepath.Join(dir, "x")}
			},
			wantCode: 1, wantStderr: "no PEM blocks found",
		},
		{
			name: "inspect a ConfigMap",
			setup: func(t *testing.T, dir string) []string {
				writeFile(t, filepath.Join(dir, "x"), []byte("apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n"))
				return []string{"inspect", filepath.Join(dir, "x")}
			},
			wantCode: 1, wantStderr: "the input is a ConfigMap manifest, not a Secret",
		},
		{
			name: "inspect two files",
			setup: func(t *testing.T, dir string) []string {
				return []string{"inspect", fx.csr, fx.csr}
			},
			wantCode: 2, wantStderr: "inspect takes one file, got 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := tt.setup(t, dir)
			before := listFiles(t, dir)
			r := runCLI(t, args...)
			if r.code != tt.wantCode {
				t.Errorf("exit code %d, want %d", r.code, tt.wantCode)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tt.wantStderr)
			}
			if !strings.HasPrefix(r.stderr, "kubectl-pq: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
				t.Errorf("stderr must be one line starting with 'kubectl-pq: ', got %q", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("nothing may be printed on stdout on failure, got %q", r.stdout)
			}
			if after := listFiles(t, dir); !slices.Equal(before, after) {
				t.Errorf("the command changed the directory:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// TestForce checks that --force replaces both files, and that without it
// the existing files survive unchanged.
func TestForce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	mustRun(t, "ca", "create", "--subject", "CN=First", "--out-dir", dir)
	first := readFile(t, filepath.Join(dir, "tls.crt"))
	if r := runCLI(t, "ca", "create", "--subject", "CN=Second", "--out-dir", dir); r.code != 1 {
		t.Fatalf("overwriting without --force: exit %d, want 1", r.code)
	}
	if got := readFile(t, filepath.Join(dir, "tls.crt")); string(got) != string(first) {
		t.Fatalf("tls.crt changed although --force was not given")
	}
	mustRun(t, "ca", "create", "--subject", "CN=Second", "--out-dir", dir, "--force")
	ca, err := signer.LoadCA(readFile(t, filepath.Join(dir, "tls.crt")), readFile(t, filepath.Join(dir, "tls.key")), time.Now())
	if err != nil {
		t.Fatalf("after --force the pair does not load: %v", err)
	}
	if ca.Certificate.Subject.CommonName != "Second" {
		t.Errorf("after --force the CA is %s, want CN=Second", ca.Certificate.Subject)
	}
	if got := fileMode(t, filepath.Join(dir, "tls.key")); got != 0o600 {
		t.Errorf("tls.key has mode %o after --force, want 600", got)
	}
}

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/mldsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/pq-issuer/pq-issuer/signer"
)

var oidMLDSA65 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}

// mldsaPKCS8 wraps an RFC 9881 private key CHOICE in PKCS#8.
func mldsaPKCS8(t *testing.T, choice []byte) []byte {
	t.Helper()
	der, err := asn1.Marshal(struct {
		Version    int
		Algorithm  pkix.AlgorithmIdentifier
		PrivateKey []byte
	}{0, pkix.AlgorithmIdentifier{Algorithm: oidMLDSA65}, choice})
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mldsaKeys returns one ML-DSA-65 key in the three RFC 9881 formats and a
// corrupt "both", with its seed and expanded key.
func mldsaKeys(t *testing.T) (seed []byte, formats map[string][]byte) {
	t.Helper()
	k, err := mldsa.GenerateKey(mldsa.MLDSA65())
	if err != nil {
		t.Fatal(err)
	}
	seed = k.Bytes()
	_, sk := mldsa65.Scheme().DeriveKey(seed)
	expanded, err := sk.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), expanded...)
	bad[100] ^= 1
	seedDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	type both struct{ Seed, Expanded []byte }
	return seed, map[string][]byte{
		"seed":         pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: seedDER}),
		"both":         mldsaPKCS8(t, mustMarshal(t, both{seed, expanded})),
		"expanded":     mldsaPKCS8(t, mustMarshal(t, expanded)),
		"corrupt both": mldsaPKCS8(t, mustMarshal(t, both{seed, bad})),
	}
}

func TestInspectPrivateKeys(t *testing.T) {
	seed, mlKeys := mldsaKeys(t)
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecSEC1, _ := x509.MarshalECPrivateKey(ec)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		input []byte
		want  []string
	}{
		{"ML-DSA seed", mlKeys["seed"], []string{"Algorithm:            ML-DSA-65", "PKCS#8 v1, RFC 9881 seed format (32-byte seed)", "pq-issuer:            can use it"}},
		{"ML-DSA both", mlKeys["both"], []string{"ML-DSA-65", "RFC 9881 both format (seed and expanded key)", "can use it"}},
		{"ML-DSA expanded only", mlKeys["expanded"], []string{"ML-DSA-65", "RFC 9881 expandedKey format (no seed)", "cannot use it: the ML-DSA-65 private key holds only the expanded key"}},
		{"ML-DSA both, halves disagree", mlKeys["corrupt both"], []string{"both format", "cannot use it: ", "do not belong together"}},
		{"ECDSA PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPKCS8}), []string{"Algorithm:            ECDSA P-384", "Format:               PKCS#8 v1"}},
		{"ECDSA SEC 1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecSEC1}), []string{"ECDSA P-384", "SEC 1"}},
		{"RSA PKCS#1", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), []string{"RSA 2048-bit", "PKCS#1"}},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0}}), []string{"encrypted PKCS#8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLIWith(t, strings.NewReader(string(tt.input)), time.Now(), "inspect", "-")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
			// Key material must never be printed, in any encoding.
			block, _ := pem.Decode(tt.input)
			body := base64.StdEncoding.EncodeToString(block.Bytes)
			for _, secret := range []string{hex.EncodeToString(seed), hexColons(seed), body} {
				if strings.Contains(strings.ReplaceAll(r.stdout, "\n", ""), secret[:min(len(secret), 32)]) {
					t.Errorf("output contains key material:\n%s", r.stdout)
				}
			}
		})
	}
}

func rootCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	return parseCerts(t, certPEM)[0]
}

// TestInspectChecks covers verdicts on chains and CSRs that are not fine.
func TestInspectChecks(t *testing.T) {
	fx := newFixture(t)
	rootPEM := readFile(t, filepath.Join(fx.root, "tls.crt"))
	issuingPEM := readFile(t, filepath.Join(fx.issuing, "tls.crt"))
	csrPEM := readFile(t, fx.csr)
	leafPEM := mustRun(t, "sign", "--ca-dir", fx.issuing, "--csr", fx.csr).stdout
	leafOnly, _ := pem.Decode([]byte(leafPEM))
	otherRoot := filepath.Join(t.TempDir(), "other")
	mustRun(t, "ca", "create", "--subject", "CN=Other Root", "--algorithm", "ML-DSA-87", "--out-dir", otherRoot)
	ecDir := filepath.Join(t.TempDir(), "ec")
	mustRun(t, "csr", "--algorithm", "ECDSA-P256", "--common-name", "legacy", "--email", "ops@example.com", "--out-dir", ecDir)

	tests := []struct {
		name     string
		input    string
		now      time.Time
		wantCode int
		want     []string
	}{
		{
			name:  "leaf then the wrong CA",
			input: string(pem.EncodeToMemory(leafOnly)) + string(readFile(t, filepath.Join(otherRoot, "tls.crt"))),
			now:   time.Now(),
			want:  []string{"Signed by next:       no: not signed by [2] CN=Other Root", "Public key:           ML-DSA-87 (2592-byte public key)"},
		},
		{
			name:  "intermediate chain, root missing",
			input: string(issuingPEM[:len(issuingPEM)-len(rootPEM)]),
			now:   time.Now(),
			want:  []string{"- (last certificate; its issuer CN=Mesh Root is not in the input)"},
		},
		{
			name:  "expired",
			input: string(rootPEM),
			now:   time.Now().Add(20 * 365 * 24 * time.Hour),
			want:  []string{"(EXPIRED "},
		},
		{
			name:  "not yet valid",
			input: string(rootPEM),
			now:   time.Now().Add(-time.Hour),
			want:  []string{"(NOT YET VALID: starts in "},
		},
		{
			name:  "tampered CSR",
			input: string(tamperCSR(t, csrPEM)),
			now:   time.Now(),
			want:  []string{"Signature:            DOES NOT VERIFY with its own public key"},
		},
		{
			name:  "ML-DSA CSR and its key",
			input: string(csrPEM) + string(readFile(t, filepath.Join(filepath.Dir(fx.csr), "tls.key"))),
			now:   time.Now(),
			want: []string{"[1] CERTIFICATE REQUEST", "Signature algorithm:  ML-DSA-65", "Signature:            verifies (proves possession of the private key)",
				"pq-issuer:            would accept it", "DNS names:            api.demo.svc", "Belongs to:           [1] CSR CN=api"},
		},
		{
			name:  "ECDSA CSR and its key",
			input: string(readFile(t, filepath.Join(ecDir, "csr.pem"))) + string(readFile(t, filepath.Join(ecDir, "tls.key"))),
			now:   time.Now(),
			want:  []string{"Public key:           ECDSA P-256", "Signature algorithm:  ECDSA-SHA256", "Emails:               ops@example.com", "Belongs to:           [1] CSR CN=legacy"},
		},
		{
			name:  "key of another certificate",
			input: string(rootPEM) + string(readFile(t, filepath.Join(fx.issuing, "tls.key"))),
			now:   time.Now(),
			want:  []string{"Belongs to:           none of the certificates or CSRs in the input"},
		},
		{
			name:     "unparseable certificate among good ones",
			input:    string(rootPEM) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}})),
			now:      time.Now(),
			wantCode: 1,
			want:     []string{"[1] CERTIFICATE", "[2] CERTIFICATE", "Error:                cannot parse the certificate"},
		},
		{
			name:  "public key of the root",
			input: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rootCert(t, rootPEM).RawSubjectPublicKeyInfo})) + string(rootPEM),
			now:   time.Now(),
			want:  []string{"[1] PUBLIC KEY", "Algorithm:            ML-DSA-65", "Belongs to:           [2] CN=Mesh Root"},
		},
		{
			name:  "other PEM block",
			input: string(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: []byte{1}})),
			now:   time.Now(),
			want:  []string{"[1] X509 CRL", "not a certificate, CSR or key; skipped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLIWith(t, strings.NewReader(tt.input), tt.now, "inspect")
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

// TestInspectSecretManifests feeds the manifests users will paste: kubectl
// get -o yaml and -o json output, hand-written stringData, and lists.
func TestInspectSecretManifests(t *testing.T) {
	fx := newFixture(t)
	leaf := mustRun(t, "sign", "--ca-dir", fx.issuing, "--csr", fx.csr).stdout
	rootPEM := string(readFile(t, filepath.Join(fx.root, "tls.crt")))
	keyPEM := string(readFile(t, filepath.Join(filepath.Dir(fx.csr), "tls.key")))
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	// fold splits a long value over lines as some YAML writers do.
	fold := func(s, indent string) string {
		var lines []string
		for len(s) > 76 {
			lines, s = append(lines, s[:76]), s[76:]
		}
		return strings.Join(append(lines, s), "\n"+indent)
	}
	indent := func(s, prefix string) string {
		return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
	}

	kubectlYAML := fmt.Sprintf(`apiVersion: v1
data:
  ca.crt: %s
  "tls.crt": %s
  tls.key: '%s'
kind: Secret
metadata:
  annotations:
    cert-manager.io/issuer-name: mesh-ca
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"v1","kind":"Secret","metadata":{"name":"wrong"}}
  creationTimestamp: "2026-11-23T03:00:00Z"
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:data:
        .: {}
        f:tls.crt: {}
    manager: cert-manager-certificates-issuing
  name: api-tls
  namespace: demo
# a comment
type: kubernetes.io/tls
`, b64(rootPEM), fold(b64(leaf), "    "), b64(keyPEM))

	stringDataYAML := "---\n# hand written\napiVersion: v1\nkind: Secret\nmetadata:\n  name: api-tls\nstringData:\n  tls.crt: |\n" +
		indent(leaf, "    ") + "\n  ca.crt: |-\n" + indent(rootPEM, "    ") + "\n\n  tls.key: |\n" + indent(keyPEM, "    ") + "\n---\n"

	jsonSecret := func(name string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":%q,"namespace":"demo"},"type":"kubernetes.io/tls","data":{"tls.crt":%q,"ca.crt":%q,"tls.key":%q,"extra":%q}}`,
			name, b64(leaf), b64(rootPEM), b64(keyPEM), b64("not pem"))
	}
	jsonList := `{"apiVersion":"v1","kind":"List","items":[` + jsonSecret("one") + "," + jsonSecret("two") + "]}"

	// Every form must yield the same chain: leaf, intermediate from
	// tls.crt, then the root from ca.crt, and the leaf's key.
	chain := []string{
		"[1] CERTIFICATE (tls.crt)", "Subject:              CN=api",
		"yes, signature verifies with [2] CN=Mesh Issuing CA",
		"[2] CERTIFICATE (tls.crt)", "yes, signature verifies with [3] CN=Mesh Root",
		"[3] CERTIFICATE (ca.crt)", "self-signed root",
		"[4] PRIVATE KEY (tls.key)", "Belongs to:           [1] CN=api",
	}
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"kubectl get -o yaml", kubectlYAML, append([]string{"Secret demo/api-tls (type kubernetes.io/tls)"}, chain...)},
		{"stringData block scalars", stringDataYAML, append([]string{"Secret api-tls\n"}, chain...)},
		{"kubectl get -o json", jsonSecret("api-tls"), append([]string{"Secret demo/api-tls (type kubernetes.io/tls)", "extra: not PEM, skipped"}, chain...)},
		{"kubectl get -o json list", jsonList, []string{"Secret demo/one", "Secret demo/two", "[5] CERTIFICATE (tls.crt)", "[8] PRIVATE KEY (tls.key)", "Same as:              [1] CN=api"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLIWith(t, strings.NewReader(tt.input), time.Now(), "inspect")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}

	bad := []struct{ name, input, wantErr string }{
		{"data not base64", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  tls.crt: '***'\n", `data field "tls.crt" is not base64`},
		{"broken JSON", `{"kind": "Secret",`, "the input looks like JSON but does not parse"},
		{"JSON pod", `{"kind": "Pod"}`, "the input is a Pod manifest, not a Secret"},
		{"tab indentation", "apiVersion: v1\nkind: Secret\ndata:\n\ttls.crt: x\n", "indented with a tab"},
		{"Secret without PEM", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  a: eA==\n", "no PEM blocks found"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLIWith(t, strings.NewReader(tt.input), time.Now(), "inspect")
			if r.code != 1 || !strings.Contains(r.stderr, tt.wantErr) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line containing %q", r.code, r.stderr, tt.wantErr)
			}
		})
	}
}

// TestNamesForUnparsedAlgorithms covers keys and signatures crypto/x509
// leaves unnamed, such as HashML-DSA, which RFC 9881 §8.3 forbids.
func TestNamesForUnparsedAlgorithms(t *testing.T) {
	hashMLDSA65 := pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 33}}
	spki := mustMarshal(t, struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{hashMLDSA65, asn1.BitString{Bytes: []byte{1, 2, 3}, BitLength: 24}})
	signed := mustMarshal(t, struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: []byte{0x30, 0}}, hashMLDSA65, asn1.BitString{Bytes: []byte{1}, BitLength: 8}})
	tests := []struct {
		name, got, want string
	}{
		{"HashML-DSA public key", publicKeyName(nil, spki), "HashML-DSA-65 with SHA-512 (forbidden in certificates by RFC 9881 §8.3)"},
		{"HashML-DSA signature", signatureName(x509.UnknownSignatureAlgorithm, signed), "HashML-DSA-65 with SHA-512 (forbidden in certificates by RFC 9881 §8.3)"},
		{"unknown OID", signer.OIDName(asn1.ObjectIdentifier{1, 2, 3}), "OID 1.2.3"},
		{"garbage public key", publicKeyName(nil, []byte{1}), "unknown"},
		{"known signature", signatureName(x509.MLDSA87, nil), "ML-DSA-87"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

package main

import (
	"bytes"
	"crypto/ecdh"
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
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/pq-issuer/pq-issuer/signer"
)

var oidMLDSA65 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}

// mldsaPKCS8 wraps an RFC 9881 private key CHOICE in PKCS#8.
func mldsaPKCS8(t testing.TB, choice []byte) []byte {
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

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mldsaKeys returns one ML-DSA-65 key in the three RFC 9881 formats and a
// corrupt "both", with its seed and expanded key.
func mldsaKeys(t testing.TB) (seed []byte, formats map[string][]byte) {
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

// rawName is a GeneralName as encoded, for names crypto/x509 cannot write.
func rawName(t testing.TB, tag int, compound bool, contents []byte) asn1.RawValue {
	t.Helper()
	return asn1.RawValue{FullBytes: mustMarshal(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: compound, Bytes: contents})}
}

// everySANType is a SAN extension value with one name of each of the nine
// GeneralName forms.
func everySANType(t testing.TB) []byte {
	t.Helper()
	upn := append(mustMarshal(t, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}),
		rawName(t, 0, true, mustMarshalWithParams(t, "user@example.com", "utf8")).FullBytes...)
	dn := mustMarshal(t, pkix.Name{CommonName: "Dir", Organization: []string{"Example"}}.ToRDNSequence())
	return mustMarshal(t, []asn1.RawValue{
		rawName(t, 0, true, upn),
		rawName(t, 1, false, []byte("ops@example.com")),
		rawName(t, 2, false, []byte("ok.example.com")),
		rawName(t, 3, true, []byte{0x04, 0x01, 0xaa}),
		rawName(t, 4, true, dn),
		rawName(t, 5, true, []byte{0x81, 0x01, 'x'}),
		rawName(t, 6, false, []byte("spiffe://example.com/a")),
		rawName(t, 7, false, []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}),
		rawName(t, 8, false, mustMarshal(t, asn1.ObjectIdentifier{1, 2, 3, 4, 5})[2:]),
	})
}

func mustMarshalWithParams(t testing.TB, v any, params string) []byte {
	t.Helper()
	b, err := asn1.MarshalWithParams(v, params)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// selfSigned returns a self-signed ECDSA certificate made from tmpl, in PEM.
func selfSigned(t testing.TB, tmpl *x509.Certificate) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(1)
	tmpl.NotBefore = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tmpl.NotAfter = tmpl.NotBefore.Add(24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// csrWith returns an ECDSA CSR that requests exts, in PEM.
func csrWith(t testing.TB, subject pkix.Name, exts ...pkix.Extension) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject, ExtraExtensions: exts}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

// oddInputs are inputs that once panicked inspect or that a hostile
// certificate would use to spoof its report; the fuzz target starts from
// them too.
func oddInputs(t testing.TB) map[string][]byte {
	t.Helper()
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	x25519Pub, err := x509.MarshalPKIXPublicKey(x25519.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	controlSAN := mustMarshal(t, []asn1.RawValue{
		rawName(t, 2, false, []byte("a\x00.example.com")),
		rawName(t, 2, false, []byte("b\x1b[31m.example.com")),
		rawName(t, 2, false, []byte("c.example.com\n    Signed by next:       forged")),
		rawName(t, 2, false, []byte("d.example.com, e.example.com")),
		rawName(t, 1, false, []byte("x\x7f@example.com")),
	})
	// A key usage with 30 bits: digitalSignature, then 22 undefined bits.
	wideKU := asn1.BitString{Bytes: []byte{0x80, 0x7f, 0xff, 0xfe}, BitLength: 31}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "k"}, NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// A T61String is one crypto/x509 takes as it is, so it can carry bytes
	// that are not UTF-8.
	t61Subject := mustMarshal(t, pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: asn1.RawValue{Tag: asn1.TagT61String, Bytes: []byte("caf\xe9")}}}})
	return map[string][]byte{
		"every SAN type": selfSigned(t, &x509.Certificate{
			ExtraExtensions: []pkix.Extension{{Id: oidSAN, Value: everySANType(t)}},
		}),
		"control bytes": selfSigned(t, &x509.Certificate{
			Subject:         pkix.Name{CommonName: "evil\x00\x1b[2J", Organization: []string{"Example, Inc"}},
			ExtraExtensions: []pkix.Extension{{Id: oidSAN, Value: controlSAN}},
		}),
		"not UTF-8": selfSigned(t, &x509.Certificate{RawSubject: t61Subject}),
		// crypto/x509 makes the SAN critical when the subject is empty.
		"critical SAN with one name": selfSigned(t, &x509.Certificate{DNSNames: []string{"only.example.com"}}),
		"unknown EKU": selfSigned(t, &x509.Certificate{
			ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 99999, 1}},
		}),
		"name constraints": selfSigned(t, &x509.Certificate{
			IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign,
			SubjectKeyId:                []byte{1, 2, 3, 4},
			PermittedDNSDomainsCritical: true,
			PermittedDNSDomains:         []string{".example.com"},
			ExcludedDNSDomains:          []string{"bad.example.com"},
			PermittedIPRanges:           []*net.IPNet{{IP: net.IP{10, 0, 0, 0}, Mask: net.CIDRMask(8, 32)}},
			PermittedEmailAddresses:     []string{"example.com"},
		}),
		"AIA, CRL and policies": selfSigned(t, &x509.Certificate{
			OCSPServer:            []string{"http://ocsp.example.com"},
			IssuingCertificateURL: []string{"http://ca.example.com/ca.crt"},
			CRLDistributionPoints: []string{"http://crl.example.com/ca.crl"},
			Policies:              []x509.OID{mustOID(t, "2.23.140.1.2.1"), mustOID(t, "1.3.6.1.4.1.99999.7")},
		}),
		"unknown critical extension": selfSigned(t, &x509.Certificate{
			ExtraExtensions: []pkix.Extension{
				{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 2}, Critical: true, Value: []byte{0x04, 0x01, 0xff}},
				{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 3}, Value: bytes.Repeat([]byte{0xab}, 40)},
			},
		}),
		"CSR with requested extensions": csrWith(t, pkix.Name{},
			pkix.Extension{Id: oidSAN, Critical: true, Value: everySANType(t)},
			pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: mustMarshal(t, []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 2}, {1, 2, 3}})},
			pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: []byte{0x04, 0x00}},
		),
		"undefined key usage bits": csrWith(t, pkix.Name{CommonName: "ku"},
			pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: mustMarshal(t, wideKU)}),
		"a key and twelve copies of its certificate": append(
			bytes.Repeat(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), 12),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...),
		"X25519 private key":        pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: x25519DER}),
		"X25519 public key":         pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: x25519Pub}),
		"Secret with control bytes": []byte(`{"kind":"Secret","metadata":{"name":"a\u001b[2Jb","namespace":"ns\nx"},"type":"t\u0000","data":{"tls\u0007.crt":"eA=="}}`),
	}
}

func mustOID(t testing.TB, s string) x509.OID {
	t.Helper()
	oid, err := x509.ParseOID(s)
	if err != nil {
		t.Fatal(err)
	}
	return oid
}

// TestInspectNamesAndExtensions checks the exact lines printed for every
// SAN type, every extension, and input that tries to spoof the report.
func TestInspectNamesAndExtensions(t *testing.T) {
	inputs := oddInputs(t)
	tests := []struct {
		name     string
		wantCode int
		want     []string
	}{
		{
			name: "every SAN type",
			want: []string{
				"    Subject:              (empty)",
				"    DNS names:            ok.example.com",
				"    Emails:               ops@example.com",
				"    URIs:                 spiffe://example.com/a",
				"    IP addresses:         2001:db8::1",
				"    Registered IDs:       1.2.3.4.5",
				`    Other name:           UPN (1.3.6.1.4.1.311.20.2.3): "user@example.com"`,
				"    X.400 address:        3 bytes 04:01:aa",
				"    Directory name:       CN=Dir,O=Example",
				"    EDI party name:       3 bytes 81:01:78",
			},
		},
		{
			name: "control bytes",
			want: []string{
				`    Subject:              CN="evil\x00\x1b[2J",O="Example, Inc"`,
				`    DNS names:            "a\x00.example.com", "b\x1b[31m.example.com", "c.example.com\n    Signed by next:       forged", "d.example.com, e.example.com"`,
				`    Emails:               "x\x7f@example.com"`,
				`    Signed by next:       self-signed (signature verifies with its own key)`,
			},
		},
		{
			name: "not UTF-8",
			want: []string{`    Subject:              CN="caf\xe9"`, `    Issuer:               CN="caf\xe9"`},
		},
		{
			name: "critical SAN with one name",
			want: []string{"    Subject alt names:    critical", "    DNS names:            only.example.com"},
		},
		{
			name: "unknown EKU",
			want: []string{"    Extended key usage:   serverAuth, 1.3.6.1.4.1.99999.1", "    Basic constraints:    absent"},
		},
		{
			name: "name constraints",
			want: []string{
				"    Key usage:            keyCertSign (critical)",
				"    Basic constraints:    CA:TRUE, pathlen:0 (critical)",
				"    Subject key ID:       01:02:03:04",
				"    Name constraints:     permitted DNS:.example.com, IP:10.0.0.0/8, email:example.com; excluded DNS:bad.example.com (critical)",
			},
		},
		{
			name: "AIA, CRL and policies",
			want: []string{
				"    Authority info (AIA): OCSP URI:http://ocsp.example.com, CA issuers URI:http://ca.example.com/ca.crt",
				"    CRL distribution:     URI:http://crl.example.com/ca.crl",
				"    Certificate policies: 2.23.140.1.2.1 (CA/B domain validated), 1.3.6.1.4.1.99999.7",
			},
		},
		{
			name: "unknown critical extension",
			want: []string{
				"    Extension:            1.3.6.1.4.1.99999.2, 3 bytes 04:01:ff (critical)",
				"    Extension:            1.3.6.1.4.1.99999.3, 40 bytes ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:...",
				"    Warning:              critical extension 1.3.6.1.4.1.99999.2 is not one crypto/x509 handles: a verifier that does not know it must reject the certificate (RFC 5280 §4.2)",
			},
		},
		{
			name: "CSR with requested extensions",
			want: []string{
				"    Subject:              (empty)",
				"    Subject alt names:    critical",
				"    DNS names:            ok.example.com",
				`    Other name:           UPN (1.3.6.1.4.1.311.20.2.3): "user@example.com"`,
				"    Directory name:       CN=Dir,O=Example",
				"    Extended key usage:   clientAuth, 1.2.3",
				"    Basic constraints:    cannot decode (not a basicConstraints SEQUENCE): 2 bytes 04:00 (critical)",
				"    Signature:            verifies (proves possession of the private key)",
			},
		},
		{
			name: "undefined key usage bits",
			want: []string{"    Key usage:            digitalSignature, unknown bit 9, unknown bit 10, unknown bit 11, unknown bit 12, unknown bit 13, unknown bit 14, unknown bit 15, unknown bit 16, unknown bit 17, unknown bit 18, and 12 more (critical)"},
		},
		{
			name: "a key and twelve copies of its certificate",
			want: []string{
				"    Same as:              [1] CN=k (identical certificate)",
				"    Belongs to:           [1] CN=k, [2] CN=k, [3] CN=k, [4] CN=k, [5] CN=k, [6] CN=k, [7] CN=k, [8] CN=k, [9] CN=k, [10] CN=k, and 2 more",
			},
		},
		{
			name: "X25519 private key",
			want: []string{"[1] PRIVATE KEY", "    Algorithm:            X25519 (key agreement only)", "    Format:               PKCS#8 v1"},
		},
		{
			name: "X25519 public key",
			want: []string{"[1] PUBLIC KEY", "    Algorithm:            X25519 (key agreement only)"},
		},
		{
			name: "Secret with control bytes",
			want: []string{
				`Secret "ns\nx"/"a\x1b[2Jb" (type "t\x00")`,
				`  "tls\a.crt": not PEM, skipped`,
			},
			wantCode: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLIWith(t, bytes.NewReader(inputs[tt.name]), time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), "inspect")
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			lines := strings.Split(r.stdout, "\n")
			for _, w := range tt.want {
				if !slices.Contains(lines, w) {
					t.Errorf("output lacks the line\n%s\n in:\n%s", w, r.stdout)
				}
			}
			if bad := controlBytes(r.stdout + r.stderr); bad != "" {
				t.Errorf("output holds %s:\n%q", bad, r.stdout+r.stderr)
			}
		})
	}
}

// controlBytes describes the first byte or character of s that a terminal
// could take as a command or that would hide text, or returns "".
func controlBytes(s string) string {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			return fmt.Sprintf("the byte %#x, which is not UTF-8, at %d", s[i], i)
		case r != '\n' && r != '\t' && !strconv.IsPrint(r):
			return fmt.Sprintf("the character %U at %d", r, i)
		}
	}
	return ""
}

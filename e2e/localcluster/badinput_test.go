package localcluster_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
	"github.com/pq-issuer/pq-issuer/signer"
)

// TestBadInputs feeds the pq-issuer binary bad CSRs, bad CA Secrets and bad issuer specs, all at
// once and among good requests: each gets its own reason and a message that says what is wrong,
// the process does not crash, and the good requests are issued in the same run.
func TestBadInputs(t *testing.T) {
	pc := startPQCluster(t, localcluster.Options{})
	c := pc.c
	const ns = "bad"
	create(t, c, namespace(ns))
	p := startPQProcess(t, pc, false)
	crNS := pc.ClusterResourceNamespace()

	// A good issuer that caps certificates at 24h, for the request rows.
	caDir := offlineRoot(t, "ML-DSA-65", "Bad Inputs Root")
	pc.installCASecret(t, caDir, crNS, "good-ca")
	good := pqClusterIssuer("good-ca", "good-ca")
	good.Spec.MaxDuration = &metav1.Duration{Duration: 24 * time.Hour}
	create(t, c, good)

	goodCSR := ecdsaCSR(t, "good.bad.svc")
	csrDER := func() []byte { b, _ := pem.Decode(goodCSR); return b.Bytes }()
	csrPEM := func(der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	}
	hashMLDSA := readVector(t, "hackathon-bc/ml-dsa-65-with-sha512-2.16.840.1.101.3.4.3.33_ta.der")
	hashMLDSACert, err := x509.ParseCertificate(hashMLDSA)
	if err != nil {
		t.Fatal(err)
	}
	unknownSPKI, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}}, asn1.BitString{Bytes: []byte{1, 2, 3}, BitLength: 24}})
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csrWith := func(key any, tmpl *x509.CertificateRequest) []byte {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		return csrPEM(der)
	}
	named := &x509.CertificateRequest{DNSNames: []string{"bad.svc"}}

	requests := []struct {
		name     string
		csr      []byte
		mutate   func(*cmapi.CertificateRequest)
		reason   string   // Ready reason
		contains []string // in the message
	}{
		{name: "not-pem", csr: []byte("hello, issuer"), reason: "Failed", contains: []string{"(InvalidCSR)", "not PEM"}},
		{name: "wrong-pem-type", csr: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: csrDER}), reason: "Failed", contains: []string{"(InvalidCSR)", `"CERTIFICATE"`}},
		{name: "truncated-der", csr: csrPEM(csrDER[:len(csrDER)/2]), reason: "Failed", contains: []string{"(InvalidCSR)", "cannot be parsed"}},
		{name: "two-pem-blocks", csr: append(bytes.Clone(goodCSR), goodCSR...), reason: "Failed", contains: []string{"(InvalidCSR)", "exactly one"}},
		{name: "bad-signature", csr: tamperCSR(t, goodCSR, "good.bad.svc"), reason: "Failed", contains: []string{"(BadCSRSignature)", "possession"}},
		{name: "rsa-1024", csr: csrWith(rsa1024, named), reason: "Failed", contains: []string{"(WeakKey)", "1024 bits"}},
		{name: "ecdsa-p224", csr: csrWith(p224, named), reason: "Failed", contains: []string{"(WeakKey)", "P-224"}},
		{name: "hash-ml-dsa-key", csr: csrPEM(withSPKI(t, csrDER, hashMLDSACert.RawSubjectPublicKeyInfo)), reason: "Failed", contains: []string{"(HashMLDSANotAllowed)", "RFC 9881"}},
		{name: "unknown-algorithm", csr: csrPEM(withSPKI(t, csrDER, unknownSPKI)), reason: "Failed", contains: []string{"(UnsupportedKey)", "1.3.6.1.4.1.99999.1"}},
		{name: "one-mib-of-junk", csr: bytes.Repeat([]byte("junk"), 1<<18), reason: "Failed", contains: []string{"(InvalidCSR)", "1048576 bytes"}},
		{name: "is-ca", csr: goodCSR, mutate: func(cr *cmapi.CertificateRequest) { cr.Spec.IsCA = true }, reason: "Failed", contains: []string{"(PolicyViolation)", "isCA"}},
		{name: "duration-zero", csr: goodCSR, mutate: func(cr *cmapi.CertificateRequest) { cr.Spec.Duration = &metav1.Duration{} }, reason: "Failed", contains: []string{"(PolicyViolation)", "duration"}},
		{name: "duration-negative", csr: goodCSR, mutate: func(cr *cmapi.CertificateRequest) { cr.Spec.Duration = &metav1.Duration{Duration: -time.Hour} }, reason: "Failed", contains: []string{"(PolicyViolation)", "duration"}},
		{name: "no-names", csr: csrWith(p256(t), &x509.CertificateRequest{}), reason: "Failed", contains: []string{"(PolicyViolation)", "names nobody"}},
		// Above maxDuration is not refused: like cert-manager's CA issuer at the CA's expiry, the
		// validity is capped and the message says so.
		{name: "duration-over-max", csr: goodCSR, mutate: func(cr *cmapi.CertificateRequest) { cr.Spec.Duration = &metav1.Duration{Duration: 48 * time.Hour} }, reason: "Issued", contains: []string{"Validity shortened to the issuer's maximum duration"}},
		{name: "issuer-missing", csr: goodCSR, mutate: func(cr *cmapi.CertificateRequest) { cr.Spec.IssuerRef.Name = "nobody" }, reason: "Pending", contains: []string{"PQClusterIssuer nobody", "does not exist"}},
	}

	// CA Secrets that cannot be used, each behind its own PQClusterIssuer.
	rootCert, rootKey := readFile(t, filepath.Join(caDir, "tls.crt")), readFile(t, filepath.Join(caDir, "tls.key"))
	now := time.Now()
	root, err := signer.LoadCA(rootCert, rootKey, now)
	if err != nil {
		t.Fatal(err)
	}
	interCert, interKey, err := root.CreateIntermediate(signer.CAOptions{Algorithm: signer.MLDSA65, Subject: pkix.Name{CommonName: "Bad Inputs Intermediate"}, Duration: 30 * 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	expiredCert, expiredKey, err := signer.CreateRootCA(signer.CAOptions{Algorithm: signer.MLDSA65, Subject: pkix.Name{CommonName: "Expired Root"}, Duration: 24 * time.Hour}, now.Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	leafCert, leafKey := mldsaLeaf(t)
	rfcCert := readVector(t, "rfc9881-lamps-wg/ML-DSA-65.crt.pem")
	secrets := []struct {
		name     string
		data     map[string][]byte
		reason   string
		contains string
		noSecret bool
		maxDur   *metav1.Duration
	}{
		{name: "key-missing", data: map[string][]byte{"tls.crt": rootCert}, reason: "KeyMissing", contains: "tls.key"},
		{name: "cert-missing", data: map[string][]byte{"tls.key": rootKey}, reason: "CertificateMissing", contains: "tls.crt"},
		{name: "key-mismatch", data: map[string][]byte{"tls.crt": rfcCert, "tls.key": rootKey}, reason: "KeyMismatch", contains: "does not belong to the CA certificate"},
		{name: "expanded-key-only", data: map[string][]byte{"tls.crt": rfcCert, "tls.key": readVector(t, "rfc9881-lamps-wg/ML-DSA-65-expanded.priv.pem")}, reason: "UnsupportedKeyFormat", contains: "seed"},
		{name: "hash-ml-dsa-ca", data: map[string][]byte{"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hashMLDSA}),
			"tls.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: readVector(t, "hackathon-bc/ml-dsa-65-with-sha512-2.16.840.1.101.3.4.3.33_seed_priv.der")})}, reason: "HashMLDSANotAllowed", contains: "RFC 9881"},
		{name: "not-a-ca", data: map[string][]byte{"tls.crt": leafCert, "tls.key": leafKey}, reason: "NotACA", contains: "is not a CA certificate (basicConstraints CA:TRUE is missing)"},
		{name: "expired", data: map[string][]byte{"tls.crt": expiredCert, "tls.key": expiredKey}, reason: "Expired", contains: "expired"},
		{name: "chain-out-of-order", data: map[string][]byte{"tls.crt": append(bytes.Clone(rootCert), interCert...), "tls.key": interKey}, reason: "BrokenChain", contains: "in the CA certificate file is not signed by certificate 2"},
		{name: "garbage-pem", data: map[string][]byte{"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"), "tls.key": rootKey}, reason: "InvalidCertificate", contains: "cannot be parsed"},
		{name: "secret-missing", noSecret: true, reason: "SecretNotFound", contains: "not found"},
		{name: "max-duration-zero", data: map[string][]byte{"tls.crt": rootCert, "tls.key": rootKey}, maxDur: &metav1.Duration{}, reason: "InvalidSpec", contains: "spec.maxDuration 0s is not positive"},
	}

	// Everything at once, good requests in between.
	var goodNames []string
	for i, r := range requests {
		cr := request(ns, r.name, "good-ca", r.csr)
		if r.mutate != nil {
			r.mutate(cr)
		}
		create(t, c, cr)
		g := request(ns, fmt.Sprintf("good-%d", i), "good-ca", goodCSR)
		create(t, c, g)
		goodNames = append(goodNames, g.Name)
	}
	for _, s := range secrets {
		if !s.noSecret {
			create(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: crNS, Name: s.name, Labels: caSecretLabels()}, Type: corev1.SecretTypeOpaque, Data: s.data})
		}
		issuer := pqClusterIssuer(s.name, s.name)
		issuer.Spec.MaxDuration = s.maxDur
		create(t, c, issuer)
	}

	// Issuer specs the CRD refuses at admission, with the field named.
	for _, tc := range []struct {
		name, field string
		spec        v1alpha1.IssuerSpec
	}{
		{"empty-secret-name", "spec.caSecretName", v1alpha1.IssuerSpec{}},
		{"secret-name-not-dns", "spec.caSecretName", v1alpha1.IssuerSpec{CASecretName: "Not_A_Name"}},
	} {
		err := c.Create(t.Context(), &v1alpha1.PQClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: tc.name}, Spec: tc.spec})
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("PQClusterIssuer %s: create error %v, want one naming %s", tc.name, err, tc.field)
		}
	}
	badDuration := []byte(`{"apiVersion":"pq-issuer.dev/v1alpha1","kind":"PQClusterIssuer","metadata":{"name":"bad-max-duration"},"spec":{"caSecretName":"x","maxDuration":"forever"}}`)
	if out, err := runErr(t, badDuration, filepath.Join(binDir(t), "kubectl"), "--kubeconfig", pc.kubeconfig, "create", "-f", "-"); err == nil || !strings.Contains(out, "spec.maxDuration") {
		t.Errorf("maxDuration: forever: kubectl create %v, output %q; want a refusal naming spec.maxDuration", err, out)
	}

	for _, r := range requests {
		t.Run("request "+r.name, func(t *testing.T) {
			cr := &cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: r.name}}
			waitRequest(t, c, cr, r.reason)
			msg := readyMessage(cr)
			for _, s := range r.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not contain %q", msg, s)
				}
			}
			if r.reason == "Failed" && cr.Status.FailureTime == nil {
				t.Error("Failed without failureTime: cert-manager would retry it")
			}
			t.Logf("%s: %s", r.reason, msg)
		})
	}
	for _, s := range secrets {
		t.Run("issuer "+s.name, func(t *testing.T) {
			issuer := &v1alpha1.PQClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: s.name}}
			cond := waitIssuer(t, c, issuer, metav1.ConditionFalse, s.reason)
			if !strings.Contains(cond.Message, s.contains) {
				t.Errorf("message %q does not contain %q", cond.Message, s.contains)
			}
			t.Logf("%s: %s", cond.Reason, cond.Message)
		})
	}

	t.Run("good requests issued in the same run, the process alive", func(t *testing.T) {
		for _, n := range goodNames {
			waitRequest(t, c, &cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}, cmapi.CertificateRequestReasonIssued)
		}
		select {
		case err := <-p.exited:
			t.Fatalf("pq-issuer exited: %v\n%s", err, p.logs())
		default:
		}
		if strings.Contains(p.logs(), "panic") {
			t.Errorf("pq-issuer logged a panic:\n%s", p.logs())
		}
	})
}

// withSPKI returns the CSR DER with its SubjectPublicKeyInfo replaced (its signature no longer
// matters: the key is refused first).
func withSPKI(t *testing.T, csrDER, spki []byte) []byte {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	tbs := replaceInSequence(t, csr.RawTBSCertificateRequest, csr.RawSubjectPublicKeyInfo, spki)
	return replaceInSequence(t, csr.Raw, csr.RawTBSCertificateRequest, tbs)
}

// replaceInSequence re-encodes the DER SEQUENCE seq with old replaced by new in its contents.
func replaceInSequence(t *testing.T, seq, old, new []byte) []byte {
	t.Helper()
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(seq, &raw); err != nil {
		t.Fatal(err)
	}
	raw.Bytes = bytes.Replace(raw.Bytes, old, new, 1)
	raw.FullBytes = nil
	out, err := asn1.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func p256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// mldsaLeaf is a self-signed ML-DSA-65 certificate that is not a CA, and its key.
func mldsaLeaf(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := signer.GenerateKey(signer.MLDSA65)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Just A Leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err = key.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM
}

// readVector reads a file of the repository's testdata/vectors/mldsa (DER files are returned as they are).
func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "vectors", "mldsa", name))
	if err != nil {
		t.Fatalf("reading the test vectors in testdata/vectors/mldsa: %v", err)
	}
	return b
}

// runErr runs a command that is expected to fail, and returns its combined output and error.
func runErr(t *testing.T, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

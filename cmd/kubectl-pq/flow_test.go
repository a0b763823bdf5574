package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/mldsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/pq-issuer/pq-issuer/signer"
)

const spiffeID = "spiffe://cluster.local/ns/demo/sa/api"

func parseCerts(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if strings.TrimSpace(string(data)) != "" {
		t.Fatalf("trailing data after the PEM blocks: %q", data)
	}
	return certs
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

// TestFlow walks the offline-root story for each CA parameter set: root,
// intermediate, leaf keys of several kinds, signing, and checks the result
// with crypto/x509 alone.
func TestFlow(t *testing.T) {
	leaves := []struct {
		algorithm string
		checkKey  func(any) bool
		// rule forbids keyEncipherment for the key type; the leaf loses it with a note naming the rule.
		rule string
	}{
		{"ML-DSA-65", func(k any) bool { p, ok := k.(*mldsa.PublicKey); return ok && p.Parameters() == mldsa.MLDSA65() }, "RFC 9881 §5"},
		{"ECDSA-P256", func(k any) bool { _, ok := k.(*ecdsa.PublicKey); return ok }, "RFC 8813 §3"},
		{"Ed25519", func(k any) bool { _, ok := k.(ed25519.PublicKey); return ok }, "RFC 8410 §5"},
	}
	for _, alg := range signer.Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			dir := t.TempDir()
			root, issuing := filepath.Join(dir, "root"), filepath.Join(dir, "issuing")

			r := mustRun(t, "ca", "create", "--algorithm", string(alg), "--subject", "CN=Mesh Root,O=Example", "--duration", "87600h", "--out-dir", root)
			if !strings.Contains(r.stdout, string(alg)) || !strings.Contains(r.stdout, "CN=Mesh Root,O=Example") {
				t.Errorf("ca create output does not name the CA:\n%s", r.stdout)
			}
			rootCerts := parseCerts(t, readFile(t, filepath.Join(root, "tls.crt")))
			if len(rootCerts) != 1 || rootCerts[0].SignatureAlgorithm.String() != string(alg) {
				t.Fatalf("root tls.crt: %d certificates, want 1 signed with %s", len(rootCerts), alg)
			}
			if got := rootCerts[0].NotAfter.Sub(rootCerts[0].NotBefore); got < 87599*time.Hour || got > 87601*time.Hour {
				t.Errorf("root validity %s, want about 87600h", got)
			}
			for path, want := range map[string]os.FileMode{root: 0o700, filepath.Join(root, "tls.key"): 0o600, filepath.Join(root, "tls.crt"): 0o644} {
				if got := fileMode(t, path); got != want {
					t.Errorf("%s has mode %o, want %o", path, got, want)
				}
			}
			// The key is the RFC 9881 seed format that the controller loads.
			if _, err := signer.LoadCA(readFile(t, filepath.Join(root, "tls.crt")), readFile(t, filepath.Join(root, "tls.key")), time.Now()); err != nil {
				t.Fatalf("the signer does not load the new root: %v", err)
			}

			mustRun(t, "ca", "intermediate", "--ca-dir", root, "--subject", "CN=Mesh Issuing CA,O=Example", "--duration", "8760h", "--out-dir", issuing)
			chain := parseCerts(t, readFile(t, filepath.Join(issuing, "tls.crt")))
			if len(chain) != 2 || !chain[1].Equal(rootCerts[0]) {
				t.Fatalf("intermediate tls.crt must hold the intermediate then the root; got %d certificates", len(chain))
			}
			if err := chain[0].CheckSignatureFrom(rootCerts[0]); err != nil {
				t.Fatalf("the intermediate is not signed by the root: %v", err)
			}
			if chain[0].SignatureAlgorithm.String() != string(alg) || chain[0].PublicKeyAlgorithm != x509.MLDSA {
				t.Errorf("intermediate: signature %s, key %s; want %s and the parent's algorithm", chain[0].SignatureAlgorithm, chain[0].PublicKeyAlgorithm, alg)
			}
			if !chain[0].IsCA || !chain[0].MaxPathLenZero {
				t.Errorf("the intermediate must be a CA with pathLen 0")
			}

			for _, leaf := range leaves {
				t.Run(leaf.algorithm, func(t *testing.T) {
					out := filepath.Join(dir, "leaf-"+leaf.algorithm)
					mustRun(t, "csr", "--algorithm", leaf.algorithm, "--common-name", "api", "--dns", "api.demo.svc", "--dns", "api.demo.svc.cluster.local,api", "--uri", spiffeID, "--ip", "10.0.0.7", "--out-dir", out)
					if got := fileMode(t, filepath.Join(out, "tls.key")); got != 0o600 {
						t.Errorf("tls.key has mode %o, want 600", got)
					}
					keyBlock, _ := pem.Decode(readFile(t, filepath.Join(out, "tls.key")))
					if keyBlock == nil || keyBlock.Type != "PRIVATE KEY" {
						t.Fatalf("tls.key is not a PKCS#8 PRIVATE KEY block")
					}
					if _, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes); err != nil {
						t.Errorf("tls.key does not parse as PKCS#8: %v", err)
					}

					r := mustRun(t, "sign", "--ca-dir", issuing, "--csr", filepath.Join(out, "csr.pem"), "--duration", "24h", "--namespace", "demo",
						"--usages", "digital signature,key encipherment,server auth,client auth")
					certs := parseCerts(t, []byte(r.stdout))
					if len(certs) != 2 || !certs[1].Equal(chain[0]) {
						t.Fatalf("sign printed %d certificates, want the leaf then the intermediate", len(certs))
					}
					cert := certs[0]
					roots, inters := x509.NewCertPool(), x509.NewCertPool()
					roots.AddCert(rootCerts[0])
					inters.AddCert(certs[1])
					for _, name := range []string{"api.demo.svc", "api.demo.svc.cluster.local", "api"} {
						if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: name,
							KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}); err != nil {
							t.Errorf("verify for %s: %v", name, err)
						}
					}
					if len(cert.URIs) != 1 || cert.URIs[0].String() != spiffeID {
						t.Errorf("URIs %v, want [%s]", cert.URIs, spiffeID)
					}
					if len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "10.0.0.7" {
						t.Errorf("IP addresses %v, want [10.0.0.7]", cert.IPAddresses)
					}
					if !leaf.checkKey(cert.PublicKey) {
						t.Errorf("leaf public key is %T, want %s", cert.PublicKey, leaf.algorithm)
					}
					if got := cert.NotAfter.Sub(cert.NotBefore); got != 24*time.Hour {
						t.Errorf("leaf validity %s, want 24h", got)
					}
					hasKE := cert.KeyUsage&x509.KeyUsageKeyEncipherment != 0
					noted := strings.Contains(r.stderr, "Removed key usage keyEncipherment: "+leaf.rule)
					if hasKE || !noted {
						t.Errorf("%s leaf: keyEncipherment present=%v, note naming %s on stderr=%v (stderr %q); it must be removed and reported", leaf.algorithm, hasKE, leaf.rule, noted, r.stderr)
					}
					if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
						t.Errorf("leaf lacks digitalSignature")
					}

					// inspect reads the chain plus the root and names everything.
					bundle := filepath.Join(out, "bundle.pem")
					if err := os.WriteFile(bundle, append([]byte(r.stdout), readFile(t, filepath.Join(root, "tls.crt"))...), 0o644); err != nil {
						t.Fatal(err)
					}
					ins := mustRun(t, "inspect", bundle).stdout
					for _, want := range []string{
						"Signature algorithm:  " + string(alg),
						"api.demo.svc, api.demo.svc.cluster.local, api",
						"URIs:                 " + spiffeID,
						"yes, signature verifies with [2] CN=Mesh Issuing CA,O=Example",
						"yes, signature verifies with [3] CN=Mesh Root,O=Example",
						"self-signed root (signature verifies with its own key)",
						"Extended key usage:   serverAuth, clientAuth",
						"Basic constraints:    CA:TRUE, pathlen:0",
					} {
						if !strings.Contains(ins, want) {
							t.Errorf("inspect output lacks %q:\n%s", want, ins)
						}
					}
					if leaf.algorithm == "ML-DSA-65" && !strings.Contains(ins, "Public key:           ML-DSA-65 (1952-byte public key)") {
						t.Errorf("inspect does not name the ML-DSA-65 leaf key:\n%s", ins)
					}
				})
			}

			t.Run("secret", func(t *testing.T) {
				checkSecret(t, issuing, rootCerts[0])
			})
		})
	}
}

// checkSecret checks ca secret's YAML and JSON: both must carry the files
// unchanged and the root as ca.crt.
func checkSecret(t *testing.T, caDir string, root *x509.Certificate) {
	crt, key := readFile(t, filepath.Join(caDir, "tls.crt")), readFile(t, filepath.Join(caDir, "tls.key"))

	y := mustRun(t, "ca", "secret", "--ca-dir", caDir, "--name", "mesh-ca", "--namespace", "cert-manager").stdout
	// kubectl's layout: keys sorted, the label value quoted (data values elided here).
	wantLayout := "apiVersion: v1\ndata:\n  ca.crt: ...\n  tls.crt: ...\n  tls.key: ...\nkind: Secret\nmetadata:\n  labels:\n    pq-issuer.dev/ca-secret: \"true\"\n  name: mesh-ca\n  namespace: cert-manager\ntype: kubernetes.io/tls\n"
	if layout := regexp.MustCompile(`(?m)^(  [a-z.]+: )[A-Za-z0-9+/=]+$`).ReplaceAllString(y, "$1..."); layout != wantLayout {
		t.Errorf("YAML Secret is laid out as\n%s\nwant\n%s", layout, wantLayout)
	}
	var s corev1.Secret
	if err := yaml.UnmarshalStrict([]byte(y), &s); err != nil {
		t.Fatalf("the YAML Secret does not decode as a v1 Secret: %v", err)
	}
	if s.Name != "mesh-ca" || s.Namespace != "cert-manager" || s.Type != corev1.SecretTypeTLS {
		t.Errorf("YAML Secret is %s/%s of type %s", s.Namespace, s.Name, s.Type)
	}
	checkSecretData(t, "YAML", s.Data, crt, key, root)

	j := mustRun(t, "ca", "secret", "--ca-dir", caDir, "--name", "mesh-ca", "-o", "json").stdout
	var obj struct {
		APIVersion, Kind, Type string
		Metadata               map[string]any
		Data                   map[string]string
	}
	if err := json.Unmarshal([]byte(j), &obj); err != nil {
		t.Fatalf("the JSON Secret does not parse: %v", err)
	}
	if obj.APIVersion != "v1" || obj.Kind != "Secret" || obj.Type != "kubernetes.io/tls" || obj.Metadata["name"] != "mesh-ca" {
		t.Errorf("JSON Secret header wrong: %+v", obj)
	}
	if _, ok := obj.Metadata["namespace"]; ok {
		t.Errorf("JSON Secret has a namespace although none was given")
	}
	data := map[string][]byte{}
	for k, v := range obj.Data {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("data %s is not base64: %v", k, err)
		}
		data[k] = b
	}
	checkSecretData(t, "JSON", data, crt, key, root)

	ins := runCLIWith(t, strings.NewReader(y), time.Now(), "inspect").stdout
	for _, want := range []string{"Secret cert-manager/mesh-ca (type kubernetes.io/tls)", "[1] CERTIFICATE (tls.crt)", "[3] CERTIFICATE (ca.crt)", "Same as:              [2] CN=Mesh Root,O=Example", "[4] PRIVATE KEY (tls.key)", "Belongs to:           [1] CN=Mesh Issuing CA,O=Example"} {
		if !strings.Contains(ins, want) {
			t.Errorf("inspect of the Secret lacks %q:\n%s", want, ins)
		}
	}
}

func checkSecretData(t *testing.T, format string, data map[string][]byte, crt, key []byte, root *x509.Certificate) {
	t.Helper()
	if len(data) != 3 || string(data["tls.crt"]) != string(crt) || string(data["tls.key"]) != string(key) {
		t.Errorf("%s Secret: tls.crt/tls.key differ from the CA files (%d fields)", format, len(data))
	}
	if ca := parseCerts(t, data["ca.crt"]); len(ca) != 1 || !ca[0].Equal(root) {
		t.Errorf("%s Secret: ca.crt is not the root", format)
	}
	if _, err := signer.LoadCA(data["tls.crt"], data["tls.key"], time.Now()); err != nil {
		t.Errorf("%s Secret: the signer does not load it: %v", format, err)
	}
}

// TestIntermediateAlgorithm checks that --algorithm picks the intermediate's
// parameter set independently of its parent's.
func TestIntermediateAlgorithm(t *testing.T) {
	dir := t.TempDir()
	root, issuing := filepath.Join(dir, "root"), filepath.Join(dir, "issuing")
	mustRun(t, "ca", "create", "--algorithm", "ML-DSA-44", "--subject", "CN=Root", "--duration", "48h", "--out-dir", root)
	r := mustRun(t, "ca", "intermediate", "--ca-dir", root, "--algorithm", "mldsa87", "--subject", "CN=Issuing", "--out-dir", issuing)
	if !strings.Contains(r.stdout, "Created ML-DSA-87 intermediate CA \"CN=Issuing\"") {
		t.Errorf("unexpected report:\n%s", r.stdout)
	}
	chain := parseCerts(t, readFile(t, filepath.Join(issuing, "tls.crt")))
	if p, ok := chain[0].PublicKey.(*mldsa.PublicKey); !ok || p.Parameters() != mldsa.MLDSA87() || chain[0].SignatureAlgorithm != x509.MLDSA44 {
		t.Errorf("intermediate key %T signed with %s; want an ML-DSA-87 key signed with ML-DSA-44", chain[0].PublicKey, chain[0].SignatureAlgorithm)
	}
	// The default 5 years is capped at the root's 48 hours.
	if !chain[0].NotAfter.Equal(chain[1].NotAfter) {
		t.Errorf("intermediate expires %s, after its root (%s)", chain[0].NotAfter, chain[1].NotAfter)
	}
}

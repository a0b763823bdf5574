package main

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
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// FuzzInspect feeds arbitrary bytes to inspect. Whatever the input, it must
// not panic, must exit 0 or 1, and its report must hold no byte a terminal
// could take as a command or that would hide text (controlBytes): every
// string from the input is quoted or escaped.
//
// Mutating PEM text rarely yields new DER, so wrap can also have data
// PEM-encoded as a DER block, or made the value of a requested extension
// of a CSR signed on the fly: see fuzzInput.
func FuzzInspect(f *testing.F) {
	odd := oddInputs(f)
	for _, in := range odd {
		f.Add(uint8(0), in)
	}
	_, mlKeys := mldsaKeys(f)
	for _, k := range mlKeys {
		f.Add(uint8(0), k)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ecSEC1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecSEC1}))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))

	// An ML-DSA chain, a CSR and its key, and a CA Secret manifest, made by
	// the commands themselves.
	dir := f.TempDir()
	root, issuing, api := filepath.Join(dir, "root"), filepath.Join(dir, "issuing"), filepath.Join(dir, "api")
	seedRun(f, "ca", "create", "--subject", "CN=Mesh Root,O=Example", "--out-dir", root)
	seedRun(f, "ca", "intermediate", "--ca-dir", root, "--subject", "CN=Mesh Issuing CA,O=Example", "--out-dir", issuing)
	seedRun(f, "csr", "--common-name", "api", "--dns", "api.demo.svc", "--uri", "spiffe://cluster.local/ns/demo/sa/api",
		"--ip", "10.0.0.1", "--email", "ops@example.com", "--out-dir", api)
	leaf := seedRun(f, "sign", "--ca-dir", issuing, "--csr", filepath.Join(api, "csr.pem"), "--namespace", "demo")
	f.Add(uint8(0), append(leaf, readFile(f, filepath.Join(root, "tls.crt"))...))
	f.Add(uint8(0), append(readFile(f, filepath.Join(api, "csr.pem")), readFile(f, filepath.Join(api, "tls.key"))...))
	f.Add(uint8(0), seedRun(f, "ca", "secret", "--ca-dir", issuing, "--name", "mesh-ca", "--namespace", "cert-manager"))
	f.Add(uint8(0), seedRun(f, "ca", "secret", "--ca-dir", issuing, "--name", "mesh-ca", "-o", "json"))

	// The same material as DER, and every extension as a value on its own.
	for _, in := range append(slices.Collect(maps.Values(odd)), leaf) {
		for block, rest := pem.Decode(in); block != nil; block, rest = pem.Decode(rest) {
			if i := slices.Index(fuzzBlockTypes, block.Type); i >= 0 {
				f.Add(uint8(1+i), block.Bytes)
			}
			if cert, err := x509.ParseCertificate(block.Bytes); err == nil {
				for _, e := range cert.Extensions {
					if i := slices.IndexFunc(fuzzExtensions, e.Id.Equal); i >= 0 {
						f.Add(uint8(1+len(fuzzBlockTypes)+i), e.Value)
					}
				}
			}
		}
	}

	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	// inspect itself, not through the command line: cobra builds its command tree per run, which
	// costs thirty times the inspection of a small input and would starve the fuzzer.
	f.Fuzz(func(t *testing.T, wrap uint8, data []byte) {
		var out bytes.Buffer
		c := &cli{stdin: bytes.NewReader(fuzzInput(t, ec, wrap, data)), stdout: &out, stderr: &out, now: func() time.Time { return now }}
		report := ""
		if err := c.inspect("-"); err != nil {
			var usage usageError
			if errors.As(err, &usage) {
				t.Fatalf("content made a usage error: %v", err)
			}
			report = err.Error()
		}
		if bad := controlBytes(out.String() + report); bad != "" {
			t.Fatalf("the report holds %s:\n%q", bad, out.String()+report)
		}
	})
}

var fuzzBlockTypes = []string{"CERTIFICATE", "CERTIFICATE REQUEST", "PRIVATE KEY", "PUBLIC KEY"}

// fuzzExtensions are those inspect decodes, and one it does not.
var fuzzExtensions = []asn1.ObjectIdentifier{
	{2, 5, 29, 15}, {2, 5, 29, 37}, {2, 5, 29, 19}, {2, 5, 29, 14}, {2, 5, 29, 35}, {2, 5, 29, 17},
	{2, 5, 29, 30}, {1, 3, 6, 1, 5, 5, 7, 1, 1}, {2, 5, 29, 31}, {2, 5, 29, 32}, {1, 2, 3, 4},
}

// fuzzInput makes inspect's input from data: as it is (wrap 0), as the DER
// of a PEM block (1 to 4: fuzzBlockTypes), or as the value of an extension
// (then fuzzExtensions) requested by a CSR that key signs; the high bit of
// wrap makes the extension critical.
func fuzzInput(t *testing.T, key *ecdsa.PrivateKey, wrap uint8, data []byte) []byte {
	w := int(wrap & 0x7f)
	switch {
	case w == 0:
		return data
	case w <= len(fuzzBlockTypes):
		return pem.EncodeToMemory(&pem.Block{Type: fuzzBlockTypes[w-1], Bytes: data})
	}
	ext := pkix.Extension{Id: fuzzExtensions[(w-1-len(fuzzBlockTypes))%len(fuzzExtensions)], Critical: wrap&0x80 != 0, Value: data}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{ext}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// seedRun runs a command line that must succeed and returns its output.
func seedRun(f *testing.F, args ...string) []byte {
	f.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != exitOK {
		f.Fatalf("kubectl-pq %v: exit %d: %s", args, code, stderr.String())
	}
	return stdout.Bytes()
}

package signer

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/pq-issuer/pq-issuer/internal/testkeys"
)

// vectorSeeds adds every file of a vector directory (PEM and DER) as a seed.
func vectorSeeds(f *testing.F, dir string, pemToDER bool) {
	files, err := filepath.Glob(filepath.Join(vectors, dir, "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no vectors in %s: %v", dir, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if block, _ := pem.Decode(b); block != nil && pemToDER {
			b = block.Bytes
		}
		f.Add(b)
	}
}

func FuzzParsePKCS8(f *testing.F) {
	vectorSeeds(f, "rfc9881-lamps-wg", true)
	vectorSeeds(f, "hackathon-bc", true)
	f.Fuzz(func(t *testing.T, der []byte) {
		key, err := ParsePKCS8(der)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		// Whatever we accept, we can write back and read again as the same key.
		out, err := key.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParsePrivateKeyPEM(out)
		if err != nil || !again.matches(key.Public()) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func FuzzParseCSR(f *testing.F) {
	for _, kind := range []string{"ECDSA-P256", "Ed25519", "ML-DSA-44", "ML-DSA-65", "ML-DSA-87"} {
		f.Add(csrPEM(f, testkeys.New(f, kind)))
	}
	vectorSeeds(f, "rfc9881-lamps-wg", false)
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("accepted a CSR whose signature does not verify: %v", err)
		}
	})
}

func FuzzLoadCA(f *testing.F) {
	vectorSeeds(f, "rfc9881-lamps-wg", false)
	key := readVector(f, "rfc9881-lamps-wg/ML-DSA-44-seed.priv.pem")
	f.Fuzz(func(t *testing.T, certPEM []byte) {
		ca, err := LoadCA(certPEM, key, fixedNow)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if !ca.Key.matches(ca.Certificate.PublicKey) || !ca.Certificate.IsCA {
			t.Fatal("accepted a CA that fails its own checks")
		}
	})
}

package workload

import (
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// TestParseSVID reads pq-issuer pod identities (ML-DSA-65-signed chains) with every leaf key
// type, and refuses what must never be served.
func TestParseSVID(t *testing.T) {
	ca := newTestCA(t, "Mesh CA")
	ecdsa := ca.issue(t, "ECDSA-P256", "api")
	other := ca.issue(t, "ECDSA-P256", "api")
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{name: "ECDSA P-256 credential bundle", data: ecdsa.bundle()},
		{name: "Ed25519", data: ca.issue(t, "Ed25519", "api").bundle()},
		{name: "RSA 2048", data: ca.issue(t, "RSA-2048", "api").bundle()},
		{name: "ML-DSA-44", data: ca.issue(t, "ML-DSA-44", "api").bundle()},
		{name: "ML-DSA-65", data: ca.issue(t, "ML-DSA-65", "api").bundle()},
		{name: "ML-DSA-87", data: ca.issue(t, "ML-DSA-87", "api").bundle()},
		{name: "cert-manager order: chain, then key", data: append(append([]byte{}, ecdsa.chainPEM...), ecdsa.keyPEM...)},
		{name: "key of another certificate", data: append(append([]byte{}, other.keyPEM...), ecdsa.chainPEM...), wantErr: "the private key does not match the leaf certificate"},
		{name: "half-written: key only", data: ecdsa.keyPEM, wantErr: "no certificate"},
		{name: "half-written: truncated certificate", data: ecdsa.bundle()[:len(ecdsa.bundle())-200], wantErr: "no certificate"},
		{name: "chain without key", data: ecdsa.chainPEM, wantErr: "no PKCS#8 private key"},
		{name: "two keys", data: append(append([]byte{}, other.keyPEM...), ecdsa.bundle()...), wantErr: "more than one private key"},
		{name: "a CA certificate is no SVID", data: append(append([]byte{}, ecdsa.keyPEM...), ca.rootPEM...), wantErr: "no SPIFFE ID"},
		{name: "empty file", data: nil, wantErr: "no certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svid, err := parseSVID(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := svid.ID.String(); got != "spiffe://cluster.local/ns/shop/sa/api" {
				t.Errorf("SPIFFE ID %s", got)
			}
			if len(svid.Certificates) != 1 || svid.Certificates[0].SignatureAlgorithm.String() != "ML-DSA-65" {
				t.Errorf("chain of %d, leaf signed with %s; want the leaf signed with ML-DSA-65", len(svid.Certificates), svid.Certificates[0].SignatureAlgorithm)
			}
		})
	}
}

// TestGoSPIFFEParseRefusesMLDSAKeys pins why parseSVID exists: go-spiffe v2.7.0's x509svid.Parse
// accepts ML-DSA-signed chains but knows only RSA, ECDSA and Ed25519 private keys. When this
// fails, x509svid.Parse can replace parseSVID's key check.
func TestGoSPIFFEParseRefusesMLDSAKeys(t *testing.T) {
	ca := newTestCA(t, "Mesh CA")
	for _, kind := range []string{"ECDSA-P256", "ML-DSA-65"} {
		c := ca.issue(t, kind, "api")
		_, err := x509svid.Parse(c.chainPEM, c.keyPEM)
		switch kind {
		case "ML-DSA-65":
			if err == nil || !strings.Contains(err.Error(), "unsupported private key type *mldsa.PrivateKey") {
				t.Errorf("x509svid.Parse of an ML-DSA-65 leaf: %v, want unsupported private key type", err)
			}
		default:
			if err != nil {
				t.Errorf("x509svid.Parse of an %s leaf under ML-DSA: %v", kind, err)
			}
		}
	}
}

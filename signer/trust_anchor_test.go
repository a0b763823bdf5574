package signer

import (
	"bytes"
	"encoding/pem"
	"testing"
	"time"
)

func TestParseTrustAnchor(t *testing.T) {
	root := newRoot(t, MLDSA65, 365*24*time.Hour)
	rootPEM := root.TrustAnchorPEM()
	inter, _, _ := newIntermediate(t, root, MLDSA44, 30*24*time.Hour)
	leafKey, err := GenerateKey(MLDSA44)
	if err != nil {
		t.Fatal(err)
	}
	notCA := rawCert(t, "Not A CA", leafKey.Public(), nil, leafKey, certOptions{notBefore: fixedNow, notAfter: fixedNow.Add(time.Hour)})
	withHeader := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Comment": "x"}, Bytes: root.Chain[0].Raw})

	tests := []struct {
		name       string
		in         []byte
		wantReason Reason // "" when the anchor is accepted
	}{
		{name: "root CA", in: rootPEM},
		{name: "the root above an intermediate", in: inter.TrustAnchorPEM()},
		{name: "CRLF line ends and surrounding blank lines", in: append(append([]byte("\n"), bytes.ReplaceAll(rootPEM, []byte("\n"), []byte("\r\n"))...), '\n')},
		{name: "empty", in: nil, wantReason: ReasonInvalidCertificate},
		{name: "not PEM", in: []byte("not a certificate"), wantReason: ReasonInvalidCertificate},
		{name: "a private key", in: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), wantReason: ReasonInvalidCertificate},
		{name: "a PEM header", in: withHeader, wantReason: ReasonInvalidCertificate},
		{name: "two certificates", in: append(bytes.Clone(rootPEM), rootPEM...), wantReason: ReasonInvalidCertificate},
		{name: "DER that does not parse", in: derToPEM("CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01, 0x01}), wantReason: ReasonInvalidCertificate},
		{name: "not a CA", in: encodeCert(notCA.Raw), wantReason: ReasonNotACA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTrustAnchor(tc.in)
			if tc.wantReason != "" {
				wantReason(t, err, tc.wantReason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := TrustAnchor{PEM: string(rootPEM), Subject: "CN=Test Root ML-DSA-65", NotAfter: root.Chain[0].NotAfter}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

package workload

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// parseSVID builds an X509-SVID from PEM: a PKCS#8 private key and the chain, leaf first, in any
// order of blocks, so that one parser reads the kubelet's credential bundle (key, then chain) and a
// cert-manager Secret's tls.key and tls.crt concatenated.
//
// go-spiffe's x509svid.Parse would do, but its key check knows only RSA, ECDSA and Ed25519 keys
// ("unsupported private key type *mldsa.PrivateKey"), so ML-DSA leaves need this path. It makes the
// checks x509svid.Parse makes (SPIFFE SVID rules for leaf and signing certificates, key matches
// leaf) with the key type's own Equal, which every crypto key type of Go 1.27 has.
func parseSVID(data []byte) (*x509svid.SVID, error) {
	var certs []*x509.Certificate
	var key crypto.PrivateKey
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			if key != nil {
				return nil, errors.New("more than one private key")
			}
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("private key: %w", err)
			}
			key = k
		default:
			return nil, fmt.Errorf("unexpected PEM block %q; want PRIVATE KEY (PKCS#8) and CERTIFICATE", block.Type)
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate")
	}
	if key == nil {
		return nil, errors.New("no PKCS#8 private key")
	}
	leaf := certs[0]
	id, err := x509svid.IDFromCert(leaf)
	if err != nil {
		return nil, fmt.Errorf("the leaf certificate has no SPIFFE ID: %w", err)
	}
	if id.Path() == "" {
		return nil, fmt.Errorf("the leaf certificate's SPIFFE ID %s has no path", id)
	}
	if err := checkSVIDCertificates(leaf, certs[1:]); err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the %T private key cannot sign", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("the private key does not match the leaf certificate (serial %x)", leaf.SerialNumber)
	}
	return &x509svid.SVID{ID: id, Certificates: certs, PrivateKey: signer}, nil
}

// checkSVIDCertificates makes the X509-SVID checks of the SPIFFE specification, as go-spiffe does.
func checkSVIDCertificates(leaf *x509.Certificate, signing []*x509.Certificate) error {
	switch {
	case leaf.IsCA:
		return errors.New("the leaf certificate is a CA")
	case leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return errors.New("the leaf certificate lacks key usage digital signature")
	case leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0:
		return errors.New("the leaf certificate has key usage cert sign or CRL sign")
	}
	for _, c := range signing {
		if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
			return fmt.Errorf("the chain's certificate %q is not a CA with key usage cert sign", c.Subject)
		}
	}
	return nil
}

// parseRoots reads every certificate of a PEM trust bundle; there must be one at least.
func parseRoots(data []byte) ([]*x509.Certificate, error) {
	var roots []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q; want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(roots)+1, err)
		}
		roots = append(roots, c)
	}
	if len(roots) == 0 {
		return nil, errors.New("no certificate")
	}
	return roots, nil
}

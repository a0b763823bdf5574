package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pq-issuer/pq-issuer/signer"
)

// keyAlgorithms are the leaf key types csr generates: the ML-DSA sets and
// the classical keys pq-issuer signs.
var keyAlgorithms = []string{"ML-DSA-44", "ML-DSA-65", "ML-DSA-87", "ECDSA-P256", "ECDSA-P384", "ECDSA-P521", "Ed25519", "RSA-2048", "RSA-3072", "RSA-4096"}

// generateKey makes a private key for one of keyAlgorithms and returns it
// with its PKCS#8 PEM.
func generateKey(name string) (crypto.Signer, []byte, error) {
	if alg, err := signer.ParseAlgorithm(name); err == nil {
		key, err := signer.GenerateKey(alg)
		if err != nil {
			return nil, nil, err
		}
		keyPEM, err := key.MarshalPEM()
		return key, keyPEM, err
	}
	var key crypto.Signer
	var err error
	switch normalizeAlgorithm(name) {
	case "ECDSAP256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ECDSAP384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ECDSAP521":
		key, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "ED25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "RSA2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "RSA3072":
		key, err = rsa.GenerateKey(rand.Reader, 3072)
	case "RSA4096":
		key, err = rsa.GenerateKey(rand.Reader, 4096)
	default:
		return nil, nil, usagef("--algorithm: unknown algorithm %q: use one of %s", name, strings.Join(keyAlgorithms, ", "))
	}
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// normalizeAlgorithm lets "ecdsa-p256", "ECDSA_P256" and "ed25519" match.
func normalizeAlgorithm(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", "_", "", " ", "").Replace(s))
}

func (c *cli) csrCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "csr [--common-name NAME] [--dns NAME] [--uri URI] [--ip IP] [--email ADDR] --out-dir DIR [flags]",
		Short: "Generate a private key (ML-DSA or classical) and a CSR",
		Long: `Generates a private key and a certificate signing request for it:
DIR/tls.key (PKCS#8, mode 0600; ML-DSA keys in the RFC 9881 seed format)
and DIR/csr.pem. This is how workloads get ML-DSA keys, which cert-manager
cannot generate. Sign the CSR offline with 'kubectl pq sign', or submit it
as a CertificateRequest to a PQIssuer.

Algorithms: ` + strings.Join(keyAlgorithms, ", ") + `.`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	algorithm := fs.String("algorithm", string(signer.MLDSA65), "key algorithm")
	completeValues(cmd, "algorithm", keyAlgorithms...)
	commonName := fs.String("common-name", "", "subject common name")
	var dnsNames, uris, ips, emails listFlag
	fs.Var(&dnsNames, "dns", "DNS `name` SAN (repeatable or comma separated)")
	fs.Var(&uris, "uri", "`URI` SAN, e.g. spiffe://cluster.local/ns/demo/sa/api (repeatable or comma separated)")
	fs.Var(&ips, "ip", "`IP` address SAN (repeatable or comma separated)")
	fs.Var(&emails, "email", "email `address` SAN (repeatable or comma separated)")
	outDir := fs.String("out-dir", "", "directory to write tls.key and csr.pem to (created with mode 0700 if missing)")
	force := fs.Bool("force", false, "overwrite tls.key and csr.pem if they exist")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd.Flags(), "out-dir"); err != nil {
			return err
		}
		tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: *commonName}, DNSNames: dnsNames, EmailAddresses: emails}
		if *commonName == "" && len(dnsNames)+len(uris)+len(ips)+len(emails) == 0 {
			return usagef("the request names nobody: give --common-name, --dns, --uri, --ip or --email")
		}
		for _, s := range uris {
			u, err := url.Parse(s)
			if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
				return usagef("--uri %q is not an absolute URI such as spiffe://cluster.local/ns/demo/sa/api", s)
			}
			tmpl.URIs = append(tmpl.URIs, u)
		}
		for _, s := range ips {
			ip := net.ParseIP(s)
			if ip == nil {
				return usagef("--ip %q is not an IP address", s)
			}
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}

		key, keyPEM, err := generateKey(*algorithm)
		if err != nil {
			return err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			return fmt.Errorf("creating the CSR: %w", err)
		}
		csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
		// Check it as the issuer will, so a request we write is one it signs.
		csr, err := signer.ParseCSR(csrPEM)
		if err != nil {
			return fmt.Errorf("the new CSR fails the issuer's checks: %w", err)
		}
		if err := writeFiles(*outDir, *force,
			outFile{keyFile, keyPEM, 0o600},
			outFile{csrFile, csrPEM, 0o644}); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "Created %s key and CSR for %s\n  private key: %s (mode 0600)\n  request:     %s\n",
			publicKeyName(csr.PublicKey, csr.RawSubjectPublicKeyInfo), describeNames(csr.Subject, csr.DNSNames, csr.URIs, csr.IPAddresses, csr.EmailAddresses),
			filepath.Join(*outDir, keyFile), filepath.Join(*outDir, csrFile))
		return nil
	}
	return cmd
}

// describeNames lists who a certificate or request is for, for one line.
func describeNames(subject pkix.Name, dns []string, uris []*url.URL, ips []net.IP, emails []string) string {
	var names []string
	if subject.CommonName != "" {
		names = append(names, "CN="+subject.CommonName)
	}
	names = append(names, dns...)
	names = append(names, urlStrings(uris)...)
	names = append(names, ipStrings(ips)...)
	names = append(names, emails...)
	return strings.Join(names, ", ")
}

func urlStrings(urls []*url.URL) []string {
	var s []string
	for _, u := range urls {
		s = append(s, u.String())
	}
	return s
}

func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}

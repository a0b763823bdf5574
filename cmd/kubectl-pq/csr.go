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
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
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
		Use:   "csr [--common-name NAME] [--dns NAME] [--uri URI] [--ip IP] [--email ADDR] --out-dir DIR [--submit --signer SIGNER] [flags]",
		Short: "Generate a private key (ML-DSA or classical) and a CSR, and optionally get it signed in the cluster",
		Long: `Generates a private key and a certificate signing request for it:
DIR/tls.key (PKCS#8, mode 0600; ML-DSA keys in the RFC 9881 seed format)
and DIR/csr.pem. This is how workloads get ML-DSA keys, which cert-manager
cannot generate. Sign the CSR offline with 'kubectl pq sign', or submit it
as a CertificateRequest to a PQIssuer.

With --submit, it also creates a Kubernetes CertificateSigningRequest
(certificates.k8s.io/v1) for --signer, a pq-issuer signer name:
  ` + pqClusterIssuerSignerDomain + `/<name>         for a PQClusterIssuer
  ` + pqIssuerSignerDomain + `/<namespace>.<name>    for a PQIssuer
It prints the 'kubectl certificate approve' command for an approver (RBAC:
verb approve on signers for that signer name), waits up to --wait for the
certificate and writes it to DIR/tls.crt, leaf first. A denied or failed
request exits non-zero with the reason; when --wait runs out, 'kubectl pq
csr fetch NAME --out-dir DIR' picks the certificate up later. Creating the
request needs RBAC create on certificatesigningrequests, waiting list and
watch. The cluster comes from --kubeconfig and --context, as for kubectl.
An API server built with Go older than 1.27 (such as official
kube-apiserver 1.37 builds) cannot verify ML-DSA requests and refuses them:
use an ECDSA key for such a cluster, or sign offline.

Algorithms: ` + strings.Join(keyAlgorithms, ", ") + `.`,
		Example: `  # A key and a CSR, signed offline
  kubectl pq csr --common-name api --dns api.demo.svc --out-dir api
  kubectl pq sign --ca-dir issuing --csr api/csr.pem > api/tls.crt

  # An ML-DSA certificate from the cluster's PQClusterIssuer mesh-ca
  kubectl pq csr --common-name api --dns api.demo.svc --out-dir api --submit --signer ` + pqClusterIssuerSignerDomain + `/mesh-ca
  kubectl certificate approve api-7xq2m    # an approver, in another terminal

  # Its certificate later, if the wait ran out
  kubectl pq csr fetch api-7xq2m --out-dir api`,
		Args:                       noArgs,
		SuggestionsMinimumDistance: 2,
	}
	cmd.AddCommand(c.csrFetchCommand())
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
	force := fs.Bool("force", false, "overwrite tls.key and csr.pem if they exist (and, with --submit, tls.crt)")
	sub := addSubmitFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd.Flags(), "out-dir"); err != nil {
			return err
		}
		if err := sub.check(cmd.Flags()); err != nil {
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

		var csrs csrAPI
		if sub.submit {
			// Before a key is made: a certificate that would stay beside a
			// new key, or a missing kubeconfig, fails now.
			if p := filepath.Join(*outDir, certFile); !*force {
				if _, err := os.Lstat(p); err == nil {
					return fmt.Errorf("%s already exists; use --force to replace it, tls.key and csr.pem", p)
				}
			}
			var err error
			if csrs, err = c.csrClient(*sub.kube); err != nil {
				return err
			}
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
		if !sub.submit {
			return nil
		}
		// The certificate of the key just replaced is no longer this directory's.
		if err := os.Remove(filepath.Join(*outDir, certFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		t := fetchTarget{outDir: *outDir, force: *force, kube: *sub.kube, key: csr.PublicKey, spki: csr.RawSubjectPublicKeyInfo, keySource: filepath.Join(*outDir, keyFile)}
		if t.name, err = c.submit(cmd.Context(), csrs, sub, csr, csrPEM, *outDir); err != nil {
			return err
		}
		if sub.wait == 0 {
			fmt.Fprintf(c.stdout, "Not waiting (--wait 0): once it is issued, fetch the certificate with\n  %s\n", fetchCommand(t.name, t.outDir, t.kube))
			return nil
		}
		return c.await(cmd.Context(), csrs, t, sub.wait)
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

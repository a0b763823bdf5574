package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/pq-issuer/pq-issuer/signer"
)

// defaultLeafDuration is cert-manager's default Certificate duration.
const defaultLeafDuration = 90 * 24 * time.Hour

func (c *cli) sign(args []string) error {
	fs := newFlagSet("sign", `Usage: kubectl pq sign --ca-dir DIR --csr FILE [flags] > tls.crt

Signs a CSR offline with the CA in DIR through the same certificate builder
as the pq-issuer controller, under an issuer's default policy: the CSR's
signature must verify; only its subject (when every attribute is a plain
string) and its DNS, IP, URI and email names reach the certificate, no other
extension it asks for; a SPIFFE ID must be in trust domain cluster.local and
name --namespace; usages a key cannot serve are dropped (an ML-DSA key never
gets keyEncipherment, RFC 9881 §5); the validity is at least 1h and at most
--max-duration. Prints the certificate followed by the CA's intermediates
(PEM) on stdout and notes about anything adjusted on stderr. The trust
anchor is the root: tls.crt of the root CA directory.
`)
	caDir := fs.String("ca-dir", "", "directory of the signing CA (tls.crt and tls.key)")
	csrPath := fs.String("csr", "", "CSR file (PEM), or - for standard input")
	duration := fs.Duration("duration", defaultLeafDuration, "requested validity of the certificate")
	usages := fs.String("usages", strings.Join(signer.DefaultUsages(), ","), "comma-separated cert-manager usages, e.g. \"digital signature,server auth,client auth\"")
	maxDuration := fs.Duration("max-duration", signer.DefaultMaxDuration, "cap the validity, as an issuer's spec.maxDuration does")
	namespace := fs.String("namespace", "", "the namespace the workload runs in, which a SPIFFE ID must name (spiffe://cluster.local/ns/NAMESPACE/...)")
	if err := c.parse(fs, args, false); err != nil {
		return err
	}
	if err := required(fs, "ca-dir", "csr"); err != nil {
		return err
	}
	if *duration < signer.MinDuration {
		return usagef("--duration %s is under the %s minimum", *duration, signer.MinDuration)
	}
	policy := signer.Policy{MaxDuration: *maxDuration}
	if err := policy.Validate(); err != nil {
		return usagef("--max-duration: %v", err)
	}
	usageNames := strings.Split(*usages, ",")
	if _, _, err := signer.ParseUsages(usageNames); err != nil {
		return usagef("--usages: %v", err)
	}

	ca, _, _, err := c.loadCADir(*caDir)
	if err != nil {
		return err
	}
	data, err := c.readInput(*csrPath)
	if err != nil {
		return fmt.Errorf("reading the CSR: %w", err)
	}
	csr, err := signer.ParseCSR(data)
	if err != nil {
		return fmt.Errorf("CSR %s: %w", *csrPath, err)
	}
	req := signer.LeafRequest{CSR: csr, Namespace: *namespace, Duration: *duration, Usages: usageNames}
	issued, err := ca.Issue(req, policy, c.now())
	if err != nil {
		return fmt.Errorf("signing %s: %w", *csrPath, err)
	}
	if _, err := c.stdout.Write(issued.ChainPEM); err != nil {
		return err
	}
	for _, n := range issued.Notes() {
		fmt.Fprintf(c.stderr, "Note: %s\n", n)
	}
	return nil
}

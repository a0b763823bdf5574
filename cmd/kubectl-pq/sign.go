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

Signs a CSR offline with the CA in DIR, with the same checks and policy as
the pq-issuer controller: the CSR's signature must verify, and an ML-DSA
subject key never gets keyEncipherment, dataEncipherment or keyAgreement
(RFC 9881 §5). Prints the certificate followed by the CA's intermediates
(PEM) on stdout and notes about anything adjusted on stderr. The trust
anchor is the root: tls.crt of the root CA directory.
`)
	caDir := fs.String("ca-dir", "", "directory of the signing CA (tls.crt and tls.key)")
	csrPath := fs.String("csr", "", "CSR file (PEM), or - for standard input")
	duration := fs.Duration("duration", defaultLeafDuration, "requested validity of the certificate")
	usages := fs.String("usages", strings.Join(signer.DefaultUsages(), ","), "comma-separated cert-manager usages, e.g. \"digital signature,server auth,client auth\"")
	maxDuration := fs.Duration("max-duration", 0, "cap the validity, as an issuer's spec.maxDuration does (0: only the CA's expiry caps it)")
	if err := c.parse(fs, args, false); err != nil {
		return err
	}
	if err := required(fs, "ca-dir", "csr"); err != nil {
		return err
	}
	if *duration <= 0 {
		return usagef("--duration %s is not positive", *duration)
	}
	if *maxDuration < 0 {
		return usagef("--max-duration %s is negative", *maxDuration)
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
	now := c.now()
	tmpl, err := signer.TemplateFromCSR(csr, *duration, usageNames, now)
	if err != nil {
		return fmt.Errorf("CSR %s: %w", *csrPath, err)
	}
	issued, err := ca.Sign(signer.Request{Template: tmpl, PublicKey: csr.PublicKey, MaxDuration: *maxDuration}, now)
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

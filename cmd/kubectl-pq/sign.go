package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// defaultLeafDuration is cert-manager's default Certificate duration.
const defaultLeafDuration = 90 * 24 * time.Hour

func (c *cli) signCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sign --ca-dir DIR --csr FILE [flags] > tls.crt",
		Short: "Sign a CSR offline with a CA directory",
		Long: `Signs a CSR offline with the CA in DIR through the same certificate builder
as the pq-issuer controller, under an issuer's default policy: the CSR's
signature must verify; only its subject (when every attribute is a plain
string) and its DNS, IP, URI and email names reach the certificate, no other
extension it asks for; a SPIFFE ID must be in trust domain cluster.local and
name --namespace; usages a key cannot serve are dropped (an ML-DSA key never
gets keyEncipherment, RFC 9881 §5); the validity is at least 1h and at most
--max-duration. With --issuer, the spec.policy and spec.maxDuration of a
PQIssuer or PQClusterIssuer manifest apply instead, as the controller applies
them (all but namespaceSelector, which needs the cluster). Prints the
certificate followed by the CA's intermediates (PEM) on stdout and notes
about anything adjusted on stderr. The trust anchor is the root: tls.crt of
the root CA directory.`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	caDir := fs.String("ca-dir", "", "directory of the signing CA (tls.crt and tls.key)")
	csrPath := fs.String("csr", "", "CSR file (PEM), or - for standard input")
	duration := fs.Duration("duration", defaultLeafDuration, "requested validity of the certificate")
	usages := fs.String("usages", strings.Join(signer.DefaultUsages(), ","), "comma-separated cert-manager usages, e.g. \"digital signature,server auth,client auth\"")
	maxDuration := fs.Duration("max-duration", signer.DefaultMaxDuration, "cap the validity, as an issuer's spec.maxDuration does")
	namespace := fs.String("namespace", "", "the namespace the workload runs in, which a SPIFFE ID must name (spiffe://cluster.local/ns/NAMESPACE/...)")
	issuerPath := fs.String("issuer", "", "PQIssuer or PQClusterIssuer manifest (YAML or JSON) whose spec.policy and spec.maxDuration apply")
	cmd.RunE = func(*cobra.Command, []string) error {
		if err := required(fs, "ca-dir", "csr"); err != nil {
			return err
		}
		policy := signer.Policy{MaxDuration: *maxDuration}
		if *issuerPath != "" {
			if fs.Changed("max-duration") {
				return usagef("--issuer and --max-duration both set a maximum duration; give one")
			}
			var err error
			if policy, err = c.issuerPolicy(*issuerPath); err != nil {
				return err
			}
		}
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
	return cmd
}

// issuerPolicy reads the policy of an issuer manifest, as the controller reads it.
func (c *cli) issuerPolicy(path string) (signer.Policy, error) {
	data, err := c.readInput(path)
	if err != nil {
		return signer.Policy{}, fmt.Errorf("reading the issuer: %w", err)
	}
	// Strict, so that a misspelt policy field is an error rather than a policy that allows more.
	var issuer struct {
		APIVersion string              `json:"apiVersion"`
		Kind       string              `json:"kind"`
		Metadata   json.RawMessage     `json:"metadata"`
		Spec       v1alpha1.IssuerSpec `json:"spec"`
		Status     json.RawMessage     `json:"status"`
	}
	if err := yaml.UnmarshalStrict(data, &issuer); err != nil {
		return signer.Policy{}, usagef("--issuer %s: %v", path, err)
	}
	if issuer.APIVersion != v1alpha1.GroupVersion.String() || (issuer.Kind != "PQIssuer" && issuer.Kind != "PQClusterIssuer") {
		return signer.Policy{}, usagef("--issuer %s is a %s %s, not a PQIssuer or PQClusterIssuer of %s", path, issuer.APIVersion, issuer.Kind, v1alpha1.GroupVersion)
	}
	policy, err := issuer.Spec.SignerPolicy(issuer.Kind == "PQClusterIssuer")
	if err != nil {
		return signer.Policy{}, usagef("--issuer %s: %v", path, err)
	}
	return policy, nil
}

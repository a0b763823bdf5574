package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pq-issuer/pq-issuer/signer"
)

const (
	defaultRootDuration         = 10 * 365 * 24 * time.Hour
	defaultIntermediateDuration = 5 * 365 * 24 * time.Hour
)

// caFlags are the flags ca create and ca intermediate share.
type caFlags struct {
	algorithm *string
	subject   *string
	duration  *time.Duration
	outDir    *string
	force     *bool
}

func addCAFlags(cmd *cobra.Command, defaultAlgorithm string, defaultDuration time.Duration) caFlags {
	fs := cmd.Flags()
	f := caFlags{
		algorithm: fs.String("algorithm", defaultAlgorithm, "ML-DSA parameter set of the CA key: ML-DSA-44, ML-DSA-65 or ML-DSA-87"),
		subject:   fs.String("subject", "", "distinguished name of the CA, e.g. \"CN=Mesh Root,O=Example\" (CN is required; escape commas as \\,)"),
		duration:  fs.Duration("duration", defaultDuration, "validity of the CA certificate, e.g. 87600h"),
		outDir:    fs.String("out-dir", "", "directory to write tls.crt and tls.key to (created with mode 0700 if missing)"),
		force:     fs.Bool("force", false, "overwrite tls.crt and tls.key if they exist"),
	}
	var names []string
	for _, a := range signer.Algorithms() {
		names = append(names, string(a))
	}
	completeValues(cmd, "algorithm", names...)
	return f
}

// options checks the flags and turns them into signer options.
func (f caFlags) options(fs *pflag.FlagSet) (signer.CAOptions, error) {
	if err := required(fs, "subject", "out-dir"); err != nil {
		return signer.CAOptions{}, err
	}
	alg, err := signer.ParseAlgorithm(*f.algorithm)
	if err != nil {
		return signer.CAOptions{}, usagef("--algorithm: %v", err)
	}
	subject, err := signer.ParseSubject(*f.subject)
	if err != nil {
		return signer.CAOptions{}, usagef("--subject: %v", err)
	}
	if subject.CommonName == "" {
		return signer.CAOptions{}, usagef("--subject %q has no common name: add CN=...", *f.subject)
	}
	if *f.duration <= 0 {
		return signer.CAOptions{}, usagef("--duration %s is not positive", *f.duration)
	}
	return signer.CAOptions{Algorithm: alg, Subject: subject, Duration: *f.duration}, nil
}

// caCommand groups the commands that make CAs and their Secrets.
func (c *cli) caCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Create ML-DSA CAs and their Secrets",
		Example: `  # An offline root, an intermediate for the cluster, and its Secret
  kubectl pq ca create --subject "CN=Mesh Root,O=Example" --out-dir root
  kubectl pq ca intermediate --ca-dir root --subject "CN=Mesh Issuing CA,O=Example" --out-dir issuing
  kubectl pq ca secret --ca-dir issuing --name mesh-ca --namespace cert-manager | kubectl apply -f -`,
		Args:                       cobra.ArbitraryArgs,
		RunE:                       c.runGroup,
		SuggestionsMinimumDistance: 2,
	}
	cmd.AddCommand(c.caCreateCommand(), c.caIntermediateCommand(), c.caSecretCommand())
	return cmd
}

func (c *cli) caCreateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create --subject DN --out-dir DIR [flags]",
		Short: "Create a self-signed ML-DSA root CA",
		Long: `Creates a self-signed ML-DSA root CA: DIR/tls.crt (the certificate) and
DIR/tls.key (PKCS#8, RFC 9881 seed format, mode 0600). Keep the root offline
and put an intermediate in the cluster (kubectl pq ca intermediate), or use
the root directly for a test cluster (kubectl pq ca secret).`,
		Args: noArgs,
	}
	f := addCAFlags(cmd, string(signer.MLDSA65), defaultRootDuration)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		opts, err := f.options(cmd.Flags())
		if err != nil {
			return err
		}
		certPEM, keyPEM, err := signer.CreateRootCA(opts, c.now())
		if err != nil {
			return fmt.Errorf("creating the root CA: %w", err)
		}
		return c.writeCA(*f.outDir, *f.force, "root", certPEM, keyPEM)
	}
	return cmd
}

func (c *cli) caIntermediateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "intermediate --ca-dir PARENT --subject DN --out-dir DIR [flags]",
		Short: "Create an ML-DSA intermediate CA signed by an (offline) CA",
		Long: `Creates an ML-DSA intermediate CA signed by the CA in PARENT (tls.crt,
tls.key). DIR/tls.crt holds the intermediate followed by PARENT's chain, so
only DIR goes into the cluster and PARENT's key stays offline. The
intermediate may sign only leaf certificates (pathLen 0) and never outlives
its parent. --algorithm defaults to the parent's.`,
		Args: noArgs,
	}
	f := addCAFlags(cmd, "", defaultIntermediateDuration)
	caDir := cmd.Flags().String("ca-dir", "", "directory of the parent CA (tls.crt and tls.key)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := required(cmd.Flags(), "ca-dir", "subject", "out-dir"); err != nil {
			return err
		}
		parent, _, _, err := c.loadCADir(*caDir)
		if err != nil {
			return err
		}
		if *f.algorithm == "" {
			*f.algorithm = string(parent.Algorithm())
		}
		opts, err := f.options(cmd.Flags())
		if err != nil {
			return err
		}
		certPEM, keyPEM, err := parent.CreateIntermediate(opts, c.now())
		if err != nil {
			return fmt.Errorf("creating the intermediate CA: %w", err)
		}
		return c.writeCA(*f.outDir, *f.force, "intermediate", certPEM, keyPEM)
	}
	return cmd
}

// writeCA writes the CA files and reports what was made.
func (c *cli) writeCA(dir string, force bool, kind string, certPEM, keyPEM []byte) error {
	err := writeFiles(dir, force,
		outFile{certFile, certPEM, 0o644},
		outFile{keyFile, keyPEM, 0o600})
	if err != nil {
		return err
	}
	// The certificate was parsed and checked by the signer; decoding it
	// again only recovers the fields for the report.
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Created %s %s CA %q, valid until %s\n", publicKeyName(cert.PublicKey, cert.RawSubjectPublicKeyInfo), kind, cert.Subject.String(), formatTime(cert.NotAfter))
	if kind == "intermediate" {
		fmt.Fprintf(c.stdout, "  issued by:   %q\n", cert.Issuer.String())
	}
	fmt.Fprintf(c.stdout, "  certificate: %s\n  private key: %s (mode 0600)\n", filepath.Join(dir, certFile), filepath.Join(dir, keyFile))
	return nil
}

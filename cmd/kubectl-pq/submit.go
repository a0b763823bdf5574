package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// pq-issuer's signer names (api/v1alpha1):
// <plural>.<group>/<name> for a PQClusterIssuer, <plural>.<group>/<namespace>.<name>
// for a PQIssuer.
const (
	pqIssuerSignerDomain        = v1alpha1.PQIssuerSignerDomain
	pqClusterIssuerSignerDomain = v1alpha1.PQClusterIssuerSignerDomain
	signerNameHelp              = "a pq-issuer signer name is " + pqClusterIssuerSignerDomain + "/<name> for a PQClusterIssuer, or " +
		pqIssuerSignerDomain + "/<namespace>.<name> for a PQIssuer"
)

// minExpiration is the API server's minimum spec.expirationSeconds.
const minExpiration = 10 * time.Minute

// defaultWait is how long csr --submit and csr fetch wait for the
// certificate: long enough for a person to approve it.
const defaultWait = 5 * time.Minute

// apiUsages are the usages the CertificateSigningRequest API accepts.
var apiUsages = []certificatesv1.KeyUsage{
	certificatesv1.UsageSigning, certificatesv1.UsageDigitalSignature, certificatesv1.UsageContentCommitment,
	certificatesv1.UsageKeyEncipherment, certificatesv1.UsageKeyAgreement, certificatesv1.UsageDataEncipherment,
	certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageEncipherOnly,
	certificatesv1.UsageDecipherOnly, certificatesv1.UsageAny, certificatesv1.UsageServerAuth,
	certificatesv1.UsageClientAuth, certificatesv1.UsageCodeSigning, certificatesv1.UsageEmailProtection,
	certificatesv1.UsageSMIME, certificatesv1.UsageIPsecEndSystem, certificatesv1.UsageIPsecTunnel,
	certificatesv1.UsageIPsecUser, certificatesv1.UsageTimestamping, certificatesv1.UsageOCSPSigning,
	certificatesv1.UsageMicrosoftSGC, certificatesv1.UsageNetscapeSGC,
}

// submitFlags are csr's flags for sending the request to the cluster as a
// CertificateSigningRequest.
type submitFlags struct {
	submit     bool
	signer     string
	name       string
	expiration time.Duration
	usages     listFlag
	wait       time.Duration
	kube       *kubeFlags
}

// submitOnly are the flags that mean nothing without --submit.
var submitOnly = []string{"signer", "name", "expiration", "usages", "wait", "kubeconfig", "context"}

func addSubmitFlags(cmd *cobra.Command) *submitFlags {
	f := &submitFlags{}
	fs := cmd.Flags()
	fs.BoolVar(&f.submit, "submit", false, "also create a CertificateSigningRequest in the cluster, wait for its certificate and write it to DIR/tls.crt")
	fs.StringVar(&f.signer, "signer", "", "with --submit (required): the `signer name`, "+pqClusterIssuerSignerDomain+"/<name> or "+pqIssuerSignerDomain+"/<namespace>.<name>")
	fs.StringVar(&f.name, "name", "", "with --submit: name of the CertificateSigningRequest (default: the common name or first SAN plus a random suffix)")
	fs.DurationVar(&f.expiration, "expiration", 0, "with --submit: requested validity (spec.expirationSeconds), at least 10m; the issuer may shorten it (default: the issuer's)")
	fs.Var(&f.usages, "usages", "with --submit: key usages (repeatable or comma separated; default \""+strings.Join(signer.DefaultUsages(), ",")+"\")")
	addWaitFlag(cmd, &f.wait, "with --submit: ")
	f.kube = addKubeFlags(cmd, "with --submit: ")
	if err := cmd.RegisterFlagCompletionFunc("signer", cobra.FixedCompletions(
		[]cobra.Completion{pqClusterIssuerSignerDomain + "/", pqIssuerSignerDomain + "/"}, cobra.ShellCompDirectiveNoSpace|cobra.ShellCompDirectiveNoFileComp)); err != nil {
		panic(err) // a flag the command lacks: a bug the tests show
	}
	names := make([]string, len(apiUsages))
	for i, u := range apiUsages {
		names[i] = string(u)
	}
	completeValues(cmd, "usages", names...)
	completeValues(cmd, "name")
	completeValues(cmd, "expiration")
	return f
}

// addWaitFlag adds --wait, which csr --submit and csr fetch share; when
// names the flags it needs.
func addWaitFlag(cmd *cobra.Command, wait *time.Duration, when string) {
	cmd.Flags().DurationVar(wait, "wait", defaultWait, when+"how long to wait for the certificate (0: do not wait)")
	completeValues(cmd, "wait")
}

// check refuses flag combinations that cannot work, before a key is made.
func (f *submitFlags) check(fs *pflag.FlagSet) error {
	if !f.submit {
		for _, n := range submitOnly {
			if fs.Changed(n) {
				return usagef("--%s is for --submit: add --submit or drop --%s", n, n)
			}
		}
		return nil
	}
	if strings.TrimSpace(f.signer) == "" {
		return usagef("--submit needs --signer: %s", signerNameHelp)
	}
	if _, err := signerIssuer(f.signer); err != nil {
		return err
	}
	if f.name != "" {
		if msgs := content.IsPathSegmentName(f.name); len(msgs) > 0 {
			return usagef("--name %q is not a valid object name: %s", f.name, strings.Join(msgs, "; "))
		}
	}
	if f.expiration != 0 && f.expiration < minExpiration {
		return usagef("--expiration %s is shorter than the 10m the CertificateSigningRequest API accepts", f.expiration)
	}
	if f.expiration/time.Second > math.MaxInt32 {
		return usagef("--expiration %s is longer than the CertificateSigningRequest API accepts (68 years)", f.expiration)
	}
	if _, err := f.apiUsages(); err != nil {
		return err
	}
	if f.wait < 0 {
		return usagef("--wait %s is negative: give a duration, or 0 not to wait", f.wait)
	}
	return nil
}

// signerIssuer checks a signer name as the API server does and, for
// pq-issuer's, as pq-issuer does. It names the issuer of a pq-issuer signer
// name, and returns "" for another signer's.
func signerIssuer(name string) (string, error) {
	domain, rest, ok := strings.Cut(name, "/")
	if !ok || strings.Contains(rest, "/") || validSignerDomain(domain) != nil || validSignerPath(rest) != nil {
		return "", usagef("--signer %q is not a signer name: %s", name, signerNameHelp)
	}
	switch domain {
	case pqClusterIssuerSignerDomain:
		if len(validation.IsDNS1123Subdomain(rest)) > 0 {
			return "", usagef("--signer %q: %q is not a PQClusterIssuer name; %s", name, rest, signerNameHelp)
		}
		return "PQClusterIssuer " + rest, nil
	case pqIssuerSignerDomain:
		ns, issuer, ok := strings.Cut(rest, ".")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(issuer)) > 0 {
			return "", usagef("--signer %q names no namespace and PQIssuer: %s", name, signerNameHelp)
		}
		return "PQIssuer " + ns + "/" + issuer, nil
	}
	if strings.HasSuffix(domain, ".pq-issuer.dev") || domain == "pq-issuer.dev" {
		return "", usagef("--signer %q: pq-issuer signs for no %s; %s", name, domain, signerNameHelp)
	}
	return "", nil
}

// validSignerDomain and validSignerPath are the API server's rules
// (ValidateSignerName): a domain of two or more DNS labels, and a path of
// dot-separated DNS subdomains.
func validSignerDomain(domain string) error {
	labels := strings.Split(domain, ".")
	if len(domain) > validation.DNS1123SubdomainMaxLength || len(labels) < 2 {
		return errors.New("not a domain")
	}
	for _, l := range labels {
		if len(validation.IsDNS1123Label(l)) > 0 {
			return errors.New("not a domain")
		}
	}
	return nil
}

func validSignerPath(p string) error {
	if len(p) > validation.DNS1123SubdomainMaxLength+validation.DNS1123LabelMaxLength+1 {
		return errors.New("too long")
	}
	for _, l := range strings.Split(p, ".") {
		if len(validation.IsDNS1123Subdomain(l)) > 0 {
			return errors.New("not a path")
		}
	}
	return nil
}

// apiUsages are --usages as the API spells them, default
// signer.DefaultUsages, each once.
func (f *submitFlags) apiUsages() ([]certificatesv1.KeyUsage, error) {
	names := []string(f.usages)
	if len(names) == 0 {
		names = signer.DefaultUsages()
	}
	var usages []certificatesv1.KeyUsage
	for _, n := range names {
		u := certificatesv1.KeyUsage(strings.ToLower(n))
		if !slices.Contains(apiUsages, u) {
			return nil, usagef("--usages: unknown usage %q: use the API's names, e.g. \"digital signature\", \"server auth\", \"client auth\"", n)
		}
		if !slices.Contains(usages, u) {
			usages = append(usages, u)
		}
	}
	return usages, nil
}

// maxNameBase leaves room for the random suffix in 63 characters, as the
// API server's generateName does.
const maxNameBase = 57

// defaultObjectName makes a CertificateSigningRequest name from who the
// request is for, so that kubectl get csr says whose it is, plus a random
// suffix, so that renewing never collides with the previous request.
func defaultObjectName(csr *x509.CertificateRequest) string {
	who := csr.Subject.CommonName
	for _, n := range [][]string{csr.DNSNames, urlStrings(csr.URIs), ipStrings(csr.IPAddresses), csr.EmailAddresses} {
		if who == "" && len(n) > 0 {
			who = n[0]
		}
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(who) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	base := strings.TrimRight(b.String(), "-")
	if len(base) > maxNameBase {
		base = strings.TrimRight(base[:maxNameBase], "-")
	}
	if base == "" {
		base = "csr"
	}
	return base + "-" + utilrand.String(5)
}

// submit creates the CertificateSigningRequest for csrPEM and says what
// happens next.
func (c *cli) submit(ctx context.Context, csrs csrAPI, f *submitFlags, csr *x509.CertificateRequest, csrPEM []byte, outDir string) (string, error) {
	name := f.name
	if name == "" {
		name = defaultObjectName(csr)
	}
	usages, err := f.apiUsages()
	if err != nil {
		return "", err
	}
	obj := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    csrPEM,
			SignerName: f.signer,
			Usages:     usages,
		},
	}
	if f.expiration != 0 {
		s := int32(f.expiration / time.Second)
		obj.Spec.ExpirationSeconds = &s
	}
	if _, err := csrs.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return "", explainCreateError(err, name, f.signer, csr, outDir, *f.kube)
	}
	issuer, _ := signerIssuer(f.signer)
	if issuer != "" {
		issuer = " (" + issuer + ")"
	}
	fmt.Fprintf(c.stdout, "Submitted CertificateSigningRequest %s to signer %s%s\n", name, f.signer, issuer)
	fmt.Fprintf(c.stdout, "Next, an approver (RBAC in certificates.k8s.io: update on certificatesigningrequests/approval, approve on signers %q) runs:\n  kubectl certificate approve %s\n", f.signer, name)
	return name, nil
}

// explainCreateError turns the API server's refusals into what to do.
func explainCreateError(err error, name, signerName string, csr *x509.CertificateRequest, outDir string, kube kubeFlags) error {
	what := "creating CertificateSigningRequest " + name
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %s: you need RBAC permission to create certificatesigningrequests (API group certificates.k8s.io); check with 'kubectl auth can-i create certificatesigningrequests.certificates.k8s.io'",
			what, escapeText(statusMessage(err)))
	case apierrors.IsAlreadyExists(err):
		return fmt.Errorf("%s: one of that name exists: choose another --name, or fetch its certificate into the directory with its key: '%s'",
			what, fetchCommand(name, outDir, kube))
	case apierrors.IsInvalid(err):
		causes := invalidCauses(err)
		for _, cause := range causes {
			switch {
			case cause.Field == "spec.request" && strings.Contains(cause.Message, x509.ErrUnsupportedAlgorithm.Error()) && isMLDSA(csr):
				return fmt.Errorf("%s: the API server cannot verify the request's %s signature (%s): it needs Go 1.27 or newer to know ML-DSA, and was built with an older Go (official kube-apiserver 1.37 builds are); "+
					"use an ECDSA key for requests through this API (kubectl pq csr --algorithm ECDSA-P256 ...), or sign %s offline with 'kubectl pq sign --ca-dir CA-DIR --csr %s'",
					what, csr.SignatureAlgorithm, x509.ErrUnsupportedAlgorithm, shellQuote(filepath.Join(outDir, csrFile)), shellQuote(filepath.Join(outDir, csrFile)))
			case cause.Field == "spec.signerName":
				return fmt.Errorf("%s: the API server refuses signer name %q: %s; %s", what, signerName, escapeText(cause.Message), signerNameHelp)
			}
		}
		msgs := make([]string, len(causes))
		for i, cause := range causes {
			msgs[i] = cause.Field + ": " + cause.Message
		}
		if len(msgs) == 0 {
			msgs = append(msgs, statusMessage(err))
		}
		return fmt.Errorf("%s: the API server refuses it: %s", what, escapeText(strings.Join(msgs, "; ")))
	}
	return fmt.Errorf("%s: %s", what, escapeText(err.Error()))
}

// invalidCauses are the field errors of an Invalid error, without the
// rejected request itself, which the API server quotes in base64.
func invalidCauses(err error) []metav1.StatusCause {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return nil
	}
	causes := slices.Clone(status.Status().Details.Causes)
	for i, cause := range causes {
		if cause.Field != "spec.request" {
			continue
		}
		if rest, ok := strings.CutPrefix(cause.Message, "Invalid value: "); ok {
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				causes[i].Message = strings.TrimPrefix(rest[len(q):], ": ")
			}
		}
	}
	return causes
}

// statusMessage is the API server's message, without the client's prefix.
func statusMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}

func isMLDSA(csr *x509.CertificateRequest) bool {
	switch csr.SignatureAlgorithm {
	case x509.MLDSA44, x509.MLDSA65, x509.MLDSA87:
		return true
	}
	return false
}

// fetchCommand is the command line that fetches name's certificate later.
func fetchCommand(name, outDir string, kube kubeFlags) string {
	cmd := "kubectl pq csr fetch " + shellQuote(name) + " --out-dir " + shellQuote(outDir)
	if kube.kubeconfig != "" {
		cmd += " --kubeconfig " + shellQuote(kube.kubeconfig)
	}
	if kube.context != "" {
		cmd += " --context " + shellQuote(kube.context)
	}
	return cmd
}

// shellQuote quotes s for a POSIX shell when it holds more than plain
// path characters.
func shellQuote(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@=+,", r)) {
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
}

package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// fetchTarget is a CertificateSigningRequest whose certificate goes into
// outDir, and the key it must be for.
type fetchTarget struct {
	name   string
	outDir string
	force  bool
	kube   kubeFlags
	// key is the public key the certificate must carry, with its
	// SubjectPublicKeyInfo, and where it comes from; nil: the request's.
	key       crypto.PublicKey
	spki      []byte
	keySource string
}

func (c *cli) csrFetchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fetch NAME --out-dir DIR [--wait DURATION] [flags]",
		Short: "Wait for a CertificateSigningRequest's certificate and write it to DIR/tls.crt",
		Long: `Waits until the CertificateSigningRequest NAME (submitted with 'kubectl pq
csr --submit') is issued, denied or failed, and writes its certificate
chain, leaf first, to DIR/tls.crt. If DIR/tls.key exists, the request and
the certificate must be for that key: a certificate for another key is
refused. --wait 0 looks once and does not wait.`,
		Example: `  kubectl pq csr fetch api-7xq2m --out-dir api`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("fetch takes the name of one CertificateSigningRequest, got %d arguments", len(args))
			}
			return nil
		},
	}
	fs := cmd.Flags()
	outDir := fs.String("out-dir", "", "directory holding the request's tls.key, to write tls.crt to")
	force := fs.Bool("force", false, "overwrite tls.crt if it exists")
	var wait time.Duration
	addWaitFlag(cmd, &wait, "")
	kube := addKubeFlags(cmd, "")
	cmd.ValidArgsFunction = c.completeCSRNames(kube)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := required(fs, "out-dir"); err != nil {
			return err
		}
		if wait < 0 {
			return usagef("--wait %s is negative: give a duration, or 0 not to wait", wait)
		}
		t := fetchTarget{name: args[0], outDir: *outDir, force: *force, kube: *kube}
		if err := t.checkCertFile(); err != nil {
			return err
		}
		if err := t.loadKey(); err != nil {
			return err
		}
		if t.key == nil {
			fmt.Fprintf(c.stderr, "Note: %s does not exist: the certificate is checked against the request's key only\n", filepath.Join(t.outDir, keyFile))
		}
		csrs, err := c.csrClient(*kube)
		if err != nil {
			return err
		}
		return c.await(cmd.Context(), csrs, t, wait)
	}
	return cmd
}

// checkCertFile refuses, before any waiting, to overwrite tls.crt without --force.
func (t *fetchTarget) checkCertFile() error {
	p := filepath.Join(t.outDir, certFile)
	if _, err := os.Lstat(p); err == nil && !t.force {
		return fmt.Errorf("%s already exists; use --force to overwrite it", p)
	}
	return nil
}

// loadKey reads the public key of outDir/tls.key, if there is one.
func (t *fetchTarget) loadKey() error {
	p := filepath.Join(t.outDir, keyFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return fmt.Errorf("%s is not a PKCS#8 private key (PEM \"PRIVATE KEY\"), as kubectl pq csr writes", p)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("%s holds a %T, not a signing key", p, key)
	}
	spki, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	t.key, t.spki, t.keySource = s.Public(), spki, p
	return nil
}

// await waits for the CSR, then writes its certificate or says why there is none.
func (c *cli) await(ctx context.Context, csrs csrAPI, t fetchTarget, wait time.Duration) error {
	csr, err := awaitCSR(ctx, csrs, t.name, wait, c.reporter(&t, wait))
	if err != nil {
		return err
	}
	if d := condition(csr, certificatesv1.CertificateDenied); d != nil {
		return fmt.Errorf("CertificateSigningRequest %s was denied (%s): %s", t.name, escapeText(d.Reason), escapeText(d.Message))
	}
	if f := condition(csr, certificatesv1.CertificateFailed); f != nil {
		return fmt.Errorf("CertificateSigningRequest %s failed (%s): %s", t.name, escapeText(f.Reason), escapeText(f.Message))
	}
	if len(csr.Status.Certificate) == 0 {
		return notIssued(csr, t, wait)
	}
	return c.writeCertificate(csr, t)
}

// reporter checks the request on first sight and says what waiting is
// for: once on starting to wait, once on approval.
func (c *cli) reporter(t *fetchTarget, wait time.Duration) func(*certificatesv1.CertificateSigningRequest) error {
	first, approved := true, false
	return func(csr *certificatesv1.CertificateSigningRequest) error {
		if first {
			first = false
			if err := t.checkRequest(csr); err != nil {
				return err
			}
			if !finished(csr) && wait > 0 {
				fmt.Fprintf(c.stdout, "Waiting up to %s for the certificate (%s); Ctrl-C stops waiting, and '%s' resumes\n",
					wait, csrState(csr), fetchCommand(t.name, t.outDir, t.kube))
			}
		}
		if a := condition(csr, certificatesv1.CertificateApproved); a != nil && !approved && !finished(csr) {
			approved = true
			fmt.Fprintf(c.stdout, "Approved (%s: %s); waiting for signer %s to issue the certificate\n", escapeText(a.Reason), escapeText(a.Message), csr.Spec.SignerName)
		}
		return nil
	}
}

// checkRequest refuses a request for another key than the target's, so
// that tls.crt never lands beside a key it does not belong to.
func (t *fetchTarget) checkRequest(csr *certificatesv1.CertificateSigningRequest) error {
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return fmt.Errorf("CertificateSigningRequest %s: spec.request is not PEM", t.name)
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return fmt.Errorf("CertificateSigningRequest %s: spec.request: %w", t.name, err)
	}
	if t.key == nil {
		t.key, t.spki, t.keySource = req.PublicKey, req.RawSubjectPublicKeyInfo, "its request"
		return nil
	}
	if string(req.RawSubjectPublicKeyInfo) != string(t.spki) {
		return fmt.Errorf("CertificateSigningRequest %s is for an %s key, not for the %s key in %s: refusing to write its certificate there; fetch it into the directory that holds its key",
			t.name, publicKeyName(req.PublicKey, req.RawSubjectPublicKeyInfo), publicKeyName(t.key, t.spki), t.keySource)
	}
	return nil
}

// finished is true once the CSR will change no more: issued, denied or failed.
func finished(csr *certificatesv1.CertificateSigningRequest) bool {
	return len(csr.Status.Certificate) > 0 || condition(csr, certificatesv1.CertificateDenied) != nil || condition(csr, certificatesv1.CertificateFailed) != nil
}

// awaitCSR returns the CSR named name once it is finished, or its last
// version when wait runs out (0: at once). It lists and then watches from
// the list's resource version, as an informer does, so no change is lost
// between the two; seen is called with each version.
func awaitCSR(ctx context.Context, csrs csrAPI, name string, wait time.Duration, seen func(*certificatesv1.CertificateSigningRequest) error) (*certificatesv1.CertificateSigningRequest, error) {
	if wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	var last *certificatesv1.CertificateSigningRequest
	for {
		list, err := csrs.List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			if ctx.Err() != nil && last != nil {
				return last, nil
			}
			return nil, explainReadError(err, name)
		}
		var cur *certificatesv1.CertificateSigningRequest
		for i := range list.Items {
			if list.Items[i].Name == name {
				cur = &list.Items[i]
			}
		}
		if cur == nil {
			return nil, fmt.Errorf("CertificateSigningRequest %s not found: 'kubectl get csr' lists them; the cluster deletes one an hour after it is issued or denied, and a pending one after a day", name)
		}
		last = cur
		if err := seen(cur); err != nil {
			return nil, err
		}
		if finished(cur) || wait <= 0 {
			return cur, nil
		}
		w, err := csrs.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: list.ResourceVersion})
		if err != nil {
			if ctx.Err() != nil {
				return last, nil
			}
			return nil, explainReadError(err, name)
		}
		done, err := watchCSR(ctx, w, name, &last, seen)
		w.Stop()
		if done || err != nil {
			return last, err
		}
		// The server ended the watch (its timeout, or a resource version too
		// old): list again, after a pause, so that a server ending every
		// watch at once is not flooded.
		select {
		case <-ctx.Done():
			return last, nil
		case <-time.After(time.Second):
		}
	}
}

// watchCSR follows one watch; done is true when *last is finished or the
// time is up, false when the watch ended and needs a new list.
func watchCSR(ctx context.Context, w watch.Interface, name string, last **certificatesv1.CertificateSigningRequest, seen func(*certificatesv1.CertificateSigningRequest) error) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return false, nil
				}
				return true, explainReadError(err, name)
			}
			csr, ok := ev.Object.(*certificatesv1.CertificateSigningRequest)
			if !ok || csr.Name != name {
				continue
			}
			if ev.Type == watch.Deleted {
				return true, fmt.Errorf("CertificateSigningRequest %s was deleted while waiting for its certificate", name)
			}
			*last = csr
			if err := seen(csr); err != nil {
				return true, err
			}
			if finished(csr) {
				return true, nil
			}
		}
	}
}

// explainReadError names the RBAC that waiting needs.
func explainReadError(err error, name string) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("reading CertificateSigningRequest %s: %s: waiting for it needs RBAC permission to list and watch certificatesigningrequests (API group certificates.k8s.io)", name, escapeText(statusMessage(err)))
	}
	return fmt.Errorf("reading CertificateSigningRequest %s: %s", name, escapeText(err.Error()))
}

// notIssued says why a CSR that was neither denied nor failed has no
// certificate, and how to fetch it later.
func notIssued(csr *certificatesv1.CertificateSigningRequest, t fetchTarget, wait time.Duration) error {
	when := "yet"
	if wait > 0 {
		when = "after " + wait.String()
	}
	fetch := fetchCommand(t.name, t.outDir, t.kube)
	if condition(csr, certificatesv1.CertificateApproved) == nil {
		return fmt.Errorf("CertificateSigningRequest %s is not approved %s: an approver runs 'kubectl certificate approve %s'; then fetch the certificate with '%s'", t.name, when, t.name, fetch)
	}
	check := "the controller of signer " + csr.Spec.SignerName + " runs"
	if issuer, err := signerIssuer(csr.Spec.SignerName); err == nil && issuer != "" {
		check = "pq-issuer runs and " + issuer + " exists and is Ready"
	}
	return fmt.Errorf("CertificateSigningRequest %s is approved but has no certificate %s: check that %s ('kubectl describe csr %s' shows the signer's events); then fetch it with '%s'", t.name, when, check, t.name, fetch)
}

// writeCertificate writes the CSR's chain, leaf first, to tls.crt, if the
// leaf is for the target's key.
func (c *cli) writeCertificate(csr *certificatesv1.CertificateSigningRequest, t fetchTarget) error {
	var certs []*x509.Certificate
	for rest := csr.Status.Certificate; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("CertificateSigningRequest %s: status.certificate holds a %s PEM block, not only certificates", t.name, quote(block.Type, ""))
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("CertificateSigningRequest %s: status.certificate: %w", t.name, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return fmt.Errorf("CertificateSigningRequest %s: status.certificate holds no PEM certificate", t.name)
	}
	leaf := -1
	for i, cert := range certs {
		if string(cert.RawSubjectPublicKeyInfo) == string(t.spki) {
			leaf = i
			break
		}
	}
	path := filepath.Join(t.outDir, certFile)
	if leaf < 0 {
		return fmt.Errorf("CertificateSigningRequest %s was issued a certificate for an %s key, not for the %s key of %s: refusing to write it to %s",
			t.name, publicKeyName(certs[0].PublicKey, certs[0].RawSubjectPublicKeyInfo), publicKeyName(t.key, t.spki), t.keySource, path)
	}
	// The leaf first, then the rest in the signer's order.
	ordered := []*x509.Certificate{certs[leaf]}
	for i, cert := range certs {
		if i != leaf {
			ordered = append(ordered, cert)
		}
	}
	var chainPEM []byte
	for _, cert := range ordered {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	if err := writeFiles(t.outDir, t.force, outFile{certFile, chainPEM, 0o644}); err != nil {
		return err
	}
	cert := ordered[0]
	fmt.Fprintf(c.stdout, "Wrote %s (%d %s): %s; issuer %s; not after %s; signed with %s\n",
		path, len(ordered), plural(len(ordered), "certificate"), certNames(cert), formatDN(cert.RawIssuer), formatTime(cert.NotAfter), signatureName(cert.SignatureAlgorithm, cert.Raw))
	return nil
}

// certNames lists who a certificate from the cluster is for, quoting what
// is not plain text.
func certNames(cert *x509.Certificate) string {
	var names []string
	if len(cert.Subject.Names) > 0 {
		names = append(names, formatDN(cert.RawSubject))
	}
	for _, group := range [][]string{cert.DNSNames, urlStrings(cert.URIs), ipStrings(cert.IPAddresses), cert.EmailAddresses} {
		for _, n := range group {
			names = append(names, listItem(n))
		}
	}
	return strings.Join(names, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// completeCSRNames completes the names of the cluster's
// CertificateSigningRequests, described by signer and state.
func (c *cli) completeCSRNames(f *kubeFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		csrs, err := c.csrClient(*f)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		list, err := csrs.List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for i := range list.Items {
			csr := &list.Items[i]
			if strings.HasPrefix(csr.Name, toComplete) {
				names = append(names, cobra.CompletionWithDesc(csr.Name, csr.Spec.SignerName+", "+csrState(csr)))
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completionTimeout bounds the cluster call behind a shell completion: a
// slow cluster must not hang the shell.
const completionTimeout = 5 * time.Second

// csrState is the state of a CSR as kubectl get csr shows it.
func csrState(csr *certificatesv1.CertificateSigningRequest) string {
	var state []string
	for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed} {
		if condition(csr, t) != nil {
			state = append(state, string(t))
		}
	}
	if len(state) == 0 {
		state = append(state, "Pending")
	}
	if len(csr.Status.Certificate) > 0 {
		state = append(state, "Issued")
	}
	return strings.Join(state, ",")
}

// condition is the CSR's condition of type t, when it is true.
func condition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) *certificatesv1.CertificateSigningRequestCondition {
	for i := range csr.Status.Conditions {
		if c := &csr.Status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apifield "k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/pq-issuer/pq-issuer/signer"
)

const (
	clusterSigner = "pqclusterissuers.pq-issuer.dev/mesh-ca"
	approveReason = "KubectlApprove"
	approveMsg    = "This CSR was approved by kubectl certificate approve."
)

var csrGR = schema.GroupResource{Group: certificatesv1.GroupName, Resource: "certificatesigningrequests"}

// cluster is a fake API server holding CertificateSigningRequests, and an
// intermediate CA to play their signer with.
type cluster struct {
	client *fake.Clientset
	ca     *signer.CA
	// watching receives a value each time a command starts a watch.
	watching chan struct{}
}

func newCluster(t *testing.T, objects ...runtime.Object) *cluster {
	t.Helper()
	cl := &cluster{client: fake.NewClientset(objects...), ca: newTestCA(t), watching: make(chan struct{}, 10)}
	cl.client.PrependWatchReactor("certificatesigningrequests", func(clienttesting.Action) (bool, watch.Interface, error) {
		select {
		case cl.watching <- struct{}{}:
		default: // nobody waits for this many watches
		}
		return false, nil, nil // on to the tracker
	})
	return cl
}

// newTestCA makes an ML-DSA root and intermediate with the CLI and loads
// the intermediate.
func newTestCA(t *testing.T) *signer.CA {
	t.Helper()
	dir := t.TempDir()
	root, issuing := filepath.Join(dir, "root"), filepath.Join(dir, "issuing")
	mustRun(t, "ca", "create", "--subject", "CN=Mesh Root", "--out-dir", root)
	mustRun(t, "ca", "intermediate", "--ca-dir", root, "--subject", "CN=Mesh Issuing CA", "--out-dir", issuing)
	ca, err := signer.LoadCA(readFile(t, filepath.Join(issuing, "tls.crt")), readFile(t, filepath.Join(issuing, "tls.key")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// run runs a command line against the fake cluster.
func (cl *cluster) run(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, now: time.Now,
		csrClient: func(kubeFlags) (csrAPI, error) { return cl.client.CertificatesV1().CertificateSigningRequests(), nil }}
	code := c.run(args)
	return result{code, stdout.String(), stderr.String()}
}

// act is what approvers and the signer do to a CSR once a command waits for it.
type act func(t *testing.T, cl *cluster, csr *certificatesv1.CertificateSigningRequest)

// onWatch runs a on the CSR name once a command watches it, in the
// background; the returned function waits until a is done.
func (cl *cluster) onWatch(t *testing.T, name string, a act) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-cl.watching:
		case <-time.After(time.Minute):
			t.Error("the command never watched")
			return
		}
		csr, err := cl.client.CertificatesV1().CertificateSigningRequests().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Error(err)
			return
		}
		a(t, cl, csr)
	}()
	return func() { <-done }
}

func (cl *cluster) update(t *testing.T, csr *certificatesv1.CertificateSigningRequest) {
	if _, err := cl.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(context.Background(), csr, metav1.UpdateOptions{}); err != nil {
		t.Error(err)
	}
}

func setCondition(csr *certificatesv1.CertificateSigningRequest, typ certificatesv1.RequestConditionType, reason, message string) {
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastUpdateTime: metav1.Now(),
	})
}

// issueFor returns the chain ca issues for the request.
func issueFor(t *testing.T, ca *signer.CA, request []byte) []byte {
	csr, err := signer.ParseCSR(request)
	if err != nil {
		t.Error(err)
		return nil
	}
	issued, err := ca.Issue(signer.LeafRequest{CSR: csr, Duration: 24 * time.Hour, Usages: signer.DefaultUsages()}, signer.Policy{MaxDuration: signer.DefaultMaxDuration}, time.Now())
	if err != nil {
		t.Error(err)
		return nil
	}
	return issued.ChainPEM
}

func approve(t *testing.T, cl *cluster, csr *certificatesv1.CertificateSigningRequest) {
	setCondition(csr, certificatesv1.CertificateApproved, approveReason, approveMsg)
	cl.update(t, csr)
}

// approveAndIssue approves, then issues in a second update, as an approver
// and the signer do.
func approveAndIssue(t *testing.T, cl *cluster, csr *certificatesv1.CertificateSigningRequest) {
	approve(t, cl, csr)
	csr.Status.Certificate = issueFor(t, cl.ca, csr.Spec.Request)
	cl.update(t, csr)
}

func deny(t *testing.T, cl *cluster, csr *certificatesv1.CertificateSigningRequest) {
	setCondition(csr, certificatesv1.CertificateDenied, "AdminDenied", "not for this cluster: see ticket #42")
	cl.update(t, csr)
}

func fail(t *testing.T, cl *cluster, csr *certificatesv1.CertificateSigningRequest) {
	approve(t, cl, csr)
	setCondition(csr, certificatesv1.CertificateFailed, "IssuerNotReady", "PQClusterIssuer mesh-ca is not Ready: CA Secret cert-manager/mesh-ca not found")
	cl.update(t, csr)
}

// refuseCreate makes the fake API server refuse every create with err.
func refuseCreate(err error) func(*cluster) {
	return func(cl *cluster) {
		cl.client.PrependReactor("create", "certificatesigningrequests", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, err
		})
	}
}

func invalid(name string, errs ...*apifield.Error) error {
	return apierrors.NewInvalid(schema.GroupKind{Group: certificatesv1.GroupName, Kind: "CertificateSigningRequest"}, name, errs)
}

// checkChain checks that path holds a chain whose first certificate is for
// the key in keyPath and is signed by the next.
func checkChain(t *testing.T, path, keyPath string, wantCerts int) {
	t.Helper()
	certs := parseCerts(t, readFile(t, path))
	if len(certs) != wantCerts {
		t.Fatalf("%s holds %d certificates, want %d", path, len(certs), wantCerts)
	}
	block, _ := pem.Decode(readFile(t, keyPath))
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(key.(crypto.Signer).Public())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certs[0].RawSubjectPublicKeyInfo, spki) {
		t.Errorf("the first certificate of %s is not for the key in %s", path, keyPath)
	}
	if len(certs) > 1 {
		if err := certs[0].CheckSignatureFrom(certs[1]); err != nil {
			t.Errorf("the leaf is not signed by the next certificate: %v", err)
		}
	}
}

func TestSubmit(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		setup func(*cluster)
		// act is done once the command watches.
		act        act
		wantCode   int
		wantStdout []string
		wantStderr []string
		// wantCert: the command wrote tls.crt.
		wantCert bool
	}{
		{
			name: "issued: tls.crt written, leaf first, for the new key",
			act:  approveAndIssue,
			wantStdout: []string{
				"Created ML-DSA-65 key and CSR for CN=api, api.demo.svc\n",
				"Submitted CertificateSigningRequest api-test to signer " + clusterSigner + " (PQClusterIssuer mesh-ca)\n",
				"Next, an approver (RBAC in certificates.k8s.io: update on certificatesigningrequests/approval, approve on signers \"" + clusterSigner + "\") runs:\n  kubectl certificate approve api-test\n",
				"Waiting up to 1m0s for the certificate (Pending); Ctrl-C stops waiting, and 'kubectl pq csr fetch api-test --out-dir DIR' resumes\n",
				"Approved (" + approveReason + ": " + approveMsg + "); waiting for signer " + clusterSigner + " to issue the certificate\n",
				"DIR/tls.crt (2 certificates): CN=api, api.demo.svc; issuer CN=Mesh Issuing CA; not after ",
				"; signed with ML-DSA-65\n",
			},
			wantCert: true,
		},
		{
			name:     "an ECDSA key through a PQIssuer",
			args:     []string{"--algorithm", "ECDSA-P256", "--signer", "pqissuers.pq-issuer.dev/demo.mesh-ca"},
			act:      approveAndIssue,
			wantCert: true,
			wantStdout: []string{"Created ECDSA P-256 key", "to signer pqissuers.pq-issuer.dev/demo.mesh-ca (PQIssuer demo/mesh-ca)\n",
				"waiting for signer pqissuers.pq-issuer.dev/demo.mesh-ca to issue"},
		},
		{
			name:       "denied: reason and message verbatim",
			act:        deny,
			wantCode:   1,
			wantStderr: []string{"kubectl-pq: csr: CertificateSigningRequest api-test was denied (AdminDenied): not for this cluster: see ticket #42\n"},
		},
		{
			name:       "failed: reason and message verbatim",
			act:        fail,
			wantCode:   1,
			wantStderr: []string{"kubectl-pq: csr: CertificateSigningRequest api-test failed (IssuerNotReady): PQClusterIssuer mesh-ca is not Ready: CA Secret cert-manager/mesh-ca not found\n"},
		},
		{
			name:     "timeout before approval: how to approve and fetch later",
			args:     []string{"--wait", "300ms"},
			wantCode: 1,
			wantStderr: []string{"kubectl-pq: csr: CertificateSigningRequest api-test is not approved after 300ms: an approver runs 'kubectl certificate approve api-test'; " +
				"then fetch the certificate with 'kubectl pq csr fetch api-test --out-dir DIR'\n"},
		},
		{
			name:     "timeout after approval: which issuer to check",
			args:     []string{"--wait", "2s", "--context", "prod"},
			act:      approve,
			wantCode: 1,
			wantStderr: []string{"CertificateSigningRequest api-test is approved but has no certificate after 2s: check that pq-issuer runs and PQClusterIssuer mesh-ca exists and is Ready " +
				"('kubectl describe csr api-test' shows the signer's events); then fetch it with 'kubectl pq csr fetch api-test --out-dir DIR --context prod'\n"},
		},
		{
			name:       "--wait 0 submits and says how to fetch",
			args:       []string{"--wait", "0"},
			wantStdout: []string{"kubectl certificate approve api-test\n", "Not waiting (--wait 0): once it is issued, fetch the certificate with\n  kubectl pq csr fetch api-test --out-dir DIR\n"},
		},
		{
			name: "forbidden create names the RBAC",
			setup: refuseCreate(apierrors.NewForbidden(csrGR, "api-test",
				errors.New(`User "alice" cannot create resource "certificatesigningrequests" in API group "certificates.k8s.io" at the cluster scope`))),
			wantCode: 1,
			wantStderr: []string{"kubectl-pq: csr: creating CertificateSigningRequest api-test: certificatesigningrequests.certificates.k8s.io \"api-test\" is forbidden: User \"alice\" cannot create",
				"you need RBAC permission to create certificatesigningrequests (API group certificates.k8s.io); check with 'kubectl auth can-i create certificatesigningrequests.certificates.k8s.io'\n"},
		},
		{
			name: "ML-DSA request refused by an API server built with Go 1.26",
			setup: refuseCreate(invalid("api-test", apifield.Invalid(apifield.NewPath("spec", "request"), []byte("-----BEGIN CERTIFICATE REQUEST-----\n..."),
				"x509: cannot verify signature: algorithm unimplemented"))),
			wantCode: 1,
			wantStderr: []string{"kubectl-pq: csr: creating CertificateSigningRequest api-test: the API server cannot verify the request's ML-DSA-65 signature (x509: cannot verify signature: algorithm unimplemented): " +
				"it needs Go 1.27 or newer to know ML-DSA, and was built with an older Go (official kube-apiserver 1.37 builds are); " +
				"use an ECDSA key for requests through this API (kubectl pq csr --algorithm ECDSA-P256 ...), or sign DIR/csr.pem offline with 'kubectl pq sign --ca-dir CA-DIR --csr DIR/csr.pem'\n"},
		},
		{
			name: "the same refusal of a classical request blames no Go version, and hides the request",
			args: []string{"--algorithm", "Ed25519"},
			setup: refuseCreate(invalid("api-test", apifield.Invalid(apifield.NewPath("spec", "request"), []byte("-----BEGIN CERTIFICATE REQUEST-----\n..."),
				"x509: cannot verify signature: algorithm unimplemented"))),
			wantCode:   1,
			wantStderr: []string{"creating CertificateSigningRequest api-test: the API server refuses it: spec.request: x509: cannot verify signature: algorithm unimplemented\n"},
		},
		{
			name: "a signer name the API server refuses",
			args: []string{"--signer", "kubernetes.io/legacy-unknown"},
			setup: refuseCreate(invalid("api-test", apifield.Invalid(apifield.NewPath("spec", "signerName"), "kubernetes.io/legacy-unknown",
				"the legacy signerName is not allowed via this API version"))),
			wantCode: 1,
			wantStderr: []string{`creating CertificateSigningRequest api-test: the API server refuses signer name "kubernetes.io/legacy-unknown": Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is not allowed via this API version; ` +
				"a pq-issuer signer name is pqclusterissuers.pq-issuer.dev/<name> for a PQClusterIssuer, or pqissuers.pq-issuer.dev/<namespace>.<name> for a PQIssuer\n"},
		},
		{
			name:     "a name in use",
			setup:    refuseCreate(apierrors.NewAlreadyExists(csrGR, "api-test")),
			wantCode: 1,
			wantStderr: []string{"creating CertificateSigningRequest api-test: one of that name exists: choose another --name, or fetch its certificate into the directory with its key: " +
				"'kubectl pq csr fetch api-test --out-dir DIR'\n"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t)
			if tt.setup != nil {
				tt.setup(cl)
			}
			dir := filepath.Join(t.TempDir(), "api")
			args := append([]string{"csr", "--common-name", "api", "--dns", "api.demo.svc", "--out-dir", dir,
				"--submit", "--signer", clusterSigner, "--name", "api-test", "--wait", "1m"}, tt.args...)
			var waitAct func()
			if tt.act != nil {
				waitAct = cl.onWatch(t, "api-test", tt.act)
			}
			r := cl.run(t, args...)
			if waitAct != nil {
				waitAct()
			}
			stdout, stderr := strings.ReplaceAll(r.stdout, dir, "DIR"), strings.ReplaceAll(r.stderr, dir, "DIR")
			if r.code != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, tt.wantCode, r.stderr)
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if tt.wantCode != 0 && strings.Count(regexp.MustCompile(`(?m)^Note: .*\n`).ReplaceAllString(r.stderr, ""), "\n") != 1 {
				t.Errorf("a failure must be one line on stderr, got %q", r.stderr)
			}
			_, err := os.Stat(filepath.Join(dir, "tls.crt"))
			if gotCert := err == nil; gotCert != tt.wantCert {
				t.Fatalf("tls.crt written: %v, want %v", gotCert, tt.wantCert)
			}
			if tt.wantCert {
				checkChain(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), 2)
			}
		})
	}
}

// TestSubmitObject checks the CertificateSigningRequest the command creates.
func TestSubmitObject(t *testing.T) {
	tests := []struct {
		name           string
		args           []string
		wantName       *regexp.Regexp
		wantUsages     []certificatesv1.KeyUsage
		wantExpiration int32 // 0: not set
	}{
		{"defaults", []string{"--common-name", "api", "--dns", "api.demo.svc"}, regexp.MustCompile(`^api-[a-z0-9]{5}$`),
			[]certificatesv1.KeyUsage{"digital signature", "server auth", "client auth"}, 0},
		{"name, expiration and usages", []string{"--common-name", "api", "--name", "renewal-7", "--expiration", "1h", "--usages", "Digital Signature,client auth", "--usages", "client auth"},
			regexp.MustCompile(`^renewal-7$`), []certificatesv1.KeyUsage{"digital signature", "client auth"}, 3600},
		{"a name from a SPIFFE ID", []string{"--uri", spiffeID}, regexp.MustCompile(`^spiffe-cluster-local-ns-demo-sa-api-[a-z0-9]{5}$`),
			[]certificatesv1.KeyUsage{"digital signature", "server auth", "client auth"}, 0},
		{"a name from a long DNS name", []string{"--dns", strings.Repeat("Very-Long.", 10) + "example"}, regexp.MustCompile(`^(very-long-){5}very-lo-[a-z0-9]{5}$`),
			[]certificatesv1.KeyUsage{"digital signature", "server auth", "client auth"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t)
			dir := filepath.Join(t.TempDir(), "api")
			args := []string{"csr", "--out-dir", dir, "--submit", "--signer", "example.com/other-signer", "--wait", "0"}
			r := cl.run(t, append(args, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			list, err := cl.client.CertificatesV1().CertificateSigningRequests().List(context.Background(), metav1.ListOptions{})
			if err != nil || len(list.Items) != 1 {
				t.Fatalf("the cluster holds %d CSRs (%v), want 1", len(list.Items), err)
			}
			csr := list.Items[0]
			if !tt.wantName.MatchString(csr.Name) {
				t.Errorf("name %q, want %s", csr.Name, tt.wantName)
			}
			if !strings.Contains(r.stdout, "kubectl certificate approve "+csr.Name+"\n") {
				t.Errorf("stdout does not name %s:\n%s", csr.Name, r.stdout)
			}
			if csr.Spec.SignerName != "example.com/other-signer" || !slices.Equal(csr.Spec.Usages, tt.wantUsages) {
				t.Errorf("signer %q, usages %q; want example.com/other-signer, %q", csr.Spec.SignerName, csr.Spec.Usages, tt.wantUsages)
			}
			if got := csr.Spec.ExpirationSeconds; (got == nil) != (tt.wantExpiration == 0) || (got != nil && *got != tt.wantExpiration) {
				t.Errorf("expirationSeconds %v, want %d", got, tt.wantExpiration)
			}
			if !bytes.Equal(csr.Spec.Request, readFile(t, filepath.Join(dir, "csr.pem"))) {
				t.Errorf("spec.request is not csr.pem")
			}
		})
	}
}

// TestSubmitBadFlags checks the command lines refused before any key is
// made or any cluster is asked.
func TestSubmitBadFlags(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"no signer", []string{"--submit"}, 2,
			"kubectl-pq: csr: --submit needs --signer: a pq-issuer signer name is pqclusterissuers.pq-issuer.dev/<name> for a PQClusterIssuer, or pqissuers.pq-issuer.dev/<namespace>.<name> for a PQIssuer (see 'kubectl pq csr --help')"},
		{"an issuer name, not a signer name", []string{"--submit", "--signer", "mesh-ca"}, 2, `--signer "mesh-ca" is not a signer name: a pq-issuer signer name is`},
		{"a domain with one label", []string{"--submit", "--signer", "pq-issuer/mesh-ca"}, 2, `--signer "pq-issuer/mesh-ca" is not a signer name`},
		{"two slashes", []string{"--submit", "--signer", "pqclusterissuers.pq-issuer.dev/a/b"}, 2, "is not a signer name"},
		{"a PQIssuer without namespace", []string{"--submit", "--signer", "pqissuers.pq-issuer.dev/mesh-ca"}, 2,
			`--signer "pqissuers.pq-issuer.dev/mesh-ca" names no namespace and PQIssuer: a pq-issuer signer name is`},
		{"a misspelt pq-issuer domain", []string{"--submit", "--signer", "pqclusterissuer.pq-issuer.dev/mesh-ca"}, 2,
			`--signer "pqclusterissuer.pq-issuer.dev/mesh-ca": pq-issuer signs for no pqclusterissuer.pq-issuer.dev; a pq-issuer signer name is`},
		{"--signer without --submit", []string{"--signer", clusterSigner}, 2, "kubectl-pq: csr: --signer is for --submit: add --submit or drop --signer"},
		{"--wait without --submit", []string{"--wait", "1m"}, 2, "--wait is for --submit"},
		{"expiration below the API's minimum", []string{"--submit", "--signer", clusterSigner, "--expiration", "5m"}, 2,
			"--expiration 5m0s is shorter than the 10m the CertificateSigningRequest API accepts"},
		{"unknown usage", []string{"--submit", "--signer", clusterSigner, "--usages", "server auth,frobnicate"}, 2, `--usages: unknown usage "frobnicate"`},
		{"a name the API refuses", []string{"--submit", "--signer", clusterSigner, "--name", "api/1"}, 2, `--name "api/1" is not a valid object name: may not contain '/'`},
		{"negative wait", []string{"--submit", "--signer", clusterSigner, "--wait", "-1s"}, 2, "--wait -1s is negative"},
		{"a misspelt subcommand", []string{"fecth", "api-test"}, 2, `kubectl-pq: csr: unexpected argument "fecth" (did you mean fetch?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t)
			dir := filepath.Join(t.TempDir(), "api")
			r := cl.run(t, append([]string{"csr", "--common-name", "api", "--out-dir", dir}, tt.args...)...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantStderr) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line containing %q", r.code, r.stderr, tt.wantCode, tt.wantStderr)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("the refused command created %s", dir)
			}
			if n := len(cl.client.Actions()); n != 0 {
				t.Errorf("the refused command made %d API calls", n)
			}
		})
	}
}

// TestSubmitKeepsNoStaleCertificate checks that --submit never leaves the
// certificate of a previous key beside a new one.
func TestSubmitKeepsNoStaleCertificate(t *testing.T) {
	cl := newCluster(t)
	dir := filepath.Join(t.TempDir(), "api")
	writeFile(t, filepath.Join(dir, "tls.crt"), []byte("the previous key's certificate"))
	args := []string{"csr", "--common-name", "api", "--out-dir", dir, "--submit", "--signer", clusterSigner, "--name", "api-test", "--wait", "0"}
	r := cl.run(t, args...)
	if r.code != 1 || !strings.Contains(r.stderr, "tls.crt already exists; use --force to replace it, tls.key and csr.pem") {
		t.Errorf("without --force: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "tls.key")); err == nil || len(cl.client.Actions()) != 0 {
		t.Errorf("the refused command made a key or called the API")
	}
	if r := cl.run(t, append(args, "--force")...); r.code != 0 {
		t.Fatalf("with --force: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "tls.crt")); err == nil {
		t.Errorf("the previous tls.crt is still beside the new key")
	}
}

func TestSubmitCompletion(t *testing.T) {
	pending := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "api-7xq2m"}, Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: clusterSigner}}
	other := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "node-csr-1"}, Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: "kubernetes.io/kubelet-serving"}}
	kubeconfig := filepath.Join(t.TempDir(), "config")
	writeFile(t, kubeconfig, []byte(testKubeconfig("https://127.0.0.1:1")))
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"flags", []string{"csr", "--"}, []string{"--submit\t", "--signer\t", "--wait\t", "--expiration\t", "--usages\t", "--kubeconfig\t", "--context\t"}},
		{"signer names", []string{"csr", "--signer", ""}, []string{"pqclusterissuers.pq-issuer.dev/\n", "pqissuers.pq-issuer.dev/\n", ":6\n"}},
		{"usages", []string{"csr", "--usages", "s"}, []string{"server auth\n", "signing\n"}},
		{"contexts of --kubeconfig", []string{"csr", "--kubeconfig", kubeconfig, "--context", ""}, []string{"prod\tprod-cluster\n", "test\ttest-cluster\n"}},
		{"subcommand", []string{"csr", ""}, []string{"fetch\t"}},
		{"fetch flags", []string{"csr", "fetch", "api-7xq2m", "--"}, []string{"--out-dir\t", "--wait\t", "--force\t", "--context\t"}},
		{"CSR names from the cluster", []string{"csr", "fetch", "api"}, []string{"api-7xq2m\t" + clusterSigner + ", Pending\n", ":4\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t, pending, other)
			r := cl.run(t, append([]string{"__complete"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("completion lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "node-csr-1") {
				t.Errorf("completion offers a name without the prefix typed:\n%s", r.stdout)
			}
		})
	}
}

// TestCSRHelp checks that csr's help shows both its own form and its
// subcommand, and how to submit.
func TestCSRHelp(t *testing.T) {
	out := mustRun(t, "csr", "--help").stdout
	for _, want := range []string{
		"Usage:\n  kubectl pq csr [--common-name NAME] [--dns NAME] [--uri URI] [--ip IP] [--email ADDR] --out-dir DIR [--submit --signer SIGNER] [flags]\n  kubectl pq csr [command]\n",
		"  pqclusterissuers.pq-issuer.dev/<name>         for a PQClusterIssuer\n  pqissuers.pq-issuer.dev/<namespace>.<name>    for a PQIssuer\n",
		"kubectl pq csr fetch api-7xq2m --out-dir api",
		"fetch       Wait for a CertificateSigningRequest's certificate",
		"--wait duration         with --submit: how long to wait for the certificate (0: do not wait) (default 5m0s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("csr --help lacks %q:\n%s", want, out)
		}
	}
}

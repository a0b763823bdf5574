package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clienttesting "k8s.io/client-go/testing"
)

// requests are the CSRs a fetch case builds its object from: own is the
// request for DIR/tls.key (ownKey), other one for an ECDSA key elsewhere.
type requests struct{ own, ownKey, other []byte }

func newRequests(t *testing.T) (requests, string) {
	t.Helper()
	base := t.TempDir()
	dir, other := filepath.Join(base, "api"), filepath.Join(base, "other")
	mustRun(t, "csr", "--common-name", "api", "--dns", "api.demo.svc", "--out-dir", dir)
	mustRun(t, "csr", "--algorithm", "ECDSA-P256", "--common-name", "api", "--out-dir", other)
	return requests{readFile(t, filepath.Join(dir, "csr.pem")), readFile(t, filepath.Join(dir, "tls.key")), readFile(t, filepath.Join(other, "csr.pem"))}, dir
}

func csrObject(request []byte) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "api-test"},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: request, SignerName: clusterSigner, Usages: []certificatesv1.KeyUsage{"digital signature"}},
	}
}

// issued is a CSR for request, approved, with chain as its certificate.
func issued(request, chain []byte) *certificatesv1.CertificateSigningRequest {
	csr := csrObject(request)
	setCondition(csr, certificatesv1.CertificateApproved, approveReason, approveMsg)
	csr.Status.Certificate = chain
	return csr
}

// reversed puts the PEM blocks of a chain in the opposite order.
func reversed(t *testing.T, chain []byte) []byte {
	blocks := strings.SplitAfter(string(chain), "-----END CERTIFICATE-----\n")
	var out string
	for i := len(blocks) - 1; i >= 0; i-- {
		out += blocks[i]
	}
	if len(parseCerts(t, []byte(out))) != 2 {
		t.Fatalf("want a chain of 2")
	}
	return []byte(out)
}

func TestFetch(t *testing.T) {
	tests := []struct {
		name string
		// object is the cluster's CSR; nil: none.
		object func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest
		// setup changes DIR or the cluster before the command runs.
		setup      func(t *testing.T, cl *cluster, dir string)
		args       []string
		act        act
		wantCode   int
		wantStdout []string
		wantStderr []string
		// wantCerts is how many certificates tls.crt must hold, leaf first; 0: not written.
		wantCerts int
		// reordered: the signer's chain is not leaf first, so tls.crt differs from it.
		reordered bool
	}{
		{
			name: "issued: written for tls.key without waiting",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return issued(r.own, issueFor(t, cl.ca, r.own))
			},
			wantStdout: []string{"Wrote DIR/tls.crt (2 certificates): CN=api, api.demo.svc; issuer CN=Mesh Issuing CA; not after "},
			wantCerts:  2,
		},
		{
			name: "the signer's chain with the leaf last is written leaf first",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return issued(r.own, reversed(t, issueFor(t, cl.ca, r.own)))
			},
			wantCerts: 2,
			reordered: true,
		},
		{
			name: "no tls.key: checked against the request",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return issued(r.own, issueFor(t, cl.ca, r.own))
			},
			setup:      removeKey,
			wantStderr: []string{"Note: DIR/tls.key does not exist: the certificate is checked against the request's key only\n"},
			wantCerts:  2,
		},
		{
			name: "a request for another key than tls.key is refused",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return issued(r.other, issueFor(t, cl.ca, r.other))
			},
			wantCode: 1,
			wantStderr: []string{"kubectl-pq: csr fetch: CertificateSigningRequest api-test is for an ECDSA P-256 key, not for the ML-DSA-65 key in DIR/tls.key: " +
				"refusing to write its certificate there; fetch it into the directory that holds its key\n"},
		},
		{
			name: "a certificate for another key than tls.key is refused",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return issued(r.own, issueFor(t, cl.ca, r.other))
			},
			wantCode: 1,
			wantStderr: []string{"kubectl-pq: csr fetch: CertificateSigningRequest api-test was issued a certificate for an ECDSA P-256 key, not for the ML-DSA-65 key of DIR/tls.key: " +
				"refusing to write it to DIR/tls.crt\n"},
		},
		{
			name: "without tls.key, a certificate for another key than the request is refused",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return issued(r.own, issueFor(t, cl.ca, r.other))
			},
			setup:      removeKey,
			wantCode:   1,
			wantStderr: []string{"was issued a certificate for an ECDSA P-256 key, not for the ML-DSA-65 key of its request: refusing to write it to DIR/tls.crt\n"},
		},
		{
			name: "waits for approval and issue",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return csrObject(r.own)
			},
			act: approveAndIssue,
			wantStdout: []string{"Waiting up to 1m0s for the certificate (Pending); Ctrl-C stops waiting, and 'kubectl pq csr fetch api-test --out-dir DIR' resumes\n",
				"Approved (" + approveReason + ": " + approveMsg + ")", "Wrote DIR/tls.crt (2 certificates)"},
			wantCerts: 2,
		},
		{
			name: "lists again when the server expires the watch",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return csrObject(r.own)
			},
			setup: func(t *testing.T, cl *cluster, dir string) {
				expired := false
				cl.client.PrependWatchReactor("certificatesigningrequests", func(clienttesting.Action) (bool, watch.Interface, error) {
					if expired {
						return false, nil, nil
					}
					expired = true
					w := watch.NewRaceFreeFake()
					w.Error(&apierrors.NewResourceExpired("too old resource version: 2 (9)").ErrStatus)
					return true, w, nil
				})
			},
			act:        approveAndIssue,
			wantStdout: []string{"Wrote DIR/tls.crt (2 certificates)"},
			wantCerts:  2,
		},
		{
			name: "pending, --wait 0: how to get it approved",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return csrObject(r.own)
			},
			args:     []string{"--wait", "0"},
			wantCode: 1,
			wantStderr: []string{"kubectl-pq: csr fetch: CertificateSigningRequest api-test is not approved yet: an approver runs 'kubectl certificate approve api-test'; " +
				"then fetch the certificate with 'kubectl pq csr fetch api-test --out-dir DIR'\n"},
		},
		{
			name: "denied: reason and message verbatim",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				csr := csrObject(r.own)
				setCondition(csr, certificatesv1.CertificateDenied, "PolicyDenied", `names "api.evil.example", outside the allowed DNS names`)
				return csr
			},
			wantCode:   1,
			wantStderr: []string{`kubectl-pq: csr fetch: CertificateSigningRequest api-test was denied (PolicyDenied): names "api.evil.example", outside the allowed DNS names` + "\n"},
		},
		{
			name: "deleted while waiting",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return csrObject(r.own)
			},
			act: func(t *testing.T, cl *cluster, csr *certificatesv1.CertificateSigningRequest) {
				if err := cl.client.CertificatesV1().CertificateSigningRequests().Delete(context.Background(), csr.Name, metav1.DeleteOptions{}); err != nil {
					t.Error(err)
				}
			},
			wantCode:   1,
			wantStderr: []string{"kubectl-pq: csr fetch: CertificateSigningRequest api-test was deleted while waiting for its certificate\n"},
		},
		{
			name:     "not found",
			wantCode: 1,
			wantStderr: []string{"kubectl-pq: csr fetch: CertificateSigningRequest api-test not found: 'kubectl get csr' lists them; " +
				"the cluster deletes one an hour after it is issued or denied, and a pending one after a day\n"},
		},
		{
			name: "forbidden list names the RBAC",
			setup: func(t *testing.T, cl *cluster, dir string) {
				cl.client.PrependReactor("list", "certificatesigningrequests", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(csrGR, "", errors.New(`User "alice" cannot list resource "certificatesigningrequests" in API group "certificates.k8s.io" at the cluster scope`))
				})
			},
			wantCode: 1,
			wantStderr: []string{`kubectl-pq: csr fetch: reading CertificateSigningRequest api-test: certificatesigningrequests.certificates.k8s.io is forbidden: User "alice" cannot list`,
				"waiting for it needs RBAC permission to list and watch certificatesigningrequests (API group certificates.k8s.io)\n"},
		},
		{
			name: "an existing tls.crt is kept without --force",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return issued(r.own, issueFor(t, cl.ca, r.own))
			},
			setup: func(t *testing.T, cl *cluster, dir string) {
				writeFile(t, filepath.Join(dir, "tls.crt"), []byte("kept"))
			},
			wantCode:   1,
			wantStderr: []string{"kubectl-pq: csr fetch: DIR/tls.crt already exists; use --force to overwrite it\n"},
		},
		{
			name: "--force replaces tls.crt",
			object: func(t *testing.T, cl *cluster, r requests) *certificatesv1.CertificateSigningRequest {
				return issued(r.own, issueFor(t, cl.ca, r.own))
			},
			setup: func(t *testing.T, cl *cluster, dir string) {
				writeFile(t, filepath.Join(dir, "tls.crt"), []byte("replaced"))
			},
			args:      []string{"--force"},
			wantCerts: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, dir := newRequests(t)
			cl := newCluster(t)
			var obj *certificatesv1.CertificateSigningRequest
			if tt.object != nil {
				obj = tt.object(t, cl, r)
				if err := cl.client.Tracker().Add(obj); err != nil {
					t.Fatal(err)
				}
			}
			if tt.setup != nil {
				tt.setup(t, cl, dir)
			}
			var waitAct func()
			if tt.act != nil {
				waitAct = cl.onWatch(t, "api-test", tt.act)
			}
			before := readFileIfAny(filepath.Join(dir, "tls.crt"))
			res := cl.run(t, append([]string{"csr", "fetch", "api-test", "--out-dir", dir, "--wait", "1m"}, tt.args...)...)
			if waitAct != nil {
				waitAct()
			}
			stdout, stderr := strings.ReplaceAll(res.stdout, dir, "DIR"), strings.ReplaceAll(res.stderr, dir, "DIR")
			if res.code != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", res.code, tt.wantCode, res.stderr)
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
			if tt.wantCode != 0 && strings.Count(regexp.MustCompile(`(?m)^Note: .*\n`).ReplaceAllString(res.stderr, ""), "\n") != 1 {
				t.Errorf("a failure must be one line on stderr, got %q", res.stderr)
			}
			if tt.wantCerts == 0 {
				if after := readFileIfAny(filepath.Join(dir, "tls.crt")); after != before {
					t.Errorf("tls.crt changed from %q to %q", before, after)
				}
				return
			}
			key := filepath.Join(dir, "tls.key")
			if _, err := os.Stat(key); err != nil {
				// Without tls.key, check against the key the request was made for.
				key = filepath.Join(t.TempDir(), "tls.key")
				writeFile(t, key, r.ownKey)
			}
			checkChain(t, filepath.Join(dir, "tls.crt"), key, tt.wantCerts)
			// A chain the signer sent leaf first is written as it came.
			if crt := readFile(t, filepath.Join(dir, "tls.crt")); len(obj.Status.Certificate) > 0 && !tt.reordered && !bytes.Equal(crt, obj.Status.Certificate) {
				t.Errorf("tls.crt differs from status.certificate:\n%s\nwant:\n%s", crt, obj.Status.Certificate)
			}
		})
	}
}

func removeKey(t *testing.T, _ *cluster, dir string) {
	if err := os.Remove(filepath.Join(dir, "tls.key")); err != nil {
		t.Fatal(err)
	}
}

func readFileIfAny(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// TestFetchArgs checks the command lines fetch refuses.
func TestFetchArgs(t *testing.T) {
	tests := []struct {
		name, wantStderr string
		args             []string
	}{
		{"no name", "kubectl-pq: csr fetch: fetch takes the name of one CertificateSigningRequest, got 0 arguments (see 'kubectl pq csr fetch --help')", []string{"--out-dir", "api"}},
		{"two names", "got 2 arguments", []string{"a", "b", "--out-dir", "api"}},
		{"no --out-dir", "kubectl-pq: csr fetch: --out-dir is required", []string{"api-test"}},
		{"negative wait", "--wait -1m0s is negative", []string{"api-test", "--out-dir", "api", "--wait", "-1m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := newCluster(t)
			r := cl.run(t, append([]string{"csr", "fetch"}, tt.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.wantStderr)
			}
			if len(cl.client.Actions()) != 0 {
				t.Errorf("a refused command line called the API")
			}
		})
	}
}

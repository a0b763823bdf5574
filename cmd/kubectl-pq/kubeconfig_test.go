package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testKubeconfig has the contexts test (server, current) and prod.
func testKubeconfig(server string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test-cluster
  cluster:
    server: %s
- name: prod-cluster
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: test
  context: {cluster: test-cluster, user: alice}
- name: prod
  context: {cluster: prod-cluster, user: alice}
current-context: test
users:
- name: alice
  user: {}
`, server)
}

// apiServer is an HTTP server answering the CertificateSigningRequest
// calls as kube-apiserver does: the create, a list, and a watch that
// delivers the issued certificate.
type apiServer struct {
	t     *testing.T
	issue func(request []byte) []byte
	// refuse answers every create with this Status.
	refuse *metav1.Status

	mu       sync.Mutex
	created  *certificatesv1.CertificateSigningRequest
	requests []string
}

const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests"

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "kubectl-pq/") {
		s.t.Errorf("User-Agent %q, want kubectl-pq/...", ua)
	}
	w.Header().Set("Content-Type", "application/json")
	reply := func(code int, obj any) {
		w.WriteHeader(code)
		if err := json.NewEncoder(w).Encode(obj); err != nil {
			s.t.Error(err)
		}
	}
	q := r.URL.Query()
	switch {
	case r.URL.Path != csrPath:
		reply(http.StatusNotFound, metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound})
	case r.Method == http.MethodPost && s.refuse != nil:
		reply(int(s.refuse.Code), s.refuse)
	case r.Method == http.MethodPost:
		var csr certificatesv1.CertificateSigningRequest
		if err := json.NewDecoder(r.Body).Decode(&csr); err != nil {
			s.t.Error(err)
		}
		csr.ResourceVersion = "6"
		s.created = &csr
		reply(http.StatusCreated, csr)
	case q.Get("watch") == "true":
		// The watch must start where the list ended.
		if q.Get("resourceVersion") != "7" || q.Get("fieldSelector") != "metadata.name="+s.created.Name {
			s.t.Errorf("watch %s: want resourceVersion=7 and fieldSelector=metadata.name=%s", r.URL.RawQuery, s.created.Name)
		}
		csr := s.created.DeepCopy()
		setCondition(csr, certificatesv1.CertificateApproved, approveReason, approveMsg)
		csr.Status.Certificate = s.issue(csr.Spec.Request)
		csr.ResourceVersion = "8"
		reply(http.StatusOK, map[string]any{"type": "MODIFIED", "object": csr})
	default:
		if q.Get("fieldSelector") != "metadata.name="+s.created.Name {
			s.t.Errorf("list %s: want fieldSelector=metadata.name=%s", r.URL.RawQuery, s.created.Name)
		}
		reply(http.StatusOK, certificatesv1.CertificateSigningRequestList{
			TypeMeta: metav1.TypeMeta{APIVersion: "certificates.k8s.io/v1", Kind: "CertificateSigningRequestList"},
			ListMeta: metav1.ListMeta{ResourceVersion: "7"},
			Items:    []certificatesv1.CertificateSigningRequest{*s.created},
		})
	}
}

// TestSubmitOverHTTP runs csr --submit through the kubeconfig and the
// client the binary uses, against an HTTP server speaking the API.
func TestSubmitOverHTTP(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name       string
		refuse     *metav1.Status
		wantCode   int
		wantStdout string
		wantStderr string
		wantCalls  []string
	}{
		{
			name:       "issued",
			wantStdout: "Wrote DIR/tls.crt (2 certificates): CN=api; issuer CN=Mesh Issuing CA; not after ",
			wantCalls: []string{
				"POST " + csrPath,
				"GET " + csrPath + "?fieldSelector=metadata.name%3Dapi-http",
				"GET " + csrPath + "?fieldSelector=metadata.name%3Dapi-http&resourceVersion=7&watch=true",
			},
		},
		{
			name: "forbidden",
			refuse: &metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
				Message: `certificatesigningrequests.certificates.k8s.io is forbidden: User "alice" cannot create resource "certificatesigningrequests" in API group "certificates.k8s.io" at the cluster scope`,
				Details: &metav1.StatusDetails{Group: "certificates.k8s.io", Kind: "certificatesigningrequests"}},
			wantCode:   1,
			wantStderr: `kubectl-pq: csr: creating CertificateSigningRequest api-http: certificatesigningrequests.certificates.k8s.io is forbidden: User "alice" cannot create resource "certificatesigningrequests" in API group "certificates.k8s.io" at the cluster scope: you need RBAC permission to create certificatesigningrequests`,
			wantCalls:  []string{"POST " + csrPath},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &apiServer{t: t, refuse: tt.refuse, issue: func(request []byte) []byte { return issueFor(t, ca, request) }}
			srv := httptest.NewServer(api)
			defer srv.Close()
			kubeconfig := filepath.Join(t.TempDir(), "config")
			writeFile(t, kubeconfig, []byte(testKubeconfig(srv.URL)))
			dir := filepath.Join(t.TempDir(), "api")

			r := runCLI(t, "csr", "--common-name", "api", "--out-dir", dir, "--submit", "--signer", clusterSigner, "--name", "api-http", "--kubeconfig", kubeconfig, "--wait", "1m")
			if r.code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %s", r.code, tt.wantCode, r.stderr)
			}
			if stdout := strings.ReplaceAll(r.stdout, dir, "DIR"); !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, stdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, r.stderr)
			}
			api.mu.Lock()
			defer api.mu.Unlock()
			if strings.Join(api.requests, "\n") != strings.Join(tt.wantCalls, "\n") {
				t.Errorf("API calls:\n%s\nwant:\n%s", strings.Join(api.requests, "\n"), strings.Join(tt.wantCalls, "\n"))
			}
			if tt.wantCode == 0 {
				checkChain(t, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), 2)
			}
		})
	}
}

// TestKubeconfigErrors checks what the commands say when the kubeconfig
// names no usable cluster, before any key is made.
func TestKubeconfigErrors(t *testing.T) {
	home := t.TempDir()
	empty := filepath.Join(home, "empty")
	writeFile(t, empty, nil)
	kubeconfig := filepath.Join(home, "config")
	writeFile(t, kubeconfig, []byte(testKubeconfig("https://127.0.0.1:1")))
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", empty)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	tests := []struct {
		name       string
		args       []string
		wantStderr []string
	}{
		{"no kubeconfig", nil, []string{"kubectl-pq: csr: no cluster to talk to: the kubeconfig is missing or empty; set KUBECONFIG or use --kubeconfig, as for kubectl\n"}},
		{"a missing --kubeconfig", []string{"--kubeconfig", filepath.Join(home, "nope")}, []string{"kubectl-pq: csr: loading the kubeconfig: ", "nope"}},
		{"an unknown --context", []string{"--kubeconfig", kubeconfig, "--context", "staging"}, []string{"kubectl-pq: csr: loading the kubeconfig: ", `"staging"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "api")
			r := runCLI(t, append([]string{"csr", "--common-name", "api", "--out-dir", dir, "--submit", "--signer", clusterSigner}, tt.args...)...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if got := listFiles(t, filepath.Dir(dir)); len(got) != 1 {
				t.Errorf("the command left files behind: %v", got)
			}
		})
	}
}

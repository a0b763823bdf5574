package localcluster_test

import (
	"bytes"
	"crypto/x509"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// The identities of the approver-policy test: cert-manager's ServiceAccount creates the requests
// of Certificates; a workload's ServiceAccount that the policy is not bound to asks on its own.
const (
	approverPolicySA = "system:serviceaccount:cert-manager:cert-manager-approver-policy"
	workloadSA       = "system:serviceaccount:team-a:api"
	// policyController is approver-policy's event source and its Approved/Denied reason.
	policyController = "policy.cert-manager.io"
)

// TestApproverPolicy runs cert-manager's approver-policy instead of cert-manager's approver, set
// up as the README says: its chart's RBAC with app.approveSignerNames for pq-issuer's signers, and
// config/samples/approver-policy.yaml (a CertificateRequestPolicy for *.team-a.svc.cluster.local
// on PQClusterIssuer mesh-ca, bound to cert-manager's ServiceAccount). A request it allows is
// approved and issued by pq-issuer; one it does not allow is denied, and pq-issuer reports it
// Denied; one from a requester the policy is not bound to is left alone, by both.
func TestApproverPolicy(t *testing.T) {
	// Everything the cluster writes, approver-policy's binary included, goes under tmp: after Stop
	// no process may run from there.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	pc := startPQCluster(t, localcluster.Options{Approver: localcluster.ApproverPolicy, Extra: inProcessPQIssuer})
	c := pc.c
	root := offlineRoot(t, "ML-DSA-65", "Policy Root")
	pc.readyClusterIssuer(t, root, "mesh-ca")
	rootCert := parseCertificate(t, "the offline root", readFile(t, filepath.Join(root, "tls.crt")))
	for _, ns := range []string{"team-a", "team-b"} {
		create(t, c, namespace(ns))
	}

	// 1. approver-policy's own chart, with the signer names the README gives it: approver-policy
	// may approve and deny for pq-issuer's issuers, and for nothing else. (cert-manager's webhook
	// asks this before it accepts an approval; the local control plane has no such webhook.)
	chart := filepath.Join(moduleDir(t, "github.com/cert-manager/approver-policy"), "deploy", "charts", "approver-policy")
	rbac := helmRun(t, "template", "cert-manager-approver-policy", chart, "--namespace", pc.ClusterResourceNamespace(),
		"--set", "app.approveSignerNames={pqissuers.pq-issuer.dev/*,pqclusterissuers.pq-issuer.dev/*}",
		"--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/clusterrole.yaml", "--show-only", "templates/clusterrolebinding.yaml")
	pc.kubectl(t, []byte(rbac), "apply", "-f", "-")
	for _, tc := range []struct {
		signer string
		allow  bool
	}{
		{"pqclusterissuers.pq-issuer.dev/*", true},
		{"pqissuers.pq-issuer.dev/*", true},
		{"clusterissuers.cert-manager.io/*", false},
	} {
		if got := mayApprove(t, c, approverPolicySA, tc.signer); got != tc.allow {
			t.Errorf("approver-policy may approve for signer %s: %v, want %v", tc.signer, got, tc.allow)
		}
	}

	// 2. The policy and its binding, as the README applies them, and Ready.
	sample, err := filepath.Abs(filepath.Join("..", "..", "config", "samples", "approver-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pc.kubectl(t, nil, "apply", "-f", sample)
	readme := string(readFile(t, filepath.Join("..", "..", "README.md")))
	policyYAML, _, _ := strings.Cut(string(readFile(t, sample)), "---\n")
	if _, policyOnly, _ := strings.Cut(policyYAML, "apiVersion:"); !strings.Contains(readme, "apiVersion:"+policyOnly) {
		t.Errorf("README.md does not show the CertificateRequestPolicy of %s as it is:\napiVersion:%s", sample, policyOnly)
	}
	policy := &unstructured.Unstructured{}
	policy.SetAPIVersion("policy.cert-manager.io/v1alpha1")
	policy.SetKind("CertificateRequestPolicy")
	policy.SetName("team-a")
	waitFor(t, c, "CertificateRequestPolicy team-a Ready", policy, func() bool {
		conditions, _, _ := unstructured.NestedSlice(policy.Object, "status", "conditions")
		for _, cond := range conditions {
			if m, ok := cond.(map[string]any); ok && m["type"] == "Ready" && m["status"] == "True" {
				return true
			}
		}
		return false
	})

	// 3. The requesters: cert-manager's ServiceAccount (bound to the policy) and a workload's
	// (not bound), both allowed to create CertificateRequests.
	create(t, c, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e:certificaterequest-creator"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{cmapi.SchemeGroupVersion.Group}, Resources: []string{"certificaterequests"}, Verbs: []string{"create"}}},
	})
	create(t, c, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e:certificaterequest-creator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "e2e:certificaterequest-creator"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.ServiceAccountKind, Namespace: "cert-manager", Name: "cert-manager"},
			{Kind: rbacv1.ServiceAccountKind, Namespace: "team-a", Name: "api"},
		},
	})
	asCertManager, asWorkload := impersonating(t, pc, certManagerSA), impersonating(t, pc, workloadSA)

	// The unbound request goes first, so approver-policy has passed it over before it decides
	// the others.
	unbound := createRequest(t, asWorkload, "team-a", "unbound", "api.team-a.svc.cluster.local", workloadSA)
	allowed := createRequest(t, asCertManager, "team-a", "api", "api.team-a.svc.cluster.local", certManagerSA)
	denied := createRequest(t, asCertManager, "team-b", "api", "api.team-b.svc.cluster.local", certManagerSA)

	t.Run("allowed: approved by approver-policy, issued by pq-issuer from the ML-DSA root", func(t *testing.T) {
		waitRequest(t, c, allowed, cmapi.CertificateRequestReasonIssued)
		wantDecision(t, allowed, cmapi.CertificateRequestConditionApproved, `Approved by CertificateRequestPolicy: "team-a"`)
		if got := waitEventFrom(t, c, allowed, policyController, "Approved"); !strings.Contains(got, `"team-a"`) {
			t.Errorf("approver-policy's Approved event %q does not name the policy", got)
		}
		chain := pemCerts(t, "status.certificate", allowed.Status.Certificate)
		if !bytes.Equal(pemCerts(t, "status.ca", allowed.Status.CA)[0].Raw, rootCert.Raw) {
			t.Fatalf("status.ca is not the offline root %s", rootCert.Subject)
		}
		leaf := chain[0]
		wantSignatureAlgorithm(t, "the issued certificate", leaf, "ML-DSA-65")
		roots := x509.NewCertPool()
		roots.AddCert(rootCert)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "api.team-a.svc.cluster.local", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("the issued certificate does not verify against the ML-DSA root: %v", err)
		}
		nodeVerify(t, "approved by approver-policy", allowed.Status.Certificate, allowed.Status.CA)
	})

	t.Run("not allowed: denied by approver-policy, Denied by pq-issuer", func(t *testing.T) {
		waitRequest(t, c, denied, cmapi.CertificateRequestReasonDenied)
		wantDecision(t, denied, cmapi.CertificateRequestConditionDenied, "No policy approved this request: [team-a: spec.allowed.dnsNames.values: Invalid value:")
		if denied.Status.FailureTime == nil || len(denied.Status.Certificate) != 0 {
			t.Errorf("denied request has failureTime %v and %d certificate bytes", denied.Status.FailureTime, len(denied.Status.Certificate))
		}
		msg := readyMessage(denied)
		for _, want := range []string{policyController, "api.team-b.svc.cluster.local"} {
			if !strings.Contains(msg, want) {
				t.Errorf("pq-issuer's Denied message %q does not pass on approver-policy's %q", msg, want)
			}
		}
		if got := waitEventFrom(t, c, denied, "pq-issuer", cmapi.CertificateRequestReasonDenied); got != msg {
			t.Errorf("pq-issuer's Denied event %q differs from the condition message %q", got, msg)
		}
		waitEventFrom(t, c, denied, policyController, "Denied")
	})

	t.Run("requester not bound to the policy: left alone", func(t *testing.T) {
		waitEventFrom(t, c, unbound, policyController, "Unprocessed")
		if err := c.Get(t.Context(), clientKey(unbound), unbound); err != nil {
			t.Fatal(err)
		}
		if len(unbound.Status.Conditions) != 0 || len(unbound.Status.Certificate) != 0 {
			t.Fatalf("a request no policy applies to was decided or signed:\n%s", dump(unbound.Status))
		}
		if got := eventsFrom(t, c, unbound, "pq-issuer", ""); len(got) != 0 {
			t.Errorf("pq-issuer recorded events about a request nobody approved: %q", got)
		}
	})

	t.Run("a Certificate through cert-manager's controllers", func(t *testing.T) {
		// Here cert-manager's controllers act as the administrator, whom every policy is bound to.
		crt := pqCertificate("team-a", "web", "PQClusterIssuer", "mesh-ca", cmapi.CertificateSpec{DNSNames: []string{"web.team-a.svc.cluster.local"}})
		create(t, c, crt)
		cr := waitRequestFor(t, c, crt, cmapi.CertificateRequestReasonIssued)
		wantDecision(t, cr, cmapi.CertificateRequestConditionApproved, `Approved by CertificateRequestPolicy: "team-a"`)
		issuedSecret(t, c, crt, "web.team-a.svc.cluster.local")
	})

	// Stop ends approver-policy's process, which runs from under tmp.
	if running := processesUnder(t, tmp); len(running) != 1 || !strings.HasSuffix(running[0], "/approver-policy") {
		t.Fatalf("want approver-policy running from %s, found %v", tmp, running)
	}
	if err := pc.Stop(); err != nil {
		t.Fatalf("Stopping the local control plane: %v", err)
	}
	if left := processesUnder(t, tmp); len(left) > 0 {
		t.Fatalf("processes left running after Stop: %v", left)
	}
}

// createRequest creates, as the requester behind c, a CertificateRequest for PQClusterIssuer
// mesh-ca with a CSR for dnsName and no subject, and checks that the API server recorded the
// requester, as cert-manager's webhook does.
func createRequest(t *testing.T, c client.Client, namespace, name, dnsName, requester string) *cmapi.CertificateRequest {
	t.Helper()
	cr := request(namespace, name, "mesh-ca", kubectlPQCSR(t, "--algorithm", "ECDSA-P256", "--dns", dnsName))
	cr.Spec.Username = "someone-else" // what the requester says does not count
	if err := c.Create(t.Context(), cr); err != nil {
		t.Fatalf("Creating CertificateRequest %s/%s as %s: %v", namespace, name, requester, err)
	}
	if cr.Spec.Username != requester {
		t.Fatalf("CertificateRequest %s/%s has spec.username %q, want its requester %q", namespace, name, cr.Spec.Username, requester)
	}
	return cr
}

// wantDecision checks that approver-policy set decision, with its reason and a message starting
// with message.
func wantDecision(t *testing.T, cr *cmapi.CertificateRequest, decision cmapi.CertificateRequestConditionType, message string) {
	t.Helper()
	cond := apiutil.GetCertificateRequestCondition(cr, decision)
	if cond == nil || cond.Status != "True" || cond.Reason != policyController || !strings.HasPrefix(cond.Message, message) {
		t.Fatalf("CertificateRequest %s/%s: want %s=True reason %s message %q..., conditions:\n%s",
			cr.Namespace, cr.Name, decision, policyController, message, dump(cr.Status.Conditions))
	}
	t.Logf("%s/%s %s: %s", cr.Namespace, cr.Name, decision, cond.Message)
}

// impersonating is a client of the cluster acting as user, with the groups of a ServiceAccount.
func impersonating(t *testing.T, pc *pqCluster, user string) client.Client {
	t.Helper()
	cfg := pc.Config()
	ns := strings.Split(user, ":")[2]
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: localcluster.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mayApprove asks the API server whether user may approve requests for signer.
func mayApprove(t *testing.T, c client.Client, user, signer string) bool {
	t.Helper()
	ns := strings.Split(user, ":")[2]
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Group: "cert-manager.io", Resource: "signers", Verb: "approve", Name: signer},
	}}
	if err := c.Create(t.Context(), sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

// waitEventFrom waits for exactly one event from controller with reason about obj and returns
// its message.
func waitEventFrom(t *testing.T, c client.Client, obj client.Object, controller, reason string) string {
	t.Helper()
	var got []string
	if !poll(t, waitTimeout, func() bool { got = eventsFrom(t, c, obj, controller, reason); return len(got) > 0 }) {
		t.Fatalf("No %s event with reason %s about %s within %s; its events: %q", controller, reason, clientKey(obj), waitTimeout, events(t, c, obj, ""))
	}
	if len(got) != 1 {
		t.Fatalf("%d %s events with reason %s about %s, want 1: %q", len(got), controller, reason, clientKey(obj), got)
	}
	return got[0]
}

// helmRun runs make's Helm (PQ_HELM, or one built from tools/go.mod) and returns its output.
func helmRun(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := buildHelm()
	if err != nil {
		t.Fatal(err)
	}
	return run(t, nil, bin, args...)
}

// moduleDir is where module, a dependency of the e2e module, is in the module cache.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("go list -m %s: %v (run `go mod download` in the e2e module)", module, err)
	}
	return string(bytes.TrimSpace(out))
}

// processesUnder lists the running processes whose executable lies under dir, as "pid exe".
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	return processes(t, func(exe, _ string) bool { return strings.HasPrefix(exe, dir+string(filepath.Separator)) })
}

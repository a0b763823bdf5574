package localcluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/controllers"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// The Helm release the tests install: the chart's default names.
const (
	releaseNamespace = "pq-issuer"
	chartSA          = "system:serviceaccount:pq-issuer:pq-issuer"
	certManagerSA    = "system:serviceaccount:cert-manager:cert-manager"
)

// The steps of the happy path an RBAC rule can break, in order.
const (
	stepLeader        = "leader elected (caches synced, Lease taken, event recorded)"
	stepClusterIssuer = "PQClusterIssuer Ready"
	stepIssuer        = "PQIssuer Ready (CA Secret in its own namespace)"
	stepTrustAnchors  = "trust anchors published (each issuer's ClusterTrustBundle and ConfigMap)"
	stepIssued        = "Certificate issued"
	stepEvent         = "Issued event recorded"
	stepPodIssued     = "pod certificate issued (a PodCertificateRequest from a node, answered Issued)"
	stepMetrics       = "/metrics read by a ServiceAccount bound to the chart's metrics-reader ClusterRole"
)

// ruleSteps names, for each group/resource the chart grants, the first happy-path step that fails
// without it. A rule missing here fails the test: every grant needs a step that proves it
// necessary. The manager waits for its issuer and CertificateRequest caches (indexed) before it
// runs for leader, so without list/watch on those it never becomes leader.
var ruleSteps = map[string]string{
	"coordination.k8s.io/leases":            stepLeader,
	"/events":                               stepLeader,
	"pq-issuer.dev/pqclusterissuers":        stepLeader,
	"cert-manager.io/certificaterequests":   stepLeader,
	"pq-issuer.dev/pqclusterissuers/status": stepClusterIssuer,
	"/secrets":                              stepClusterIssuer,
	// controller-gen merges namespaces (read for a PQClusterIssuer's namespaceSelector) into the
	// secrets rule: the same verbs.
	"/namespaces": stepClusterIssuer,
	// The issuer controllers watch the ConfigMaps they publish, in the cluster resource namespace
	// (the chart's Role there): without list/watch the watch never syncs, and no issuer is
	// reconciled. Every ServiceAccount may read ClusterTrustBundles
	// (system:cluster-trust-bundle-discovery), so without the rule the watch syncs, and creating
	// them fails.
	"/configmaps": stepClusterIssuer,
	"certificates.k8s.io/clustertrustbundles": stepTrustAnchors,
	// attest: the ClusterTrustBundleAttest admission plugin refuses a ClusterTrustBundle for a
	// signer its writer may not attest for. (controller-gen merges sign, for pod certificates, into
	// the same rule; publishing comes first.)
	"certificates.k8s.io/signers":                stepTrustAnchors,
	"cert-manager.io/certificaterequests/status": stepIssued,
	"events.k8s.io/events":                       stepEvent,
	// CertificateSigningRequests and PodCertificateRequests share their rules. The
	// PodCertificateRequest cache is indexed too, so without list/watch the manager never leads;
	// without the status update it leads and never answers a pod.
	"certificates.k8s.io/certificatesigningrequests":        stepLeader,
	"certificates.k8s.io/certificatesigningrequests/status": stepPodIssued,
	// /metrics asks the API server who the scraper is and whether it may read /metrics.
	"authentication.k8s.io/tokenreviews":        stepMetrics,
	"authorization.k8s.io/subjectaccessreviews": stepMetrics,
}

func ruleKey(r rbacv1.PolicyRule) string { return r.APIGroups[0] + "/" + r.Resources[0] }

// TestHelmChart installs the rendered chart on the local control plane and runs pq-issuer's
// controllers as the chart's ServiceAccount (impersonated): the happy path passes with the chart's
// RBAC, fails at a named step when any one rule is taken away, and the other install choices
// (approver binding, Secrets only in the cluster resource namespace, restricted Pod Security)
// hold against the real API server.
func TestHelmChart(t *testing.T) {
	pc := startPQCluster(t, localcluster.Options{})
	c := pc.c
	create(t, c, namespace(releaseNamespace))
	// Prometheus, bound by the chart (metrics.readers) to its metrics-reader ClusterRole.
	prometheus := newMetricsClient(t, c, "prometheus", "")

	// 1. The rendered chart applies cleanly, CRDs included (over the ones the cluster started with),
	// with the cluster resource namespace the manager runs with.
	manifest := helmTemplate(t, "clusterResourceNamespace="+pc.ClusterResourceNamespace(),
		"metrics.readers[0].name=prometheus", "metrics.readers[0].namespace=monitoring")
	out := pc.kubectl(t, []byte(manifest), "apply", "--server-side", "--force-conflicts", "-f", "-")
	t.Logf("kubectl apply of the rendered chart:\n%s", out)
	for _, want := range []string{
		"customresourcedefinition.apiextensions.k8s.io/pqissuers.pq-issuer.dev serverside-applied",
		"serviceaccount/pq-issuer serverside-applied", "clusterrole.rbac.authorization.k8s.io/pq-issuer serverside-applied",
		"role.rbac.authorization.k8s.io/pq-issuer:leader-election serverside-applied",
		"role.rbac.authorization.k8s.io/pq-issuer:cluster-resource-namespace serverside-applied", "deployment.apps/pq-issuer serverside-applied",
		"poddisruptionbudget.policy/pq-issuer serverside-applied", "clusterrolebinding.rbac.authorization.k8s.io/pq-issuer:approver serverside-applied",
		"clusterrolebinding.rbac.authorization.k8s.io/pq-issuer:metrics-reader serverside-applied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %q", want)
		}
	}
	clusterRole, leaseRole, crnRole := &rbacv1.ClusterRole{}, &rbacv1.Role{}, &rbacv1.Role{}
	getObj(t, c, client.ObjectKey{Name: "pq-issuer"}, clusterRole)
	getObj(t, c, client.ObjectKey{Namespace: releaseNamespace, Name: "pq-issuer:leader-election"}, leaseRole)
	getObj(t, c, client.ObjectKey{Namespace: pc.ClusterResourceNamespace(), Name: "pq-issuer:cluster-resource-namespace"}, crnRole)

	// The CA Secrets the happy path uses: one for PQClusterIssuers, one in an app namespace.
	caDir := offlineRoot(t, "ML-DSA-65", "Chart Root")
	pc.installCASecret(t, caDir, pc.ClusterResourceNamespace(), "chart-ca")
	create(t, c, namespace("apps"))
	pc.installCASecret(t, caDir, "apps", "apps-ca")
	// A node for the pods the happy path creates, and their service account.
	node, err := pc.StartNode(t.Context(), "chart-node")
	if err != nil {
		t.Fatal(err)
	}
	create(t, c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "app"}})

	// 2. Sufficient: everything works as the chart's ServiceAccount.
	t.Run("happy path as the chart's ServiceAccount", func(t *testing.T) {
		failed, why, stop := happyPath(t, pc, node, prometheus, "all", waitTimeout)
		stop()
		if failed != "" {
			t.Fatalf("step %q failed with the chart's RBAC: %s", failed, why)
		}
	})

	// 3. Minimal: without any one rule, a named step fails.
	type ruleCase struct {
		name string
		role client.Object
		all  []rbacv1.PolicyRule // the role's rules, restored after the case
		i    int                 // the rule taken away
	}
	var cases []ruleCase
	for _, r := range []struct {
		kind  string
		role  client.Object
		rules []rbacv1.PolicyRule
	}{
		{"ClusterRole", clusterRole, slices.Clone(clusterRole.Rules)},
		{"Role", leaseRole, slices.Clone(leaseRole.Rules)},
		{"Role in " + pc.ClusterResourceNamespace(), crnRole, slices.Clone(crnRole.Rules)},
	} {
		for i, rule := range r.rules {
			cases = append(cases, ruleCase{name: r.kind + " " + ruleString(rule), role: r.role, all: r.rules, i: i})
		}
	}
	for n, tc := range cases {
		t.Run("without "+tc.name, func(t *testing.T) {
			step := ruleSteps[ruleKey(tc.all[tc.i])]
			if step == "" {
				t.Fatalf("no happy-path step is known to need %s: add it to ruleSteps, or drop the rule", tc.name)
			}
			setRules(t, c, tc.role, slices.Delete(slices.Clone(tc.all), tc.i, tc.i+1))
			failed, why, stop := happyPath(t, pc, node, prometheus, fmt.Sprintf("r%d", n), 5*time.Second)
			// Restore first: a manager whose caches cannot sync does not stop until they do
			// (controller-runtime v0.25's cache start ignores cancellation).
			setRules(t, c, tc.role, tc.all)
			stop()
			if failed != step {
				t.Fatalf("step %q failed (%s), want step %q to fail without %s", failed, why, step, tc.name)
			}
			t.Logf("step %q failed as expected: %s", failed, why)
		})
	}

	// 4. cert-manager's approver may approve for pq-issuer's signers, and only with the binding.
	t.Run("approver RBAC", func(t *testing.T) {
		requests := []struct {
			resource, namespace, name string
			allow                     bool
		}{
			{"pqclusterissuers.pq-issuer.dev", "", "mesh-ca", true},
			{"pqissuers.pq-issuer.dev", "apps", "mesh", true},
			{"clusterissuers.cert-manager.io", "", "mesh-ca", false}, // someone else's signer
		}
		for _, r := range requests {
			if got := canApprove(t, c, r.resource, r.namespace, r.name); got != r.allow {
				t.Errorf("cert-manager may approve requests for %s %s: %v, want %v", r.resource, r.name, got, r.allow)
			}
		}
		// approver.enabled=false renders no approver objects; remove what it leaves out.
		if disabled := helmTemplate(t, "approver.enabled=false"); strings.Contains(disabled, "name: pq-issuer:approver") {
			t.Fatal("approver.enabled=false still renders pq-issuer:approver")
		}
		for _, obj := range []client.Object{&rbacv1.ClusterRoleBinding{}, &rbacv1.ClusterRole{}} {
			obj.SetName("pq-issuer:approver")
			if err := c.Delete(t.Context(), obj); err != nil {
				t.Fatal(err)
			}
		}
		if canApprove(t, c, requests[0].resource, "", requests[0].name) {
			t.Errorf("cert-manager may still approve for %s with approver.enabled=false", requests[0].resource)
		}
	})

	// 5. secrets.clusterWide=false: Secret read only in the cluster resource namespace, and the
	// controller with --cluster-issuers-only lives with it.
	t.Run("secrets.clusterWide=false", func(t *testing.T) {
		restricted := helmTemplate(t, "secrets.clusterWide=false", "clusterResourceNamespace="+pc.ClusterResourceNamespace())
		pc.kubectl(t, []byte(restricted), "apply", "--server-side", "--force-conflicts", "-f", "-")
		getObj(t, c, client.ObjectKey{Name: "pq-issuer"}, clusterRole)
		if slices.ContainsFunc(clusterRole.Rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "configmaps")
		}) {
			t.Fatalf("ClusterRole still grants secrets or configmaps: %v", clusterRole.Rules)
		}
		stop := startImpersonated(t, pc, true, "")
		defer stop()
		issuer := pqClusterIssuer("restricted", "chart-ca")
		create(t, c, issuer)
		waitIssuer(t, c, issuer, metav1.ConditionTrue, v1alpha1.ReasonVerified)
		// The trust ConfigMap, in the cluster resource namespace, through the Role.
		var unpublished string
		if !poll(t, waitTimeout, func() bool {
			unpublished = trustAnchorsUnpublished(t, c, pc.ClusterResourceNamespace(), issuer)
			return unpublished == ""
		}) {
			t.Fatalf("with secrets.clusterWide=false: %s", unpublished)
		}
		crt := pqCertificate("apps", "restricted", "PQClusterIssuer", "restricted", cmapi.CertificateSpec{DNSNames: []string{"restricted.apps.svc"}})
		create(t, c, crt)
		issuedSecret(t, c, crt, "restricted.apps.svc")
		elsewhere := pqIssuer("apps", "restricted", "apps-ca")
		create(t, c, elsewhere)
		cond := waitIssuer(t, c, elsewhere, metav1.ConditionFalse, v1alpha1.ReasonSecretsRestricted)
		t.Logf("PQIssuer outside %s: %s", pc.ClusterResourceNamespace(), cond.Message)
	})

	// 6. The Deployment's pod passes Pod Security "restricted" admission.
	t.Run("restricted Pod Security", func(t *testing.T) {
		ns := namespace("psa")
		ns.Labels = map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}
		create(t, c, ns)
		deploy := &appsv1.Deployment{}
		getObj(t, c, client.ObjectKey{Namespace: releaseNamespace, Name: "pq-issuer"}, deploy)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "psa", Name: "pq-issuer"}, Spec: *deploy.Spec.Template.Spec.DeepCopy()}
		pod.Spec.ServiceAccountName = "" // the chart's ServiceAccount lives in the release namespace
		if err := c.Create(t.Context(), pod); err != nil {
			t.Fatalf("the chart's pod is refused under Pod Security restricted: %v", err)
		}
		// Control: the same pod without the chart's security context is refused, so the check is real.
		loose := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "psa", Name: "loose"}, Spec: *pod.Spec.DeepCopy()}
		loose.Spec.SecurityContext, loose.Spec.Containers[0].SecurityContext = nil, nil
		err := c.Create(t.Context(), loose)
		if err == nil || !strings.Contains(err.Error(), `violates PodSecurity "restricted`) {
			t.Fatalf("a pod without a security context was not refused by Pod Security: %v", err)
		}
	})
}

// happyPath starts pq-issuer's manager as the chart's ServiceAccount and runs the steps with
// objects named after id, each given timeout, reading /metrics as reader. It returns the first step
// that failed and why, or "", and the function that stops the manager.
func happyPath(t *testing.T, pc *pqCluster, node *localcluster.Node, reader *metricsClient, id string, timeout time.Duration) (step, why string, stop func()) {
	t.Helper()
	c := pc.c
	// Each run starts as a fresh install does, without the Lease, so that creating it is needed.
	lease := &coordinationv1.Lease{}
	key := client.ObjectKey{Namespace: releaseNamespace, Name: controllers.LeaderElectionID}
	if err := c.Delete(t.Context(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	metricsAddr := freeAddr(t)
	stop = startImpersonated(t, pc, false, metricsAddr)

	started := time.Now()
	if !poll(t, timeout, func() bool {
		if c.Get(t.Context(), key, lease) != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" ||
			lease.Spec.AcquireTime == nil || lease.Spec.AcquireTime.Before(&metav1.MicroTime{Time: started.Add(-time.Second)}) {
			return false
		}
		return slices.Contains(events(t, c, lease, "LeaderElection"), *lease.Spec.HolderIdentity+" became leader")
	}) {
		return stepLeader, fmt.Sprintf("Lease %s: %s; events %q", key, dump(lease.Spec), events(t, c, lease, "LeaderElection")), stop
	}

	clusterIssuer := pqClusterIssuer("chart-"+id, "chart-ca")
	create(t, c, clusterIssuer)
	if !poll(t, timeout, func() bool { return ready(t, c, clusterIssuer) }) {
		return stepClusterIssuer, "status " + dump(clusterIssuer.Status), stop
	}
	issuer := pqIssuer("apps", "chart-"+id, "apps-ca")
	create(t, c, issuer)
	if !poll(t, timeout, func() bool { return ready(t, c, issuer) }) {
		return stepIssuer, "status " + dump(issuer.Status), stop
	}
	var unpublished string
	if !poll(t, timeout, func() bool {
		unpublished = trustAnchorsUnpublished(t, c, pc.ClusterResourceNamespace(), clusterIssuer, issuer)
		return unpublished == ""
	}) {
		return stepTrustAnchors, unpublished, stop
	}

	crt := pqCertificate("apps", "chart-"+id, "PQClusterIssuer", clusterIssuer.Name, cmapi.CertificateSpec{DNSNames: []string{id + ".apps.svc"}})
	create(t, c, crt)
	var cr *cmapi.CertificateRequest
	if !poll(t, timeout, func() bool {
		if c.Get(t.Context(), client.ObjectKeyFromObject(crt), crt) != nil || !hasCondition(crt.Status.Conditions, cmapi.CertificateConditionReady) {
			return false
		}
		cr = requestOf(t, c, crt)
		return cr != nil && readyReason(cr) == cmapi.CertificateRequestReasonIssued
	}) {
		return stepIssued, certificateRequests(t, c, "apps")(), stop
	}
	secret := &corev1.Secret{}
	getObj(t, c, client.ObjectKey{Namespace: "apps", Name: crt.Spec.SecretName}, secret)
	wantSignatureAlgorithm(t, "the issued certificate", verifyTLSSecret(t, secret, id+".apps.svc"), "ML-DSA-65")

	if !poll(t, timeout, func() bool { return len(events(t, c, cr, cmapi.CertificateRequestReasonIssued)) == 1 }) {
		return stepEvent, fmt.Sprintf("events about %s: %q", cr.Name, events(t, c, cr, "")), stop
	}

	pod := localcluster.PodWithIdentity("apps", "pod-"+id, "app", node.Name(), "pqclusterissuers.pq-issuer.dev/"+clusterIssuer.Name, "ECDSAP256", nil)
	create(t, c, pod)
	var pcrs []certificatesv1.PodCertificateRequest
	if !poll(t, timeout, func() bool {
		pcrs = podCertificateRequests(t, c, pod)
		return len(pcrs) == 1 && meta.IsStatusConditionTrue(pcrs[0].Status.Conditions, certificatesv1.PodCertificateRequestConditionTypeIssued)
	}) {
		return stepPodIssued, "PodCertificateRequests " + dump(pcrs), stop
	}

	var status int
	var body string
	var err error
	if !poll(t, timeout, func() bool {
		status, body, err = reader.get(metricsAddr)
		return err == nil && status == http.StatusOK && strings.Contains(body, "controller_runtime_reconcile_total")
	}) {
		return stepMetrics, fmt.Sprintf("GET /metrics: %d %q (%v)", status, body, err), stop
	}
	return "", "", stop
}

// startImpersonated runs pq-issuer's manager, with leader election in the release namespace, as
// the chart's ServiceAccount, serving /metrics on metricsAddr unless it is ""; stop ends it and
// waits.
func startImpersonated(t *testing.T, pc *pqCluster, clusterIssuersOnly bool, metricsAddr string) (stop func()) {
	t.Helper()
	cfg := pc.Config()
	cfg.Impersonate = rest.ImpersonationConfig{UserName: chartSA}
	run := localcluster.PQIssuerWith(controllers.ManagerOptions{
		Options:                 controllers.Options{ClusterResourceNamespace: pc.ClusterResourceNamespace(), ClusterIssuersOnly: clusterIssuersOnly},
		LeaderElection:          true,
		LeaderElectionNamespace: releaseNamespace,
		MetricsBindAddress:      metricsAddr,
	})
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := run(ctx, cfg); err != nil && ctx.Err() == nil {
			t.Logf("pq-issuer's manager stopped: %v", err)
		}
	})
	return func() { cancel(); wg.Wait() }
}

// helmTemplate renders the chart as release pq-issuer in the release namespace.
func helmTemplate(t *testing.T, set ...string) string {
	t.Helper()
	bin, err := buildHelm()
	if err != nil {
		t.Fatal(err)
	}
	chart, err := filepath.Abs(filepath.Join("..", "..", "charts", "pq-issuer"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"template", "pq-issuer", chart, "--namespace", releaseNamespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return run(t, nil, bin, args...)
}

// buildHelm returns make's Helm (PQ_HELM), or builds it from the module pinned in tools/go.mod.
var buildHelm = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("PQ_HELM"); bin != "" {
		return bin, nil
	}
	bin := filepath.Join(toolsDir, "helm")
	cmd := exec.Command("go", "build", "-o", bin, "helm.sh/helm/v4/cmd/helm")
	cmd.Dir = filepath.Join("..", "..", "tools")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building helm from tools/go.mod (or run `make helm` and set PQ_HELM): %v\n%s", err, out)
	}
	return bin, nil
})

// canApprove asks the API server what cert-manager's webhook asks before it lets its
// ServiceAccount approve a request for an issuer: may it "approve" the signer <resource>/* or
// <resource>/[<namespace>.]<name>? RBAC resourceNames are literal, so the chart grants the "/*"
// names.
func canApprove(t *testing.T, c client.Client, resource, namespace, name string) bool {
	t.Helper()
	specific := resource + "/" + name
	if namespace != "" {
		specific = resource + "/" + namespace + "." + name
	}
	for _, signer := range []string{resource + "/*", specific} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   certManagerSA,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:cert-manager", "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Group: "cert-manager.io", Resource: "signers", Verb: "approve", Name: signer,
			},
		}}
		if err := c.Create(t.Context(), sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed {
			return true
		}
	}
	return false
}

// setRules replaces the rules of a Role or ClusterRole (a merge patch replaces the whole list).
func setRules(t *testing.T, c client.Client, role client.Object, rules []rbacv1.PolicyRule) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"rules": rules})
	if err != nil {
		t.Fatal(err)
	}
	// A copy takes the response, so the caller's object (and rules it holds) stays as it was.
	if err := c.Patch(t.Context(), role.DeepCopyObject().(client.Object), client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

func ruleString(r rbacv1.PolicyRule) string {
	b, _ := yaml.Marshal(r)
	return strings.Join(strings.Fields(string(b)), " ")
}

func getObj(t *testing.T, c client.Client, key client.ObjectKey, obj client.Object) {
	t.Helper()
	if err := c.Get(t.Context(), key, obj); err != nil {
		t.Fatal(err)
	}
}

// trustAnchorsUnpublished says which of the issuers' ClusterTrustBundles and trust ConfigMaps do
// not hold their status.trustAnchors, or "" when all do.
func trustAnchorsUnpublished(t *testing.T, c client.Client, clusterResourceNamespace string, issuers ...v1alpha1.Issuer) string {
	var missing []string
	for _, issuer := range issuers {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(issuer), issuer); err != nil {
			return err.Error()
		}
		var want strings.Builder
		for _, a := range issuer.GetStatus().TrustAnchors {
			want.WriteString(a.Certificate)
		}
		signerName := "pqclusterissuers.pq-issuer.dev/" + issuer.GetName()
		cmKey := client.ObjectKey{Namespace: clusterResourceNamespace, Name: "pqclusterissuer-" + issuer.GetName() + "-trust-anchors"}
		if _, ok := issuer.(*v1alpha1.PQIssuer); ok {
			signerName = "pqissuers.pq-issuer.dev/" + issuer.GetNamespace() + "." + issuer.GetName()
			cmKey.Name = "pqissuer-" + issuer.GetNamespace() + "." + issuer.GetName() + "-trust-anchors"
		}
		if want.Len() == 0 {
			missing = append(missing, fmt.Sprintf("%s %s has no status.trustAnchors", signerName, dump(issuer.GetStatus())))
			continue
		}
		ctb := &certificatesv1.ClusterTrustBundle{}
		ctbName := strings.ReplaceAll(signerName, "/", ":") + ":bundle"
		if err := c.Get(t.Context(), client.ObjectKey{Name: ctbName}, ctb); err != nil || ctb.Spec.SignerName != signerName || ctb.Spec.TrustBundle != want.String() {
			missing = append(missing, fmt.Sprintf("ClusterTrustBundle %s (%v)", ctbName, err))
		}
		cm := &corev1.ConfigMap{}
		if err := c.Get(t.Context(), cmKey, cm); err != nil || cm.Data["ca.crt"] != want.String() {
			missing = append(missing, fmt.Sprintf("ConfigMap %s (%v)", cmKey, err))
		}
	}
	return strings.Join(missing, "; ")
}

// poll reports whether cond held within timeout.
func poll(t *testing.T, timeout time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func ready(t *testing.T, c client.Client, issuer v1alpha1.Issuer) bool {
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(issuer), issuer); err != nil {
		return false
	}
	cond := meta.FindStatusCondition(issuer.GetStatus().Conditions, v1alpha1.ConditionReady)
	return cond != nil && cond.Status == metav1.ConditionTrue
}

// requestOf is the CertificateRequest cert-manager made for crt's current revision, or nil.
func requestOf(t *testing.T, c client.Client, crt *cmapi.Certificate) *cmapi.CertificateRequest {
	var list cmapi.CertificateRequestList
	if err := c.List(t.Context(), &list, client.InNamespace(crt.Namespace)); err != nil {
		return nil
	}
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], crt) {
			return &list.Items[i]
		}
	}
	return nil
}

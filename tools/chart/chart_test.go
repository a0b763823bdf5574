package chart_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

const (
	release   = "pq-issuer"
	namespace = "pq-issuer"
)

var helmBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	helmBin = os.Getenv("PQ_HELM")
	if helmBin == "" {
		// Outside make: build Helm from the pinned module, as `make helm` does.
		dir, err := os.MkdirTemp("", "helm-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		helmBin = filepath.Join(dir, "helm")
		cmd := exec.Command("go", "build", "-o", helmBin, "helm.sh/helm/v4/cmd/helm")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			panic("building helm from tools/go.mod failed (or run `make chart-test`): " + err.Error())
		}
	}
	return m.Run()
}

func chartDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../charts/pq-issuer")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// helm runs the Helm CLI and returns stdout and stderr, and its error.
func helm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), helmBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// No user Helm configuration or cache leaks in.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// object is one rendered manifest: its kind and name, and its YAML.
type object struct {
	Kind, Name, Namespace string
	YAML                  []byte
}

// values are the values of one helm run: a values file's YAML, and --set and --set-json flags.
type values struct {
	file         string
	set, setJSON []string
}

// args are the helm flags for v; a values file goes into a test directory.
func (v values) args(t *testing.T) []string {
	t.Helper()
	var args []string
	if v.file != "" {
		// Not in t.TempDir(): helm splits --values at commas, which subtest names hold.
		dir, err := os.MkdirTemp("", "values-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		f := filepath.Join(dir, "values.yaml")
		if err := os.WriteFile(f, []byte(v.file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", f)
	}
	for _, s := range v.set {
		args = append(args, "--set", s)
	}
	for _, s := range v.setJSON {
		args = append(args, "--set-json", s)
	}
	return args
}

// render runs helm template with --set values and returns the objects.
func render(t *testing.T, set ...string) []object {
	t.Helper()
	return renderValues(t, values{set: set})
}

// renderValues runs helm template with v and returns the objects.
func renderValues(t *testing.T, v values) []object {
	t.Helper()
	args := append([]string{"template", release, chartDir(t), "--namespace", namespace}, v.args(t)...)
	out, stderr, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return parseObjects(t, out)
}

// parseObjects splits helm template's output into objects.
func parseObjects(t *testing.T, out string) []object {
	t.Helper()
	var objs []object
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("rendered YAML does not parse: %v\n%s", err, doc)
		}
		if meta.Kind == "" {
			continue
		}
		objs = append(objs, object{meta.Kind, meta.Metadata.Name, meta.Metadata.Namespace, doc})
	}
	return objs
}

func find(objs []object, kind, name string) *object {
	for i := range objs {
		if objs[i].Kind == kind && objs[i].Name == name {
			return &objs[i]
		}
	}
	return nil
}

func decode[T any](t *testing.T, objs []object, kind, name string) *T {
	t.Helper()
	o := find(objs, kind, name)
	if o == nil {
		t.Fatalf("no %s %s rendered; have %v", kind, name, names(objs))
	}
	var v T
	if err := yaml.UnmarshalStrict(o.YAML, &v); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
	return &v
}

func names(objs []object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Kind+"/"+o.Name)
	}
	return out
}

// everyOption sets every value the defaults leave off, beside one another.
const everyOption = `
extraArgs: ["--max-retry-duration=2h"]
extraEnv: [{name: GOGC, value: "50"}]
volumes: [{name: tmp, emptyDir: {}}]
volumeMounts: [{name: tmp, mountPath: /tmp}]
podSecurityContext: {runAsUser: null, runAsGroup: null, fsGroup: null}
networkPolicy: {enabled: true, apiServerCIDRs: [10.0.0.1/32]}
metrics:
  readers: [{name: prometheus-k8s, namespace: monitoring}]
  serviceMonitor:
    enabled: true
    namespace: monitoring
    scrapeTimeout: 30s
    labels: {release: prometheus}
    relabelings: [{action: replace, sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node}]
    metricRelabelings: [{action: drop, sourceLabels: [__name__], regex: go_gc_.*}]
prometheusRule:
  enabled: true
  namespace: monitoring
  labels: {release: prometheus}
  alertLabels: {team: platform}
  interval: 1m
`

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    values
	}{
		{name: "default values"},
		{name: "cluster issuers only, no approver, one replica", v: values{set: []string{"secrets.clusterWide=false", "approver.enabled=false", "replicaCount=1", "leaderElection.enabled=false"}}},
		{name: "network policy and service monitor", v: values{set: []string{"networkPolicy.enabled=true", "networkPolicy.apiServerCIDRs={10.0.0.1/32}", "metrics.serviceMonitor.enabled=true"}}},
		{name: "every option", v: values{file: everyOption}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir(t), "--namespace", namespace}, tc.v.args(t)...)
			out, stderr, err := helm(t, args...)
			if err != nil || !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint: %v\n%s%s", err, out, stderr)
			}
		})
	}
}

// TestDefaults checks what a plain `helm install` gets: two replicas electing a leader, restricted
// Pod Security, the generated RBAC, the approver binding, CRDs kept on uninstall.
func TestDefaults(t *testing.T) {
	objs := render(t)
	wantKinds := []string{
		"ClusterRole/pq-issuer", "ClusterRole/pq-issuer:approver", "ClusterRole/pq-issuer:metrics-reader",
		"ClusterRoleBinding/pq-issuer", "ClusterRoleBinding/pq-issuer:approver", "CustomResourceDefinition/pqclusterissuers.pq-issuer.dev",
		"CustomResourceDefinition/pqissuers.pq-issuer.dev", "Deployment/pq-issuer", "PodDisruptionBudget/pq-issuer",
		"Role/pq-issuer:cluster-resource-namespace", "Role/pq-issuer:leader-election",
		"RoleBinding/pq-issuer:cluster-resource-namespace", "RoleBinding/pq-issuer:leader-election", "Service/pq-issuer-metrics",
		"ServiceAccount/pq-issuer",
	}
	got := names(objs)
	slices.Sort(got)
	if !slices.Equal(got, wantKinds) {
		t.Errorf("rendered %v\nwant     %v", got, wantKinds)
	}

	d := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer")
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != "ghcr.io/pq-issuer/pq-issuer:0.1.0" {
		t.Errorf("image %q, want the appVersion tag", c.Image)
	}
	for _, arg := range []string{"--cluster-resource-namespace=" + namespace, "--leader-elect=true", "--max-concurrent-reconciles=4"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q lack %s", c.Args, arg)
		}
	}
	if slices.Contains(c.Args, "--cluster-issuers-only") {
		t.Errorf("args %q restrict Secrets by default", c.Args)
	}
	checkRestricted(t, pod)
	if diff := cmpJSON(pod.SecurityContext, defaultPodSecurityContext()); diff != "" {
		t.Errorf("pod securityContext %s", diff)
	}
	if diff := cmpJSON(c.SecurityContext, defaultSecurityContext()); diff != "" {
		t.Errorf("container securityContext %s", diff)
	}
	if len(pod.Volumes) != 0 || len(c.VolumeMounts) != 0 {
		t.Errorf("volumes %v, mounts %v by default, want none", pod.Volumes, c.VolumeMounts)
	}
	if want := []string{"--cluster-resource-namespace=" + namespace, "--leader-elect=true", "--max-concurrent-reconciles=4",
		"--metrics-bind-address=:8080", "--health-probe-bind-address=:8081", "--zap-log-level=info"}; !slices.Equal(c.Args, want) {
		t.Errorf("args %q, want %q", c.Args, want)
	}
	if got, want := envNames(c), []string{"POD_NAMESPACE", "GOMEMLIMIT"}; !slices.Equal(got, want) {
		t.Errorf("env %q, want %q", got, want)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %+v / %+v, want /healthz and /readyz", c.LivenessProbe, c.ReadinessProbe)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v, want memory requests and limits", c.Resources)
	}
	if ref := envFrom(c, "GOMEMLIMIT"); ref == nil || ref.ResourceFieldRef == nil || ref.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("env %+v, want GOMEMLIMIT from limits.memory", c.Env)
	}
	if a := pod.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("affinity %+v, want preferred pod anti-affinity", a)
	}

	cr := decode[rbacv1.ClusterRole](t, objs, "ClusterRole", "pq-issuer")
	if !hasResource(cr.Rules, "secrets") || !hasResource(cr.Rules, "namespaces") {
		t.Errorf("ClusterRole rules %v lack secrets or namespaces: PQIssuers read Secrets in their own namespaces", cr.Rules)
	}
	if hasResource(cr.Rules, "configmaps") {
		t.Errorf("ClusterRole rules %v grant configmaps: pq-issuer could overwrite any ConfigMap of the cluster", cr.Rules)
	}
	checkClusterResourceNamespaceRole(t, objs, namespace, "configmaps")
	// /metrics authenticates and authorizes its clients through the API server.
	for _, want := range []rbacv1.PolicyRule{
		{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
	} {
		if !slices.ContainsFunc(cr.Rules, func(r rbacv1.PolicyRule) bool { return equalRules([]rbacv1.PolicyRule{r}, []rbacv1.PolicyRule{want}) }) {
			t.Errorf("ClusterRole rules %v lack %v", cr.Rules, want)
		}
	}
	reader := decode[rbacv1.ClusterRole](t, objs, "ClusterRole", "pq-issuer:metrics-reader")
	if want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}; !equalRules(reader.Rules, want) {
		t.Errorf("metrics-reader rules %v, want %v", reader.Rules, want)
	}
	// The Lease rules: get and update only the Lease the controller uses (controllers.LeaderElectionID,
	// which controllers' tests tie to the RBAC marker); create cannot be restricted by name.
	lease := decode[rbacv1.Role](t, objs, "Role", "pq-issuer:leader-election")
	wantLease := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{"pq-issuer.pq-issuer.dev"}, Verbs: []string{"get", "update"}},
	}
	var leaseRules []rbacv1.PolicyRule
	for _, r := range lease.Rules {
		if hasResource([]rbacv1.PolicyRule{r}, "leases") {
			leaseRules = append(leaseRules, r)
		}
	}
	if !equalRules(leaseRules, wantLease) {
		t.Errorf("leader election Lease rules %v, want %v", leaseRules, wantLease)
	}
	approver := decode[rbacv1.ClusterRole](t, objs, "ClusterRole", "pq-issuer:approver")
	wantApprover := []rbacv1.PolicyRule{{APIGroups: []string{"cert-manager.io"}, Resources: []string{"signers"}, Verbs: []string{"approve"},
		ResourceNames: []string{"pqissuers.pq-issuer.dev/*", "pqclusterissuers.pq-issuer.dev/*"}}}
	if !equalRules(approver.Rules, wantApprover) {
		t.Errorf("approver rules %v, want %v", approver.Rules, wantApprover)
	}
	binding := decode[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "pq-issuer:approver")
	if s := binding.Subjects; len(s) != 1 || s[0].Name != "cert-manager" || s[0].Namespace != "cert-manager" {
		t.Errorf("approver binding subjects %v, want cert-manager's ServiceAccount", s)
	}
	for _, name := range []string{"pqclusterissuers.pq-issuer.dev", "pqissuers.pq-issuer.dev"} {
		if o := find(objs, "CustomResourceDefinition", name); !strings.Contains(string(o.YAML), "helm.sh/resource-policy: keep") {
			t.Errorf("CRD %s is not kept on uninstall", name)
		}
	}
}

// defaultPodSecurityContext and defaultSecurityContext are the chart's default security contexts.
func defaultPodSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), RunAsGroup: ptr.To[int64](65532),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func defaultSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// cmpJSON is "" when got and want are the same as JSON, else both.
func cmpJSON(got, want any) string {
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if bytes.Equal(g, w) {
		return ""
	}
	return fmt.Sprintf("%s, want %s", g, w)
}

func envNames(c corev1.Container) []string {
	var names []string
	for _, e := range c.Env {
		names = append(names, e.Name)
	}
	return names
}

// checkRestricted checks the pod against the Pod Security "restricted" profile's rules.
func checkRestricted(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod securityContext %+v, want runAsNonRoot with a non-zero user", psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccomp %+v, want RuntimeDefault", psc)
	}
	sc := pod.Containers[0].SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container securityContext %+v, want no privilege escalation, read-only root FS, all capabilities dropped", sc)
	}
}

// checkClusterResourceNamespaceRole checks that the Role in the cluster resource namespace ns grants
// the core resources, one rule each and nothing else, to pq-issuer's ServiceAccount.
func checkClusterResourceNamespaceRole(t *testing.T, objs []object, ns string, resources ...string) {
	t.Helper()
	const name = "pq-issuer:cluster-resource-namespace"
	role := decode[rbacv1.Role](t, objs, "Role", name)
	var got []string
	for _, r := range role.Rules {
		if !slices.Equal(r.APIGroups, []string{""}) || len(r.Resources) != 1 {
			t.Errorf("Role %s rule %v, want one core resource", name, r)
		}
		got = append(got, r.Resources...)
	}
	if role.Namespace != ns || !slices.Equal(got, resources) {
		t.Errorf("Role %s in %q grants %v, want %v in %q", name, role.Namespace, got, resources, ns)
	}
	rb := decode[rbacv1.RoleBinding](t, objs, "RoleBinding", name)
	if rb.Namespace != ns || rb.RoleRef.Name != name || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "pq-issuer" || rb.Subjects[0].Namespace != namespace {
		t.Errorf("RoleBinding %s %+v, want pq-issuer's ServiceAccount bound in %q", name, rb, ns)
	}
}

func hasResource(rules []rbacv1.PolicyRule, resource string) bool {
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, resource) })
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	ya, _ := yaml.Marshal(a)
	yb, _ := yaml.Marshal(b)
	return bytes.Equal(ya, yb)
}

// TestGeneratedRulesSplit: the ClusterRole and the Role in the cluster resource namespace together
// grant each resource of controller-gen's ClusterRole exactly as generated, whichever of them it
// moved to, and nothing else.
func TestGeneratedRulesSplit(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir(t), "files", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var generated []rbacv1.PolicyRule
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		if role.Kind == "ClusterRole" {
			generated = role.Rules
		}
	}
	// perResource spells rules one resource each, to compare however they are grouped.
	perResource := func(rules []rbacv1.PolicyRule) []string {
		var out []string
		for _, r := range rules {
			for _, res := range r.Resources {
				one := r.DeepCopy()
				one.Resources = []string{res}
				b, _ := json.Marshal(one)
				out = append(out, string(b))
			}
		}
		slices.Sort(out)
		return out
	}
	for _, clusterWide := range []string{"true", "false"} {
		t.Run("secrets.clusterWide="+clusterWide, func(t *testing.T) {
			objs := render(t, "secrets.clusterWide="+clusterWide)
			rules := slices.Concat(decode[rbacv1.ClusterRole](t, objs, "ClusterRole", "pq-issuer").Rules,
				decode[rbacv1.Role](t, objs, "Role", "pq-issuer:cluster-resource-namespace").Rules)
			if got, want := perResource(rules), perResource(generated); !slices.Equal(got, want) {
				t.Errorf("the chart grants\n%s\nwant controller-gen's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestValues renders non-default values and checks each one's effect.
func TestValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string // a values file
		set   []string
		check func(t *testing.T, objs []object)
	}{
		{
			name: "secrets.clusterWide=false moves Secret read into the Role in the cluster resource namespace",
			set:  []string{"secrets.clusterWide=false", "clusterResourceNamespace=cert-manager"},
			check: func(t *testing.T, objs []object) {
				cr := decode[rbacv1.ClusterRole](t, objs, "ClusterRole", "pq-issuer")
				if hasResource(cr.Rules, "secrets") || hasResource(cr.Rules, "configmaps") {
					t.Errorf("ClusterRole still grants secrets or configmaps: %v", cr.Rules)
				}
				// controller-gen merges namespaces into the secrets rule; a Role cannot grant them.
				if !hasResource(cr.Rules, "namespaces") {
					t.Errorf("ClusterRole rules %v lack namespaces: a PQClusterIssuer's namespaceSelector reads them", cr.Rules)
				}
				checkClusterResourceNamespaceRole(t, objs, "cert-manager", "configmaps", "secrets")
				args := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer").Spec.Template.Spec.Containers[0].Args
				for _, arg := range []string{"--cluster-issuers-only", "--cluster-resource-namespace=cert-manager"} {
					if !slices.Contains(args, arg) {
						t.Errorf("args %q lack %s", args, arg)
					}
				}
			},
		},
		{
			name: "approver.enabled=false leaves approval to approver-policy",
			set:  []string{"approver.enabled=false"},
			check: func(t *testing.T, objs []object) {
				for _, kind := range []string{"ClusterRole", "ClusterRoleBinding"} {
					if find(objs, kind, "pq-issuer:approver") != nil {
						t.Errorf("%s pq-issuer:approver rendered with approver.enabled=false", kind)
					}
				}
			},
		},
		{
			name: "no memory limit, no GOMEMLIMIT",
			set:  []string{"resources.limits=null"},
			check: func(t *testing.T, objs []object) {
				c := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer").Spec.Template.Spec.Containers[0]
				if !c.Resources.Limits.Memory().IsZero() || envFrom(c, "GOMEMLIMIT") != nil {
					t.Errorf("limits %v, env %+v: want neither", c.Resources.Limits, c.Env)
				}
			},
		},
		{
			name: "image digest wins over the tag",
			set:  []string{"image.repository=registry.example/pq-issuer", "image.tag=v9", "image.digest=sha256:" + strings.Repeat("ab", 32)},
			check: func(t *testing.T, objs []object) {
				img := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer").Spec.Template.Spec.Containers[0].Image
				if want := "registry.example/pq-issuer@sha256:" + strings.Repeat("ab", 32); img != want {
					t.Errorf("image %q, want %q", img, want)
				}
			},
		},
		{
			name: "one replica without leader election: no Lease Role, no PodDisruptionBudget",
			set:  []string{"replicaCount=1", "leaderElection.enabled=false"},
			check: func(t *testing.T, objs []object) {
				for _, o := range []struct{ kind, name string }{{"Role", "pq-issuer:leader-election"}, {"RoleBinding", "pq-issuer:leader-election"}, {"PodDisruptionBudget", "pq-issuer"}} {
					if find(objs, o.kind, o.name) != nil {
						t.Errorf("%s %s rendered", o.kind, o.name)
					}
				}
				args := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer").Spec.Template.Spec.Containers[0].Args
				if !slices.Contains(args, "--leader-elect=false") {
					t.Errorf("args %q lack --leader-elect=false", args)
				}
			},
		},
		{
			name: "network policy: metrics and health ports in, API server out",
			set:  []string{"networkPolicy.enabled=true", "networkPolicy.apiServerCIDRs={172.18.0.2/32,172.18.0.3/32}"},
			check: func(t *testing.T, objs []object) {
				np := decode[networkingv1.NetworkPolicy](t, objs, "NetworkPolicy", "pq-issuer")
				if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 2 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 8080 || np.Spec.Ingress[0].Ports[1].Port.IntValue() != 8081 {
					t.Errorf("ingress %+v, want ports 8080 and 8081 only", np.Spec.Ingress)
				}
				if len(np.Spec.Egress) != 1 || len(np.Spec.Egress[0].To) != 2 || np.Spec.Egress[0].To[1].IPBlock.CIDR != "172.18.0.3/32" || len(np.Spec.Egress[0].Ports) != 2 {
					t.Errorf("egress %+v, want the two API server CIDRs on 443 and 6443", np.Spec.Egress)
				}
			},
		},
		{
			name: "service monitor",
			set:  []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prometheus"},
			check: func(t *testing.T, objs []object) {
				sm := decode[serviceMonitor](t, objs, "ServiceMonitor", "pq-issuer")
				if sm.Namespace != namespace || sm.Labels["release"] != "prometheus" {
					t.Errorf("ServiceMonitor in %q with labels %v, want %s with release=prometheus", sm.Namespace, sm.Labels, namespace)
				}
				want := serviceMonitorSpec{
					NamespaceSelector: namespaceSelector{MatchNames: []string{namespace}},
					Selector:          metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "pq-issuer", "app.kubernetes.io/instance": release}},
					Endpoints: []endpoint{{
						Port: "metrics", Path: "/metrics", Scheme: "https", BearerTokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token",
						TLSConfig: &tlsConfig{InsecureSkipVerify: true}, Interval: "60s", HonorLabels: true,
					}},
				}
				if diff := cmpJSON(sm.Spec, want); diff != "" {
					t.Errorf("ServiceMonitor spec %s", diff)
				}
			},
		},
		{
			name: "service monitor options",
			file: `
metrics:
  serviceMonitor:
    enabled: true
    namespace: monitoring
    interval: 30s
    scrapeTimeout: 30s
    honorLabels: false
    relabelings: [{action: replace, sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node}]
    metricRelabelings: [{action: drop, sourceLabels: [__name__], regex: go_gc_.*}]
`,
			check: func(t *testing.T, objs []object) {
				sm := decode[serviceMonitor](t, objs, "ServiceMonitor", "pq-issuer")
				if sm.Namespace != "monitoring" {
					t.Errorf("ServiceMonitor in %q, want monitoring", sm.Namespace)
				}
				want := serviceMonitorSpec{
					// From the monitoring namespace it selects the Service in the release namespace.
					NamespaceSelector: namespaceSelector{MatchNames: []string{namespace}},
					Selector:          metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "pq-issuer", "app.kubernetes.io/instance": release}},
					Endpoints: []endpoint{{
						Port: "metrics", Path: "/metrics", Scheme: "https", BearerTokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token",
						TLSConfig: &tlsConfig{InsecureSkipVerify: true}, Interval: "30s", ScrapeTimeout: "30s",
						Relabelings:       []relabelConfig{{Action: "replace", SourceLabels: []string{"__meta_kubernetes_pod_node_name"}, TargetLabel: "node"}},
						MetricRelabelings: []relabelConfig{{Action: "drop", SourceLabels: []string{"__name__"}, Regex: "go_gc_.*"}},
					}},
				}
				if diff := cmpJSON(sm.Spec, want); diff != "" {
					t.Errorf("ServiceMonitor spec %s", diff)
				}
			},
		},
		{
			name: "OpenShift: user and group ids left to the platform (a values file with nulls)",
			file: "podSecurityContext: {runAsUser: null, runAsGroup: null, fsGroup: null}\n",
			check: func(t *testing.T, objs []object) {
				pod := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer").Spec.Template.Spec
				want := &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
				if diff := cmpJSON(pod.SecurityContext, want); diff != "" {
					t.Errorf("pod securityContext %s", diff)
				}
				if diff := cmpJSON(pod.Containers[0].SecurityContext, defaultSecurityContext()); diff != "" {
					t.Errorf("container securityContext %s", diff)
				}
			},
		},
		{
			name: "OpenShift: user and group ids left to the platform (--set null)",
			set:  []string{"podSecurityContext.runAsUser=null", "podSecurityContext.runAsGroup=null"},
			check: func(t *testing.T, objs []object) {
				psc := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer").Spec.Template.Spec.SecurityContext
				want := &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
				if diff := cmpJSON(psc, want); diff != "" {
					t.Errorf("pod securityContext %s", diff)
				}
			},
		},
		{
			name: "security contexts overridden field by field",
			set:  []string{"podSecurityContext.fsGroup=2000", "podSecurityContext.runAsUser=1000", "securityContext.capabilities.drop={ALL,NET_RAW}", "securityContext.readOnlyRootFilesystem=null"},
			check: func(t *testing.T, objs []object) {
				pod := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer").Spec.Template.Spec
				wantPod := defaultPodSecurityContext()
				wantPod.RunAsUser, wantPod.FSGroup = ptr.To[int64](1000), ptr.To[int64](2000)
				if diff := cmpJSON(pod.SecurityContext, wantPod); diff != "" {
					t.Errorf("pod securityContext %s", diff)
				}
				want := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL", "NET_RAW"}}}
				if diff := cmpJSON(pod.Containers[0].SecurityContext, want); diff != "" {
					t.Errorf("container securityContext %s", diff)
				}
			},
		},
		{
			name: "extra args, env, volumes and mounts after the chart's",
			file: `
extraArgs: ["--max-retry-duration=2h", "--zap-encoder=console"]
extraEnv:
  - {name: GOGC, value: "50"}
  - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
volumes: [{name: tmp, emptyDir: {medium: Memory}}]
volumeMounts: [{name: tmp, mountPath: /tmp, readOnly: false}]
`,
			check: func(t *testing.T, objs []object) {
				pod := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer").Spec.Template.Spec
				c := pod.Containers[0]
				wantArgs := []string{"--cluster-resource-namespace=" + namespace, "--leader-elect=true", "--max-concurrent-reconciles=4",
					"--metrics-bind-address=:8080", "--health-probe-bind-address=:8081", "--zap-log-level=info", "--max-retry-duration=2h", "--zap-encoder=console"}
				if !slices.Equal(c.Args, wantArgs) {
					t.Errorf("args %q, want %q", c.Args, wantArgs)
				}
				wantEnv := []corev1.EnvVar{
					{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}},
					{Name: "GOGC", Value: "50"},
					{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
				}
				if diff := cmpJSON(c.Env, wantEnv); diff != "" {
					t.Errorf("env %s", diff)
				}
				if diff := cmpJSON(pod.Volumes, []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}); diff != "" {
					t.Errorf("volumes %s", diff)
				}
				if diff := cmpJSON(c.VolumeMounts, []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}); diff != "" {
					t.Errorf("volumeMounts %s", diff)
				}
			},
		},
		{
			name: "GOMEMLIMIT in extraEnv replaces the chart's",
			set:  []string{"extraEnv[0].name=GOMEMLIMIT", "extraEnv[0].value=200MiB"},
			check: func(t *testing.T, objs []object) {
				c := decode[appsv1.Deployment](t, objs, "Deployment", "pq-issuer").Spec.Template.Spec.Containers[0]
				want := []corev1.EnvVar{
					{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "GOMEMLIMIT", Value: "200MiB"},
				}
				if diff := cmpJSON(c.Env, want); diff != "" {
					t.Errorf("env %s", diff)
				}
			},
		},
		{
			name: "metrics.readers are bound to the metrics-reader ClusterRole",
			set:  []string{"metrics.readers[0].name=prometheus-k8s", "metrics.readers[0].namespace=monitoring"},
			check: func(t *testing.T, objs []object) {
				b := decode[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "pq-issuer:metrics-reader")
				want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus-k8s", Namespace: "monitoring"}}
				if b.RoleRef.Name != "pq-issuer:metrics-reader" || !slices.Equal(b.Subjects, want) {
					t.Errorf("binding %+v, want %v bound to pq-issuer:metrics-reader", b, want)
				}
				if find(render(t), "ClusterRoleBinding", "pq-issuer:metrics-reader") != nil {
					t.Error("metrics-reader binding rendered without metrics.readers")
				}
			},
		},
		{
			name: "CRDs left out, or not kept",
			set:  []string{"crds.keep=false"},
			check: func(t *testing.T, objs []object) {
				o := find(objs, "CustomResourceDefinition", "pqissuers.pq-issuer.dev")
				if o == nil || strings.Contains(string(o.YAML), "resource-policy") {
					t.Errorf("CRD %v, want it rendered without helm.sh/resource-policy", o)
				}
				if objs := render(t, "crds.enabled=false"); find(objs, "CustomResourceDefinition", "pqissuers.pq-issuer.dev") != nil {
					t.Error("CRD rendered with crds.enabled=false")
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, renderValues(t, values{file: tc.file, set: tc.set}))
		})
	}
}

// TestBadValues: values.schema.json (or a template check) refuses bad values at install time with
// a message naming the value.
func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       values
		wantErr []string
	}{
		{name: "replicaCount is not a number", v: values{set: []string{"replicaCount=two"}}, wantErr: []string{"replicaCount", "integer"}},
		{name: "replicaCount zero", v: values{set: []string{"replicaCount=0"}}, wantErr: []string{"replicaCount", "minimum"}},
		{name: "misspelled top-level value", v: values{set: []string{"replicas=3"}}, wantErr: []string{"additional properties", "replicas"}},
		{name: "misspelled nested value", v: values{set: []string{"secrets.clusterwide=false"}}, wantErr: []string{"additional properties", "clusterwide"}},
		{name: "digest is not a sha256 digest", v: values{set: []string{"image.digest=latest"}}, wantErr: []string{"/image/digest", "sha256"}},
		{name: "clusterWide is a string", v: values{set: []string{"secrets.clusterWide=maybe"}}, wantErr: []string{"/secrets/clusterWide", "boolean"}},
		{name: "no workers", v: values{set: []string{"maxConcurrentReconciles=0"}}, wantErr: []string{"maxConcurrentReconciles", "minimum"}},
		{name: "log level unknown", v: values{set: []string{"logLevel=loud"}}, wantErr: []string{"logLevel"}},
		{name: "namespace not a DNS label", v: values{set: []string{"clusterResourceNamespace=Cert_Manager"}}, wantErr: []string{"clusterResourceNamespace"}},
		{name: "network policy without API server CIDRs", v: values{set: []string{"networkPolicy.enabled=true"}}, wantErr: []string{"apiServerCIDRs", "minItems"}},
		{name: "API server CIDR malformed", v: values{set: []string{"networkPolicy.enabled=true", "networkPolicy.apiServerCIDRs={10.0.0.1}"}}, wantErr: []string{"apiServerCIDRs"}},
		{name: "pull policy unknown", v: values{set: []string{"image.pullPolicy=Sometimes"}}, wantErr: []string{"pullPolicy"}},
		{name: "two replicas without leader election", v: values{set: []string{"leaderElection.enabled=false"}}, wantErr: []string{"replicaCount > 1 needs leaderElection.enabled=true"}},
		{name: "metrics reader without a namespace", v: values{set: []string{"metrics.readers[0].name=prometheus"}}, wantErr: []string{"readers", "namespace"}},
		{name: "service monitor without the metrics service", v: values{set: []string{"metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"}}, wantErr: []string{"metrics.serviceMonitor.enabled needs metrics.service.enabled"}},
		{name: "global is not an object", v: values{set: []string{"global=yes"}}, wantErr: []string{"/global", "object"}},
		{name: "extra arg is not a string", v: values{setJSON: []string{`extraArgs=[2]`}}, wantErr: []string{"/extraArgs/0", "string"}},
		{name: "extra env without a name", v: values{setJSON: []string{`extraEnv=[{"value":"50"}]`}}, wantErr: []string{"/extraEnv/0", "name"}},
		{name: "extra env misspelled", v: values{setJSON: []string{`extraEnv=[{"name":"GOGC","valu":"50"}]`}}, wantErr: []string{"/extraEnv/0", "valu"}},
		{name: "extra env replaces POD_NAMESPACE", v: values{setJSON: []string{`extraEnv=[{"name":"POD_NAMESPACE","value":"x"}]`}}, wantErr: []string{"extraEnv: POD_NAMESPACE is the chart's"}},
		{name: "volume without a name", v: values{setJSON: []string{`volumes=[{"emptyDir":{}}]`}}, wantErr: []string{"/volumes/0", "name"}},
		{name: "volume mount with a relative path", v: values{setJSON: []string{`volumes=[{"name":"tmp","emptyDir":{}}]`, `volumeMounts=[{"name":"tmp","mountPath":"tmp"}]`}}, wantErr: []string{"/volumeMounts/0/mountPath"}},
		{name: "volume mount of no volume", v: values{setJSON: []string{`volumeMounts=[{"name":"tmp","mountPath":"/tmp"}]`}}, wantErr: []string{`volumeMounts: "tmp" (at /tmp) names no volume in volumes`}},
		{name: "pod runs as root", v: values{set: []string{"podSecurityContext.runAsUser=0"}}, wantErr: []string{"/podSecurityContext/runAsUser", "minimum"}},
		{name: "pod security context misspelled", v: values{set: []string{"podSecurityContext.runAsUsr=1000"}}, wantErr: []string{"/podSecurityContext", "runAsUsr"}},
		{name: "fsGroup is a string", v: values{set: []string{"podSecurityContext.fsGroup=users"}}, wantErr: []string{"/podSecurityContext/fsGroup", "integer"}},
		{name: "privileged is a string", v: values{set: []string{"securityContext.privileged=maybe"}}, wantErr: []string{"/securityContext/privileged", "boolean"}},
		{name: "capabilities misspelled", v: values{set: []string{"securityContext.capabilities.remove={ALL}"}}, wantErr: []string{"/securityContext/capabilities", "remove"}},
		{name: "service monitor namespace not a DNS label", v: values{set: []string{"metrics.serviceMonitor.namespace=Monitoring"}}, wantErr: []string{"/metrics/serviceMonitor/namespace"}},
		{name: "scrape timeout without a unit", v: values{set: []string{"metrics.serviceMonitor.scrapeTimeout=10"}}, wantErr: []string{"/metrics/serviceMonitor/scrapeTimeout"}},
		{name: "scrape timeout over the interval", v: values{set: []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.scrapeTimeout=2m"}}, wantErr: []string{"metrics.serviceMonitor.scrapeTimeout 2m is longer than interval 60s"}},
		{name: "relabeling action unknown", v: values{setJSON: []string{`metrics.serviceMonitor.relabelings=[{"action":"rename"}]`}}, wantErr: []string{"/metrics/serviceMonitor/relabelings/0/action"}},
		{name: "metric relabeling misspelled", v: values{setJSON: []string{`metrics.serviceMonitor.metricRelabelings=[{"source_labels":["__name__"]}]`}}, wantErr: []string{"/metrics/serviceMonitor/metricRelabelings/0", "source_labels"}},
		{name: "rule namespace not a DNS label", v: values{set: []string{"prometheusRule.namespace=-monitoring"}}, wantErr: []string{"/prometheusRule/namespace"}},
		{name: "failure window without a unit", v: values{set: []string{"prometheusRule.signingFailures.window=15"}}, wantErr: []string{"/prometheusRule/signingFailures/window"}},
		{name: "not-ready duration in the wrong order", v: values{set: []string{"prometheusRule.issuerNotReady.for=30m1h"}}, wantErr: []string{"/prometheusRule/issuerNotReady/for"}},
		{name: "rule interval malformed", v: values{set: []string{"prometheusRule.interval=often"}}, wantErr: []string{"/prometheusRule/interval"}},
		{name: "expiry threshold in hours", v: values{set: []string{"prometheusRule.caExpiry.warningDays=72h"}}, wantErr: []string{"/prometheusRule/caExpiry/warningDays", "integer"}},
		{name: "critical expiry before the warning", v: values{set: []string{"prometheusRule.enabled=true", "prometheusRule.caExpiry.criticalDays=30"}}, wantErr: []string{"prometheusRule.caExpiry.criticalDays (30) must be less than warningDays (21)"}},
		{name: "alert label overrides severity", v: values{set: []string{"prometheusRule.alertLabels.severity=page"}}, wantErr: []string{"/prometheusRule/alertLabels/severity"}},
		{name: "alert label name invalid in Prometheus", v: values{set: []string{"prometheusRule.alertLabels.team-name=platform"}}, wantErr: []string{"/prometheusRule/alertLabels", "additional properties 'team-name'"}},
		{name: "rule value misspelled", v: values{set: []string{"prometheusRule.enable=true"}}, wantErr: []string{"/prometheusRule", "enable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"template", release, chartDir(t), "--namespace", namespace}, tc.v.args(t)...)
			_, stderr, err := helm(t, args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded, want an error containing %q", tc.v, tc.wantErr)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(stderr, s) {
					t.Errorf("error %q does not contain %q", strings.TrimSpace(stderr), s)
				}
			}
		})
	}
}

// envFrom is where the container's environment variable name comes from, or nil when it has none.
func envFrom(c corev1.Container, name string) *corev1.EnvVarSource {
	for _, e := range c.Env {
		if e.Name == name {
			return e.ValueFrom
		}
	}
	return nil
}

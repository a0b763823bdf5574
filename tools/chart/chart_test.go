package chart_test

import (
	"bufio"
	"bytes"
	"errors"
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
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
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

// render runs helm template with --set values and returns the objects.
func render(t *testing.T, set ...string) []object {
	t.Helper()
	args := []string{"template", release, chartDir(t), "--namespace", namespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, stderr, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
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

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
	}{
		{name: "default values"},
		{name: "cluster issuers only, no approver, one replica", set: []string{"secrets.clusterWide=false", "approver.enabled=false", "replicaCount=1", "leaderElection.enabled=false"}},
		{name: "network policy and service monitor", set: []string{"networkPolicy.enabled=true", "networkPolicy.apiServerCIDRs={10.0.0.1/32}", "metrics.serviceMonitor.enabled=true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartDir(t), "--namespace", namespace}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
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
		"Role/pq-issuer:leader-election", "RoleBinding/pq-issuer:leader-election", "Service/pq-issuer-metrics",
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
	if !hasResource(cr.Rules, "secrets") {
		t.Errorf("ClusterRole rules %v lack secrets: PQIssuers read Secrets in their own namespaces", cr.Rules)
	}
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

func hasResource(rules []rbacv1.PolicyRule, resource string) bool {
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, resource) })
}

func equalRules(a, b []rbacv1.PolicyRule) bool {
	ya, _ := yaml.Marshal(a)
	yb, _ := yaml.Marshal(b)
	return bytes.Equal(ya, yb)
}

// TestValues renders non-default values and checks each one's effect.
func TestValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   []string
		check func(t *testing.T, objs []object)
	}{
		{
			name: "secrets.clusterWide=false moves Secret read into a Role in the cluster resource namespace",
			set:  []string{"secrets.clusterWide=false", "clusterResourceNamespace=cert-manager"},
			check: func(t *testing.T, objs []object) {
				cr := decode[rbacv1.ClusterRole](t, objs, "ClusterRole", "pq-issuer")
				if hasResource(cr.Rules, "secrets") {
					t.Errorf("ClusterRole still grants secrets: %v", cr.Rules)
				}
				role := decode[rbacv1.Role](t, objs, "Role", "pq-issuer:secrets")
				if role.Namespace != "cert-manager" || !hasResource(role.Rules, "secrets") || len(role.Rules) != 1 {
					t.Errorf("secrets Role in %q with %v, want only secrets in cert-manager", role.Namespace, role.Rules)
				}
				rb := decode[rbacv1.RoleBinding](t, objs, "RoleBinding", "pq-issuer:secrets")
				if rb.Namespace != "cert-manager" || rb.Subjects[0].Name != "pq-issuer" || rb.Subjects[0].Namespace != namespace {
					t.Errorf("secrets RoleBinding %+v", rb)
				}
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
				o := find(objs, "ServiceMonitor", "pq-issuer")
				if o == nil {
					t.Fatal("no ServiceMonitor rendered")
				}
				for _, want := range []string{"release: prometheus", "port: metrics", "scheme: https", "bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token"} {
					if !strings.Contains(string(o.YAML), want) {
						t.Errorf("ServiceMonitor lacks %q:\n%s", want, o.YAML)
					}
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
			tc.check(t, render(t, tc.set...))
		})
	}
}

// TestBadValues: values.schema.json (or a template check) refuses bad values at install time with
// a message naming the value.
func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     []string
		wantErr []string
	}{
		{name: "replicaCount is not a number", set: []string{"replicaCount=two"}, wantErr: []string{"replicaCount", "integer"}},
		{name: "replicaCount zero", set: []string{"replicaCount=0"}, wantErr: []string{"replicaCount", "minimum"}},
		{name: "misspelled top-level value", set: []string{"replicas=3"}, wantErr: []string{"additional properties", "replicas"}},
		{name: "misspelled nested value", set: []string{"secrets.clusterwide=false"}, wantErr: []string{"additional properties", "clusterwide"}},
		{name: "digest is not a sha256 digest", set: []string{"image.digest=latest"}, wantErr: []string{"/image/digest", "sha256"}},
		{name: "clusterWide is a string", set: []string{"secrets.clusterWide=maybe"}, wantErr: []string{"/secrets/clusterWide", "boolean"}},
		{name: "no workers", set: []string{"maxConcurrentReconciles=0"}, wantErr: []string{"maxConcurrentReconciles", "minimum"}},
		{name: "log level unknown", set: []string{"logLevel=loud"}, wantErr: []string{"logLevel"}},
		{name: "namespace not a DNS label", set: []string{"clusterResourceNamespace=Cert_Manager"}, wantErr: []string{"clusterResourceNamespace"}},
		{name: "network policy without API server CIDRs", set: []string{"networkPolicy.enabled=true"}, wantErr: []string{"apiServerCIDRs", "minItems"}},
		{name: "API server CIDR malformed", set: []string{"networkPolicy.enabled=true", "networkPolicy.apiServerCIDRs={10.0.0.1}"}, wantErr: []string{"apiServerCIDRs"}},
		{name: "pull policy unknown", set: []string{"image.pullPolicy=Sometimes"}, wantErr: []string{"pullPolicy"}},
		{name: "two replicas without leader election", set: []string{"leaderElection.enabled=false"}, wantErr: []string{"replicaCount > 1 needs leaderElection.enabled=true"}},
		{name: "metrics reader without a namespace", set: []string{"metrics.readers[0].name=prometheus"}, wantErr: []string{"readers", "namespace"}},
		{name: "service monitor without the metrics service", set: []string{"metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"}, wantErr: []string{"metrics.serviceMonitor.enabled needs metrics.service.enabled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", release, chartDir(t), "--namespace", namespace}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			_, stderr, err := helm(t, args...)
			if err == nil {
				t.Fatalf("helm template --set %v succeeded, want an error containing %q", tc.set, tc.wantErr)
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

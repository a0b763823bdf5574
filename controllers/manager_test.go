package controllers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// TestSecretCache checks what the manager's cache watches of Secrets: only those marked as CA
// Secrets, in the cluster resource namespace alone with --cluster-issuers-only. (The e2e test
// TestPQIssuer lists the real cache against an API server full of other Secrets.)
func TestSecretCache(t *testing.T) {
	for _, tc := range []struct {
		name           string
		opts           Options
		wantNamespaces []string // nil: every namespace
	}{
		{name: "every namespace", opts: Options{ClusterResourceNamespace: clusterResourceNamespace}},
		{
			name:           "cluster issuers only",
			opts:           Options{ClusterResourceNamespace: clusterResourceNamespace, ClusterIssuersOnly: true},
			wantNamespaces: []string{clusterResourceNamespace},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := secretCache(tc.opts)
			if c.Label == nil {
				t.Fatal("no label selector: every Secret of the cluster would be cached")
			}
			for _, s := range []struct {
				labels map[string]string
				want   bool
			}{
				{map[string]string{v1alpha1.CASecretLabel: "true"}, true},
				{map[string]string{v1alpha1.CASecretLabel: "true", "app": "mesh"}, true},
				{nil, false},
				{map[string]string{v1alpha1.CASecretLabel: "false"}, false},
				{map[string]string{"controller.cert-manager.io/fao": "true"}, false},
			} {
				if got := c.Label.Matches(labels.Set(s.labels)); got != s.want {
					t.Errorf("Secret labelled %v cached: %v, want %v (selector %q)", s.labels, got, s.want, c.Label)
				}
			}
			var namespaces []string
			for ns := range c.Namespaces {
				namespaces = append(namespaces, ns)
			}
			if !slices.Equal(namespaces, tc.wantNamespaces) {
				t.Errorf("namespaces %v, want %v", namespaces, tc.wantNamespaces)
			}
			if c.Transform == nil {
				t.Error("no transform: cached Secret metadata is kept whole")
			}
		})
	}
}

// TestLeaderElectionRBAC ties the generated Role (config/rbac/role.yaml, which the Helm chart
// renders) to the Lease the manager uses: get and update for LeaderElectionID only, create apart.
func TestLeaderElectionRBAC(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var leaseRules []rbacv1.PolicyRule
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var role rbacv1.Role
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		if role.Kind != "Role" {
			continue
		}
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "leases") {
				leaseRules = append(leaseRules, r)
			}
		}
	}
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{LeaderElectionID}, Verbs: []string{"get", "update"}},
	}
	got, _ := yaml.Marshal(leaseRules)
	wantYAML, _ := yaml.Marshal(want)
	if string(got) != string(wantYAML) {
		t.Errorf("Lease rules of the generated Role:\n%s\nwant:\n%s(change the +kubebuilder:rbac marker in manager.go with LeaderElectionID, then make manifests)", got, wantYAML)
	}
}

// TestMetricsServer checks that /metrics is served over HTTPS behind the API server's
// authentication and authorization.
func TestMetricsServer(t *testing.T) {
	o := metricsServer(":8080")
	if o.BindAddress != ":8080" || !o.SecureServing || o.FilterProvider == nil {
		t.Errorf("metrics server options %+v, want HTTPS on :8080 with an authn/authz filter", o)
	}
}

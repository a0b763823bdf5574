package main

import (
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
)

// TestCASecretLabel checks that both formats of `ca secret` mark the Secret as a CA Secret, with the
// label value a string as the API server requires (an unquoted YAML true would be a boolean).
func TestCASecretLabel(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "root")
	mustRun(t, "ca", "create", "--subject", "CN=Label Root", "--out-dir", caDir)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"yaml", []string{"--namespace", "cert-manager"}},
		{"json", []string{"-o", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := mustRun(t, append([]string{"ca", "secret", "--ca-dir", caDir, "--name", "mesh-ca"}, tc.args...)...).stdout
			// The fields of a v1 Secret's metadata, strictly: a boolean label value fails to decode.
			var obj struct {
				APIVersion, Kind, Type string
				Metadata               struct {
					Name, Namespace string
					Labels          map[string]string
				}
				Data map[string]string
			}
			if err := yaml.UnmarshalStrict([]byte(out), &obj); err != nil {
				t.Fatalf("the Secret does not decode as a Kubernetes object: %v\n%s", err, out)
			}
			if len(obj.Metadata.Labels) != 1 || obj.Metadata.Labels[v1alpha1.CASecretLabel] != v1alpha1.CASecretLabelValue {
				t.Errorf("labels %v, want only %s=%s", obj.Metadata.Labels, v1alpha1.CASecretLabel, v1alpha1.CASecretLabelValue)
			}
			if obj.Metadata.Name != "mesh-ca" || len(obj.Data) != 3 {
				t.Errorf("Secret %s with %d data fields, want mesh-ca with 3", obj.Metadata.Name, len(obj.Data))
			}
		})
	}
}

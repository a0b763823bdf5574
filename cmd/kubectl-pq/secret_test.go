package main

import (
	"bytes"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
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

// TestCASecretRoundTrip checks that what `ca secret` prints in either format is a v1 Secret that
// kubectl would apply unchanged, and that inspect reads it back, alone or in a List as
// `kubectl get secrets -o yaml` prints it.
func TestCASecretRoundTrip(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "root")
	mustRun(t, "ca", "create", "--subject", "CN=Round Trip Root", "--out-dir", caDir)
	crt, key := readFile(t, filepath.Join(caDir, "tls.crt")), readFile(t, filepath.Join(caDir, "tls.key"))
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			out := mustRun(t, "ca", "secret", "--ca-dir", caDir, "--name", "mesh-ca", "--namespace", "cert-manager", "-o", format).stdout
			var s corev1.Secret
			if err := yaml.UnmarshalStrict([]byte(out), &s); err != nil {
				t.Fatalf("the Secret does not decode as a v1 Secret: %v\n%s", err, out)
			}
			if s.APIVersion != "v1" || s.Kind != "Secret" || s.Name != "mesh-ca" || s.Namespace != "cert-manager" || s.Type != corev1.SecretTypeTLS {
				t.Errorf("decoded %s %s %s/%s of type %s; want v1 Secret cert-manager/mesh-ca of type %s", s.APIVersion, s.Kind, s.Namespace, s.Name, s.Type, corev1.SecretTypeTLS)
			}
			if !maps.Equal(s.Labels, map[string]string{v1alpha1.CASecretLabel: v1alpha1.CASecretLabelValue}) || len(s.Annotations) != 0 {
				t.Errorf("labels %v, annotations %v; want only the label %s=%s", s.Labels, s.Annotations, v1alpha1.CASecretLabel, v1alpha1.CASecretLabelValue)
			}
			// A root is its own trust anchor.
			if keys := slices.Sorted(maps.Keys(s.Data)); !slices.Equal(keys, []string{"ca.crt", "tls.crt", "tls.key"}) ||
				!bytes.Equal(s.Data["tls.crt"], crt) || !bytes.Equal(s.Data["tls.key"], key) || !bytes.Equal(s.Data["ca.crt"], crt) {
				t.Errorf("data %v does not hold the CA files", keys)
			}

			list, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": []corev1.Secret{s, s}})
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "secret."+format)
			writeFile(t, file, []byte(out))
			for _, in := range []struct {
				name   string
				result result
				want   []string
			}{
				{"stdin", runCLIWith(t, strings.NewReader(out), time.Now(), "inspect"), []string{"[3] PRIVATE KEY (tls.key)"}},
				{"file", runCLI(t, "inspect", file), []string{"[3] PRIVATE KEY (tls.key)"}},
				{"List", runCLIWith(t, bytes.NewReader(list), time.Now(), "inspect"), []string{"[6] PRIVATE KEY (tls.key)", "Same as:              [1] CN=Round Trip Root"}},
			} {
				if in.result.code != 0 {
					t.Fatalf("inspect %s: exit %d: %s", in.name, in.result.code, in.result.stderr)
				}
				for _, w := range append(in.want, "Secret cert-manager/mesh-ca (type kubernetes.io/tls)\n", "[1] CERTIFICATE (tls.crt)\n", "[2] CERTIFICATE (ca.crt)\n", "Belongs to:           [1] CN=Round Trip Root") {
					if !strings.Contains(in.result.stdout, w) {
						t.Errorf("inspect %s lacks %q:\n%s", in.name, w, in.result.stdout)
					}
				}
			}
		})
	}
}

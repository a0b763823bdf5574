package chart_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// parentValues are a parent chart's values: globals, which Helm hands to every subchart, and
// pq-issuer's own.
const parentValues = `
global:
  imageRegistry: registry.example
  labels: {team: platform}
pq-issuer:
  replicaCount: 3
  prometheusRule: {enabled: true}
`

// parentChart writes a chart "platform" that depends on the chart in dir (file://) and has values,
// fetches the dependency as `helm dependency update` does, and returns the parent's directory.
func parentChart(t *testing.T, dir, values string) string {
	t.Helper()
	parent := t.TempDir()
	files := map[string]string{
		"Chart.yaml": `apiVersion: v2
name: platform
description: A platform chart that installs pq-issuer as a subchart
version: 1.0.0
dependencies:
  - name: pq-issuer
    version: 0.1.0
    repository: file://` + dir + "\n",
		"values.yaml": values,
		"templates/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-platform
data:
  registry: {{ .Values.global.imageRegistry | quote }}
`,
	}
	for name, content := range files {
		path := filepath.Join(parent, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, stderr, err := helm(t, "dependency", "update", parent); err != nil {
		t.Fatalf("helm dependency update: %v\n%s%s", err, out, stderr)
	}
	return parent
}

// TestSubchart installs pq-issuer as a dependency of another chart, with global values: Helm hands
// every subchart a "global" value, which the strict schema must allow.
func TestSubchart(t *testing.T) {
	t.Run("lint and template with globals", func(t *testing.T) {
		parent := parentChart(t, chartDir(t), parentValues)
		out, stderr, err := helm(t, "lint", "--strict", "--with-subcharts", parent, "--namespace", namespace)
		if err != nil || !strings.Contains(out, "2 chart(s) linted, 0 chart(s) failed") {
			t.Fatalf("helm lint: %v\n%s%s", err, out, stderr)
		}
		out, stderr, err = helm(t, "template", "platform", parent, "--namespace", namespace)
		if err != nil {
			t.Fatalf("helm template: %v\n%s", err, stderr)
		}
		objs := parseObjects(t, out)
		// The release is "platform", so the subchart's objects are "platform-pq-issuer".
		d := decode[appsv1.Deployment](t, objs, "Deployment", "platform-pq-issuer")
		if *d.Spec.Replicas != 3 {
			t.Errorf("replicas %d, want the parent's pq-issuer.replicaCount 3", *d.Spec.Replicas)
		}
		for _, o := range []struct{ kind, name string }{{"PrometheusRule", "platform-pq-issuer"}, {"ConfigMap", "platform-platform"}, {"ClusterRole", "platform-pq-issuer"}} {
			if find(objs, o.kind, o.name) == nil {
				t.Errorf("no %s %s rendered; have %v", o.kind, o.name, names(objs))
			}
		}
	})

	t.Run("a misspelled subchart value is still refused", func(t *testing.T) {
		parent := parentChart(t, chartDir(t), parentValues+"  replicas: 3\n")
		_, stderr, err := helm(t, "template", "platform", parent, "--namespace", namespace)
		if err == nil || !strings.Contains(stderr, "pq-issuer:") || !strings.Contains(stderr, "additional properties 'replicas' not allowed") {
			t.Fatalf("helm template: %v, want pq-issuer's schema to refuse replicas:\n%s", err, stderr)
		}
	})

	// Control: the same parent fails with a schema that does not allow global, so the case above
	// would catch its removal.
	t.Run("a schema without global fails as a subchart", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "pq-issuer")
		if err := os.CopyFS(dir, os.DirFS(chartDir(t))); err != nil {
			t.Fatal(err)
		}
		schemaFile := filepath.Join(dir, "values.schema.json")
		b, err := os.ReadFile(schemaFile)
		if err != nil {
			t.Fatal(err)
		}
		var schema map[string]any
		if err := json.Unmarshal(b, &schema); err != nil {
			t.Fatal(err)
		}
		delete(schema["properties"].(map[string]any), "global")
		if b, err = json.Marshal(schema); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(schemaFile, b, 0o644); err != nil {
			t.Fatal(err)
		}
		parent := parentChart(t, dir, parentValues)
		_, stderr, err := helm(t, "template", "platform", parent, "--namespace", namespace)
		if err == nil || !strings.Contains(stderr, "additional properties 'global' not allowed") {
			t.Fatalf("helm template: %v, want global refused:\n%s", err, stderr)
		}
	})
}

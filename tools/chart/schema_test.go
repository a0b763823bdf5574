package chart_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestSchemaFollowsKubernetes: the schema's security contexts, environment variables and volume
// mounts refuse unknown fields, so each must list exactly the fields of its Kubernetes type (of the
// k8s.io/api version in tools/go.mod): a field Kubernetes adds fails here until the schema has it.
func TestSchemaFollowsKubernetes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir(t), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Definitions map[string]struct {
			AdditionalProperties json.RawMessage            `json:"additionalProperties"`
			Properties           map[string]json.RawMessage `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		definition string
		typ        any
	}{
		{"podSecurityContext", corev1.PodSecurityContext{}},
		{"securityContext", corev1.SecurityContext{}},
		{"envVar", corev1.EnvVar{}},
		{"volumeMount", corev1.VolumeMount{}},
	} {
		t.Run(tc.definition, func(t *testing.T) {
			def, ok := schema.Definitions[tc.definition]
			if !ok {
				t.Fatalf("values.schema.json has no definition %s", tc.definition)
			}
			if string(def.AdditionalProperties) != "false" {
				t.Errorf("definition %s allows unknown fields", tc.definition)
			}
			var got []string
			for name := range def.Properties {
				got = append(got, name)
			}
			want := jsonFields(reflect.TypeOf(tc.typ))
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("definition %s has %q, %T has %q", tc.definition, got, tc.typ, want)
			}
		})
	}
}

// jsonFields are the JSON names of a struct's fields, sorted.
func jsonFields(typ reflect.Type) []string {
	var names []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

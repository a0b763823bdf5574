package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteSection(t *testing.T) {
	certs1000 := "## N = 1000\n\ncertificates, 1000\n"
	certs10000 := "## N = 10000\n\ncertificates, 10000\n"
	pods200 := "## Pod certificates, N = 200\n\npods, 200\n"
	pods1000 := "## Pod certificates, N = 1000\n\npods, 1000\n"
	for _, tc := range []struct {
		name    string
		old     string // "" for no file
		key     sectionKey
		section string
		want    string
	}{
		{
			name: "first run", key: sectionKey{modePods, 200}, section: pods200,
			want: reportTitle + "\n" + pods200,
		},
		{
			name: "a pod run keeps the certificate runs, before it",
			old:  "# Old title\n\nold intro\n\n" + certs1000 + "\n" + certs10000,
			key:  sectionKey{modePods, 200}, section: pods200,
			want: reportTitle + "\n" + certs1000 + "\n" + certs10000 + "\n" + pods200,
		},
		{
			name: "a certificate run keeps the pod runs, after it",
			old:  reportTitle + "\n" + certs10000 + "\n" + pods200,
			key:  sectionKey{modeCertificates, 1000}, section: certs1000,
			want: reportTitle + "\n" + certs1000 + "\n" + certs10000 + "\n" + pods200,
		},
		{
			name: "a run replaces the section of its mode and N only",
			old:  reportTitle + "\n" + certs1000 + "\n## Pod certificates, N = 200\n\nan older pod run\n\n" + pods1000,
			key:  sectionKey{modePods, 200}, section: pods200,
			want: reportTitle + "\n" + certs1000 + "\n" + pods200 + "\n" + pods1000,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "benchmarks.md")
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := writeSection(path, tc.key, tc.section); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("writeSection wrote\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

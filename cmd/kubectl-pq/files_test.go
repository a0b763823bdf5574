package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteFilesAllOrNothing makes the second of two files fail and checks
// that the first is gone too, and a directory made for them as well.
func TestWriteFilesAllOrNothing(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) // dir is the --out-dir
		force bool
		// second is the name of the file that fails.
		second string
		// wantLeft is what must remain under the parent of dir.
		wantLeft []string
	}{
		{
			name:     "temporary file cannot be created, new directory",
			setup:    func(t *testing.T, dir string) {},
			second:   "no/such/dir",
			wantLeft: []string{". drwx------"},
		},
		{
			name: "temporary file cannot be created, existing directory",
			setup: func(t *testing.T, dir string) {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			second:   "no/such/dir",
			wantLeft: []string{". drwx------", "out drwxr-xr-x"},
		},
		{
			name: "rename onto a non-empty directory fails with --force",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "csr.pem", "x"), []byte("x"))
			},
			force:  true,
			second: "csr.pem",
			wantLeft: []string{". drwx------", "out drwx------", "out/csr.pem drwx------",
				"out/csr.pem/x -rw-------"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			if err := os.Chmod(parent, 0o700); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(parent, "out")
			tt.setup(t, dir)
			err := writeFiles(dir, tt.force,
				outFile{"tls.key", []byte("key"), 0o600},
				outFile{tt.second, []byte("second"), 0o644})
			if err == nil {
				t.Fatal("writeFiles succeeded, want an error")
			}
			if got := listFiles(t, parent); !slices.Equal(got, tt.wantLeft) {
				t.Errorf("left behind %v, want %v", got, tt.wantLeft)
			}
		})
	}
}

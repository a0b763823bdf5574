package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestWriteFilesAllOrNothing makes the second of two new files fail and checks
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
			name: "a directory in the way of the second file, with --force",
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

// TestWriteFilesForceKeepsOldFiles replaces existing files with --force and
// makes a later file fail, in the write phase and in the install phase: the
// files already replaced must get their old content and mode back, and no
// temporary or backup file may be left behind.
func TestWriteFilesForceKeepsOldFiles(t *testing.T) {
	old := map[string]struct {
		data string
		mode os.FileMode
	}{
		certFile: {"old certificate", 0o644},
		keyFile:  {"old key", 0o600},
	}
	tests := []struct {
		name string
		// third is the name of the last file; setup may make it fail.
		third    string
		setup    func(t *testing.T, dir string)
		wantLeft []string
	}{
		{
			name:     "third temporary file cannot be created",
			third:    "no/such/dir",
			setup:    func(t *testing.T, dir string) {},
			wantLeft: []string{". drwx------", "tls.crt -rw-r--r--", "tls.key -rw-------"},
		},
		{
			name:  "third is a directory, found after two files were replaced",
			third: csrFile,
			setup: func(t *testing.T, dir string) {
				if err := os.Mkdir(filepath.Join(dir, csrFile), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			wantLeft: []string{". drwx------", "csr.pem drwx------", "tls.crt -rw-r--r--", "tls.key -rw-------"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for name, f := range old {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(f.data), f.mode); err != nil {
					t.Fatal(err)
				}
			}
			tt.setup(t, dir)
			err := writeFiles(dir, true,
				outFile{certFile, []byte("new certificate"), 0o600},
				outFile{keyFile, []byte("new key"), 0o644},
				outFile{tt.third, []byte("third"), 0o644})
			if wantErr := "writing " + filepath.Join(dir, tt.third); err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("writeFiles: %v, want an error containing %q", err, wantErr)
			}
			for name, f := range old {
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil || string(got) != f.data {
					t.Errorf("%s is %q (%v) after the failure, want its old content %q", name, got, err, f.data)
				}
			}
			if got := listFiles(t, dir); !slices.Equal(got, tt.wantLeft) {
				t.Errorf("left %v, want %v", got, tt.wantLeft)
			}
		})
	}
}

// TestWriteFilesForceReplaces checks the successful --force path: new
// content and modes, and nothing else left in the directory.
func TestWriteFilesForceReplaces(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, keyFile), []byte("old key"))
	writeFile(t, filepath.Join(dir, certFile), []byte("old certificate"))
	if err := writeFiles(dir, true, outFile{keyFile, []byte("new key"), 0o600}, outFile{certFile, []byte("new certificate"), 0o644}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{keyFile: "new key", certFile: "new certificate"} {
		if got := string(readFile(t, filepath.Join(dir, name))); got != want {
			t.Errorf("%s is %q, want %q", name, got, want)
		}
	}
	want := []string{". drwx------", "tls.crt -rw-r--r--", "tls.key -rw-------"}
	if got := listFiles(t, dir); !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
}

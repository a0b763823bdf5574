package main

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// result is what one command line did.
type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs a command line in-process through run, as main does.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// runCLIWith runs a command line with the given standard input and clock.
func runCLIWith(t *testing.T, stdin io.Reader, now time.Time, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c := &cli{stdin: stdin, stdout: &stdout, stderr: &stderr, now: func() time.Time { return now }}
	code := c.run(args)
	return result{code, stdout.String(), stderr.String()}
}

// mustRun runs a command line that must succeed.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != 0 {
		t.Fatalf("kubectl-pq %s: exit %d, stderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// listFiles returns every path under dir with its mode, to prove that a
// failed command left nothing behind.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel+" "+info.Mode().String())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"help", []string{"help"}, 0, "ca intermediate", ""},
		{"--help", []string{"--help"}, 0, "Commands:", ""},
		{"no arguments", nil, 2, "", "Usage: kubectl pq COMMAND"},
		{"help for a command", []string{"help", "sign"}, 0, "-max-duration", ""},
		{"command --help", []string{"ca", "create", "--help"}, 0, "-subject", ""},
		{"command -h", []string{"inspect", "-h"}, 0, "kubectl get secret mesh-ca -o yaml", ""},
		{"version", []string{"version"}, 0, "kubectl-pq ", ""},
		{"unknown command", []string{"frobnicate"}, 2, "", `kubectl-pq: unknown command "frobnicate"`},
		{"group without subcommand", []string{"ca"}, 2, "", "kubectl-pq: ca: missing or unknown subcommand: use create, intermediate, secret"},
		{"unknown subcommand", []string{"ca", "delete"}, 2, "", "use create, intermediate, secret"},
		{"group --help", []string{"ca", "--help"}, 0, "ca secret", ""},
		{"help for a group", []string{"help", "ca"}, 0, "ca secret", ""},
		{"unknown flag", []string{"sign", "--frob"}, 2, "", "kubectl-pq: sign: flag provided but not defined: -frob (see 'kubectl pq sign --help')"},
		{"help for unknown command", []string{"help", "frobnicate"}, 2, "", "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, tt.args...)
			if r.code != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.wantStdout) {
				t.Errorf("stdout does not contain %q:\n%s", tt.wantStdout, r.stdout)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantStderr, r.stderr)
			}
			if tt.wantStderr == "" && r.stderr != "" {
				t.Errorf("unexpected stderr: %s", r.stderr)
			}
		})
	}
}

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

	"github.com/pq-issuer/pq-issuer/signer"
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
		{"no arguments", nil, 2, "", "Usage:\n  kubectl pq [command]"},
		{"help for a command", []string{"help", "sign"}, 0, "-max-duration", ""},
		{"command --help", []string{"ca", "create", "--help"}, 0, "-subject", ""},
		{"command -h", []string{"inspect", "-h"}, 0, "kubectl get secret mesh-ca -o yaml", ""},
		{"version", []string{"version"}, 0, "kubectl-pq ", ""},
		{"unknown command", []string{"frobnicate"}, 2, "", `kubectl-pq: unknown command "frobnicate"`},
		{"group without subcommand", []string{"ca"}, 2, "", "kubectl-pq: ca: missing subcommand: use create, intermediate, secret"},
		{"unknown subcommand", []string{"ca", "delete"}, 2, "", `kubectl-pq: ca: unknown subcommand "delete": use create, intermediate, secret`},
		{"group --help", []string{"ca", "--help"}, 0, "ca secret", ""},
		{"group usage names the subcommand form alone", []string{"ca", "--help"}, 0, "Usage:\n  kubectl pq ca [command]\n\n", ""},
		{"help for a group", []string{"help", "ca"}, 0, "ca secret", ""},
		{"unknown flag", []string{"sign", "--frob"}, 2, "", "kubectl-pq: sign: unknown flag: --frob (see 'kubectl pq sign --help')"},
		{"unknown shorthand flag", []string{"ca", "secret", "-x"}, 2, "", "kubectl-pq: ca secret: unknown shorthand flag: 'x' in -x (see 'kubectl pq ca secret --help')"},
		{"unknown flag after a valid one", []string{"csr", "--dns=api", "--frob=1"}, 2, "", "kubectl-pq: csr: unknown flag: --frob (see"},
		{"flag without its value", []string{"sign", "--ca-dir"}, 2, "", "kubectl-pq: sign: flag needs an argument: --ca-dir"},
		{"bad flag value", []string{"sign", "--duration", "soon"}, 2, "", `kubectl-pq: sign: invalid argument "soon" for "--duration" flag`},
		{"unexpected argument", []string{"version", "now"}, 2, "", `kubectl-pq: version: unexpected argument "now"`},
		{"misspelt command", []string{"sgin"}, 2, "", `kubectl-pq: unknown command "sgin" (did you mean sign?)`},
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
			if tt.wantCode == 2 && tt.args != nil && (!strings.HasPrefix(r.stderr, "kubectl-pq: ") || strings.Count(r.stderr, "\n") != 1) {
				t.Errorf("stderr must be one line starting with 'kubectl-pq: ', got %q", r.stderr)
			}
		})
	}
}

// TestCompletion checks cobra's completion scripts, which name the binary
// kubectl-pq, and what they ask the binary for (kubectl pq __complete ...,
// also how kubectl_complete-pq completes `kubectl pq`).
func TestCompletion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"bash script", []string{"completion", "bash"}, []string{"# bash completion V2 for kubectl-pq", "complete -o default -F __start_kubectl-pq kubectl-pq"}},
		{"zsh script", []string{"completion", "zsh"}, []string{"#compdef kubectl-pq"}},
		{"fish script", []string{"completion", "fish"}, []string{"complete -c kubectl-pq"}},
		{"powershell script", []string{"completion", "powershell"}, []string{"Register-ArgumentCompleter -CommandName 'kubectl-pq'"}},
		{"commands", []string{"__complete", ""}, []string{"ca\t", "csr\t", "sign\t", "inspect\t", "completion\t", "version\t"}},
		{"subcommands", []string{"__complete", "ca", ""}, []string{"create\t", "intermediate\t", "secret\t"}},
		{"flags", []string{"__complete", "sign", "--"}, []string{"--ca-dir\t", "--csr\t", "--max-duration\t", "--issuer\t"}},
		{"key algorithms", []string{"__complete", "csr", "--algorithm", ""}, []string{"ML-DSA-65\n", "ECDSA-P256\n", "RSA-4096\n"}},
		{"CA algorithms", []string{"__complete", "ca", "create", "--algorithm", "ML"}, []string{"ML-DSA-44\n", "ML-DSA-87\n"}},
		{"output formats", []string{"__complete", "ca", "secret", "-o", ""}, []string{"yaml\n", "json\n"}},
		{"help topics", []string{"__complete", "help", "c"}, []string{"ca\t", "completion\t", "csr\t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	// Classical algorithms are for leaf keys, not CAs.
	if out := mustRun(t, "__complete", "ca", "create", "--algorithm", "").stdout; strings.Contains(out, "ECDSA") {
		t.Errorf("ca create completes a classical algorithm:\n%s", out)
	}
}

// TestFlagForms checks that the POSIX forms of a flag mean the same:
// --flag value, --flag=value, and -o json, -ojson, -o=json, --output json.
func TestFlagForms(t *testing.T) {
	caDir := filepath.Join(t.TempDir(), "ca")
	mustRun(t, "ca", "create", "--subject=CN=Forms Root", "--out-dir="+caDir, "--duration=48h", "--algorithm=ML-DSA-44")
	ca, err := signer.LoadCA(readFile(t, filepath.Join(caDir, "tls.crt")), readFile(t, filepath.Join(caDir, "tls.key")), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cert := ca.Certificate; cert.Subject.CommonName != "Forms Root" || cert.NotAfter.Sub(cert.NotBefore).Round(time.Hour) != 48*time.Hour || ca.Algorithm() != signer.MLDSA44 {
		t.Errorf("--flag=value: the CA is %s, %s, valid %s; want CN=Forms Root, ML-DSA-44, 48h", cert.Subject, ca.Algorithm(), cert.NotAfter.Sub(cert.NotBefore))
	}
	want := mustRun(t, "ca", "secret", "--ca-dir", caDir, "--name", "mesh-ca", "-o", "json").stdout
	for _, args := range [][]string{
		{"--ca-dir=" + caDir, "--name=mesh-ca", "--output=json"},
		{"--ca-dir", caDir, "--name", "mesh-ca", "--output", "json"},
		{"-ojson", "--name", "mesh-ca", "--ca-dir", caDir},
		{"--name", "mesh-ca", "-o=json", "--ca-dir=" + caDir},
	} {
		if got := mustRun(t, append([]string{"ca", "secret"}, args...)...).stdout; got != want {
			t.Errorf("ca secret %s printed\n%s\nwant\n%s", strings.Join(args, " "), got, want)
		}
	}
}

// Command kubectl-pq is pq-issuer's command-line companion: it creates ML-DSA
// CAs, makes ML-DSA (and classical) keys and CSRs that cert-manager cannot
// generate, signs CSRs offline and prints certificates, CSRs, keys and
// Secrets that OpenSSL 3.0 cannot read. Installed on the PATH as kubectl-pq,
// it runs as `kubectl pq`.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// cli is what a command may touch; tests build one to control stdin and the
// clock.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
}

// command is one subcommand; name has one or two words ("ca create").
type command struct {
	name    string
	summary string
	run     func(c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"ca create", "Create a self-signed ML-DSA root CA", (*cli).caCreate},
		{"ca intermediate", "Create an ML-DSA intermediate CA signed by an (offline) CA", (*cli).caIntermediate},
		{"ca secret", "Print a kubernetes.io/tls Secret manifest for a CA directory", (*cli).caSecret},
		{"csr", "Generate a private key (ML-DSA or classical) and a CSR", (*cli).csr},
		{"sign", "Sign a CSR offline with a CA directory", (*cli).sign},
		{"inspect", "Print certificates, CSRs, keys and Secrets, including ML-DSA ones", (*cli).inspect},
		{"version", "Print the version", (*cli).version},
	}
}

// Exit codes: input the command could not use, and a command line it could
// not understand.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// run executes one command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdin: os.Stdin, stdout: stdout, stderr: stderr, now: time.Now}
	return c.run(args)
}

func (c *cli) run(args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return exitUsage
	}
	if isHelp(args[0]) {
		if len(args) > 1 && args[0] == "help" {
			// "help ca create" is "ca create --help".
			return c.run(append(slices.Clone(args[1:]), "--help"))
		}
		c.usage(c.stdout)
		return exitOK
	}
	cmd, rest, ok := lookup(args)
	if !ok {
		subs := subcommands(args[0])
		if len(subs) > 0 && len(args) > 1 && isHelp(args[1]) {
			c.usage(c.stdout)
			return exitOK
		}
		if len(subs) > 0 {
			fmt.Fprintf(c.stderr, "kubectl-pq: %s: missing or unknown subcommand: use %s (run 'kubectl pq help')\n", args[0], strings.Join(subs, ", "))
		} else {
			fmt.Fprintf(c.stderr, "kubectl-pq: unknown command %q (run 'kubectl pq help' for the list)\n", args[0])
		}
		return exitUsage
	}
	err := cmd.run(c, rest)
	var uerr usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return exitOK
	case errors.As(err, &uerr):
		fmt.Fprintf(c.stderr, "kubectl-pq: %s: %v (see 'kubectl pq %s --help')\n", cmd.name, err, cmd.name)
		return exitUsage
	default:
		fmt.Fprintf(c.stderr, "kubectl-pq: %s: %v\n", cmd.name, err)
		return exitError
	}
}

func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "-help" || arg == "--help"
}

// lookup finds the command named by the first one or two words of args.
func lookup(args []string) (command, []string, bool) {
	for _, cmd := range commands() {
		words := strings.Fields(cmd.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmd.name {
			return cmd, args[len(words):], true
		}
	}
	return command{}, nil, false
}

// subcommands lists the second words of the commands in group ("ca").
func subcommands(group string) []string {
	var subs []string
	for _, cmd := range commands() {
		if g, sub, ok := strings.Cut(cmd.name, " "); ok && g == group {
			subs = append(subs, sub)
		}
	}
	return subs
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `kubectl-pq: post-quantum (ML-DSA, FIPS 204 / RFC 9881) CAs and certificates for pq-issuer.

Usage: kubectl pq COMMAND [flags]   (or kubectl-pq COMMAND [flags])

Commands:
`)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-16s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `  help [COMMAND]   Show this help or a command's flags

Run 'kubectl pq COMMAND --help' for a command's flags.

Example: an offline root, an intermediate for the cluster, an ML-DSA workload key
  kubectl pq ca create --subject "CN=Mesh Root,O=Example" --out-dir root
  kubectl pq ca intermediate --ca-dir root --subject "CN=Mesh Issuing CA,O=Example" --out-dir issuing
  kubectl pq ca secret --ca-dir issuing --name mesh-ca --namespace cert-manager | kubectl apply -f -
  kubectl pq csr --common-name api --dns api.demo.svc --out-dir api
  kubectl pq sign --ca-dir issuing --csr api/csr.pem > api/tls.crt
  kubectl pq inspect api/tls.crt
`)
}

func (c *cli) version(args []string) error {
	fs := newFlagSet("version", "Usage: kubectl pq version\n\nPrints the kubectl-pq version and the Go toolchain it was built with.\n")
	if err := c.parse(fs, args, false); err != nil {
		return err
	}
	v := "(unknown)"
	if info, ok := debug.ReadBuildInfo(); ok {
		v = info.Main.Version
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				v += " " + s.Value
			}
		}
	}
	fmt.Fprintf(c.stdout, "kubectl-pq %s (%s, %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

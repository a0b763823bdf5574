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
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pq-issuer/pq-issuer/internal/buildinfo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// cli is what a command may touch; tests build one to control stdin, the
// clock and the cluster.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            func() time.Time
	csrClient      csrClientFunc
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
	c := &cli{stdin: os.Stdin, stdout: stdout, stderr: stderr, now: time.Now, csrClient: newCSRClient}
	return c.run(args)
}

// run executes args and reports a failure as one line on stderr,
// "kubectl-pq: COMMAND: message".
func (c *cli) run(args []string) int {
	root := c.rootCommand()
	// Never nil: cobra reads os.Args for nil.
	root.SetArgs(append([]string{}, args...))
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errUsageShown) {
		return exitUsage
	}
	prefix := "kubectl-pq: "
	if cmd.HasParent() {
		prefix += strings.TrimPrefix(cmd.CommandPath(), root.CommandPath()+" ") + ": "
	}
	var uerr usageError
	if errors.As(err, &uerr) {
		fmt.Fprintf(c.stderr, "%s%v (see '%s --help')\n", prefix, err, cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintf(c.stderr, "%s%v\n", prefix, err)
	return exitError
}

// rootCommand builds the command tree, afresh for each command line: each
// command's flags live in its RunE's closure.
func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-pq",
		Short: "Post-quantum (ML-DSA) CAs and certificates for pq-issuer",
		Long: `kubectl-pq: post-quantum (ML-DSA, FIPS 204 / RFC 9881) CAs and certificates for pq-issuer.

Installed on the PATH as kubectl-pq, it runs as 'kubectl pq'.`,
		Example: `  # An offline root, an intermediate for the cluster, an ML-DSA workload key
  kubectl pq ca create --subject "CN=Mesh Root,O=Example" --out-dir root
  kubectl pq ca intermediate --ca-dir root --subject "CN=Mesh Issuing CA,O=Example" --out-dir issuing
  kubectl pq ca secret --ca-dir issuing --name mesh-ca --namespace cert-manager | kubectl apply -f -
  kubectl pq csr --common-name api --dns api.demo.svc --out-dir api
  kubectl pq sign --ca-dir issuing --csr api/csr.pem > api/tls.crt
  kubectl pq inspect api/tls.crt`,
		Annotations:                map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl pq"},
		Args:                       cobra.ArbitraryArgs,
		RunE:                       c.runGroup,
		SuggestionsMinimumDistance: 2,
		SilenceErrors:              true,
		SilenceUsage:               true,
	}
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	// Groups are runnable only to refuse a missing or unknown subcommand, so
	// their usage shows the subcommand form alone. A group's Use is its bare
	// name; csr, which also runs on its own, spells out its form.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (or (not .HasAvailableSubCommands) (ne .Use .Name))}}", 1))
	root.SetHelpCommand(helpCommand())
	root.AddCommand(c.caCommand(), c.csrCommand(), c.signCommand(), c.inspectCommand(), c.versionCommand())
	return root
}

// runGroup is the RunE of a command that only groups others: cobra would
// print the help and exit 0 for a missing or unknown subcommand. kubectl pq
// alone prints its usage.
func (c *cli) runGroup(cmd *cobra.Command, args []string) error {
	word := "subcommand"
	if !cmd.HasParent() {
		if len(args) == 0 {
			fmt.Fprint(c.stderr, cmd.UsageString())
			return errUsageShown
		}
		word = "command"
	}
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	if len(args) == 0 {
		return usagef("missing %s: use %s", word, strings.Join(names, ", "))
	}
	hint := ""
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		hint = fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return usagef("unknown %s %q%s: use %s", word, args[0], hint, strings.Join(names, ", "))
}

// helpCommand replaces cobra's, which prints the root's help and exits 0
// for an unknown command.
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "Help about any command",
		Args:  cobra.ArbitraryArgs,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			target, _, err := cmd.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range target.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usagef("unknown command %q", strings.Join(args, " "))
			}
			target.InitDefaultHelpFlag()
			return target.Help()
		},
	}
}

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Long:  "Prints the kubectl-pq version and the Go toolchain it was built with.",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(c.stdout, "kubectl-pq %s (%s, %s/%s)\n", buildinfo.Version(version), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return err
		},
	}
}

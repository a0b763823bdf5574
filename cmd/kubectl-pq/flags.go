package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// usageError is a command line the command cannot understand: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// errUsageShown ends a command line whose usage was printed on stderr in
// place of a message: exit code 2.
var errUsageShown = errors.New("usage shown")

// noArgs refuses positional arguments as a usage error (cobra.NoArgs would
// exit 1 and call the argument an unknown command), suggesting a
// subcommand the argument may be a misspelling of.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		hint := ""
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
		}
		return usagef("unexpected argument %q%s", args[0], hint)
	}
	return nil
}

// required reports the first of the named string flags that is empty.
func required(fs *pflag.FlagSet, names ...string) error {
	for _, n := range names {
		if strings.TrimSpace(fs.Lookup(n).Value.String()) == "" {
			return usagef("--%s is required", n)
		}
	}
	return nil
}

// completeValues makes shell completion offer values for a flag.
func completeValues(cmd *cobra.Command, flag string, values ...string) {
	if err := cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)); err != nil {
		panic(err) // a flag the command lacks: a bug the tests show
	}
}

// listFlag is a repeatable flag that also splits comma-separated values, so
// --dns a --dns b and --dns a,b mean the same.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Type() string { return "strings" }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			return errors.New("empty value")
		}
		*l = append(*l, s)
	}
	return nil
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// usageError is a command line the command cannot understand: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// errHelpShown ends a command that printed its --help.
var errHelpShown = errors.New("help shown")

// newFlagSet makes a flag set whose --help prints header then the flags.
func newFlagSet(name, header string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), header)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(fs.Output(), "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args into fs. --help prints usage on stdout and returns
// errHelpShown; a parse error becomes a one-line usageError (the flag
// package would print the whole usage to stderr). Positional arguments are
// refused unless the command takes them.
func (c *cli) parse(fs *flag.FlagSet, args []string, positional bool) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(c.stdout)
		fs.Usage()
		return errHelpShown
	}
	if err != nil {
		return usageError{err.Error()}
	}
	if !positional && fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// required reports the first of the named string flags that is empty.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if strings.TrimSpace(fs.Lookup(n).Value.String()) == "" {
			return usagef("--%s is required", n)
		}
	}
	return nil
}

// listFlag is a repeatable flag that also splits comma-separated values, so
// --dns a --dns b and --dns a,b mean the same.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			return errors.New("empty value")
		}
		*l = append(*l, s)
	}
	return nil
}

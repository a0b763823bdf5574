// Package jsonlog sets up logging for the commands that the local control plane runs as separate
// processes. They log JSON lines to stderr through log/slog's JSON handler behind logr, which the
// local control plane reads back into its own logger. klog, which the Kubernetes packages log
// through, writes to the same logger.
package jsonlog

import (
	"flag"
	"log/slog"
	"os"
	"strconv"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// New returns a logger that writes JSON lines to stderr, with logr's V(n) shown up to verbosity,
// and routes klog's output to it.
func New(verbosity int) (logr.Logger, error) {
	log := logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.Level(-verbosity)}))
	// klog.V checks klog's own -v before it passes a message on, so that flag needs the
	// verbosity too.
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	if err := klogFlags.Set("v", strconv.Itoa(verbosity)); err != nil {
		return logr.Logger{}, err
	}
	klog.SetLogger(log)
	return log, nil
}

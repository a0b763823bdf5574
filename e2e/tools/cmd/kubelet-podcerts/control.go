package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/kubernetes/pkg/kubelet/podcertificate"
	testingclock "k8s.io/utils/clock/testing"
)

// control is the endpoint tests drive the node with: /healthz and /step (see the package
// documentation).
type control struct {
	log    logr.Logger
	clock  *testingclock.FakeClock
	pods   *podManager
	certs  podcertificate.Manager
	synced atomic.Bool
}

// serve listens on address, writes the bound host:port to addressFile (unless empty) and serves
// until ctx ends. Errors from serving arrive on the returned channel.
func (c *control) serve(ctx context.Context, address, addressFile string) (<-chan error, error) {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("listening on --control-address=%s: %w", address, err)
	}
	bound := listener.Addr().String()
	if addressFile != "" {
		if err := writeFileAtomically(addressFile, []byte(bound+"\n")); err != nil {
			_ = listener.Close()
			return nil, fmt.Errorf("writing the control address to --control-address-file=%s: %w", addressFile, err)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", c.healthz)
	mux.HandleFunc("POST /step", c.step)
	server := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errs := make(chan error, 1)
	go func() {
		if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdownCtx)
	}()
	c.log.Info("Control endpoint listening", "address", bound)
	return errs, nil
}

func (c *control) healthz(w http.ResponseWriter, _ *http.Request) {
	if !c.synced.Load() {
		http.Error(w, "informers not synced yet", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (c *control) step(w http.ResponseWriter, r *http.Request) {
	by, err := time.ParseDuration(r.URL.Query().Get("by"))
	if err != nil || by <= 0 {
		http.Error(w, fmt.Sprintf("by=%q: want a positive Go duration such as 90m or 24h", r.URL.Query().Get("by")), http.StatusBadRequest)
		return
	}
	c.clock.Step(by)
	// The manager's refresh pass runs on a real-time timer about once a minute and ignores this
	// clock, so every pod's projections are queued now, as a kubelet pod sync would.
	for _, pod := range c.pods.GetPods() {
		c.certs.TrackPod(r.Context(), pod)
	}
	now := c.clock.Now()
	c.log.Info("Clock stepped", "by", by.String(), "now", now)
	fmt.Fprintln(w, now.Format(time.RFC3339Nano))
}

// writeFileAtomically writes data to a temporary file beside name and renames it, so a reader
// never sees a partial file.
func writeFileAtomically(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
	}
	return err
}

package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// processStopTimeout bounds how long a process may take to stop after SIGTERM.
const processStopTimeout = 30 * time.Second

// process is a command from BinDir that runs beside kube-apiserver until Stop or Cluster.Stop:
// a node (kubelet-podcerts) or the reference signer. Its JSON log goes to the cluster's logger.
type process struct {
	name     string
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has exited; exitErr is set then
	exitErr  error
	stopping chan struct{} // closed when stop starts, so the exit is not reported as a crash
	stopOnce sync.Once
	stopErr  error
}

// startProcess starts bin with args. A process that exits before it is stopped is reported by
// Cluster.Stop. Cluster.Stop stops it before kube-apiserver.
func (c *Cluster) startProcess(name string, log logr.Logger, bin string, args ...string) (*process, error) {
	if info, err := os.Stat(bin); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("%s not found: run `make kubelet-podcerts` in the repository root to build it", bin)
	}
	cmd := exec.Command(bin, args...)
	// A process group of its own, like envtest's etcd and kube-apiserver: Ctrl-C reaches only the
	// test binary, which stops the process before the API server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &processLog{log: log}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &process{name: name, cmd: cmd, exited: make(chan struct{}), stopping: make(chan struct{})}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	c.goRun(c.runCtx, name, func(ctx context.Context) error {
		select {
		case <-p.exited:
			select {
			case <-p.stopping:
				return nil // Stop reports its own outcome
			default:
				return fmt.Errorf("%s exited before Stop (%v); its log is above", name, p.exitErr)
			}
		case <-p.stopping:
			<-p.exited
			return nil
		case <-ctx.Done():
			return p.stop()
		}
	})
	return p, nil
}

// stop sends SIGTERM and waits for the process to exit. After processStopTimeout it kills the
// process. It is safe to call more than once.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		close(p.stopping)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.exitErr != nil {
				p.stopErr = fmt.Errorf("%s: %w; its log is above", p.name, p.exitErr)
			}
		case <-time.After(processStopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.stopErr = fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.name, processStopTimeout)
		}
	})
	return p.stopErr
}

// waitUntil polls ready every 100ms until it returns true, the process exits, or timeout passes.
// A ready error is transient until the timeout, and is reported with it.
func (p *process) waitUntil(ctx context.Context, what string, timeout time.Duration, ready func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := ready(ctx)
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before %s (%v); its log is above", p.name, what, p.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("%s: %s did not happen within %s (last error: %v): %w", p.name, what, timeout, lastErr, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

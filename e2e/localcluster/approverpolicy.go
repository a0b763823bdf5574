package localcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Approver is the controller that approves or denies CertificateRequests.
type Approver string

const (
	// ApproverCertManager is cert-manager's certificaterequests-approver, which approves every
	// request: what a cert-manager installed with its defaults runs.
	ApproverCertManager Approver = "cert-manager"
	// ApproverPolicy is cert-manager's approver-policy: requests are approved or denied by
	// CertificateRequestPolicies, and cert-manager runs without its approver
	// (--controllers=-certificaterequests-approver, its chart's disableAutoApproval=true).
	ApproverPolicy Approver = "approver-policy"
	// ApproverNone runs no approver: requests wait until something else approves or denies them.
	ApproverNone Approver = "none"
)

// Approvers are the valid values of Options.Approver.
func Approvers() []Approver { return []Approver{ApproverCertManager, ApproverPolicy, ApproverNone} }

// ParseApprover returns the Approver named s.
func ParseApprover(s string) (Approver, error) {
	for _, a := range Approvers() {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown approver %q: use one of %v", s, Approvers())
}

const (
	// approverPolicyModule holds approver-policy's CRD and code, pinned by the tool directive of
	// e2e/go.mod; approverPolicyPackage is its main package, the binary of its image.
	approverPolicyModule  = "github.com/cert-manager/approver-policy"
	approverPolicyPackage = approverPolicyModule + "/cmd"
	// approverPolicyLease is the leader election Lease approver-policy's manager takes.
	approverPolicyLease = "policy.cert-manager.io"
	// requesterIdentityPolicy is the MutatingAdmissionPolicy that stands in for cert-manager's webhook.
	requesterIdentityPolicy    = "localcluster-certificaterequest-requester"
	approverPolicyStartTimeout = 2 * time.Minute
	approverPolicyStopTimeout  = 30 * time.Second
)

// downloadApproverPolicy puts approver-policy's module into the module cache, where its CRD is
// looked for: no package of the e2e module imports it, so `go test` does not download it.
func downloadApproverPolicy(ctx context.Context) error {
	if out, err := exec.CommandContext(ctx, "go", "mod", "download", approverPolicyModule).CombinedOutput(); err != nil {
		return fmt.Errorf("downloading %s with `go mod download` (run it inside the e2e module): %w\n%s", approverPolicyModule, err, out)
	}
	return nil
}

// startApproverPolicy runs approver-policy as its own process, built from its Go module, with
// the administrator's kubeconfig, and returns once it leads (its Lease is taken).
//
// Not in this process: approver-policy's manager and controllers live under its module's
// internal/, and its only public entry point (pkg/cmd.ExecutePolicyApprover) reads os.Args,
// installs process-wide signal handlers and loggers and calls os.Exit. Its webhook server cannot
// be turned off; it listens on a free loopback port, but no ValidatingWebhookConfiguration points
// at it, because the API server would look it up by its Service name.
func (c *Cluster) startApproverPolicy(ctx, runCtx context.Context, kubeconfig string) error {
	log := c.opts.Log.WithName("approver-policy")
	if err := c.installRequesterIdentity(ctx); err != nil {
		return err
	}

	bin := filepath.Join(c.dir, "approver-policy")
	started := time.Now()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, approverPolicyPackage)
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building approver-policy with `go build %s` (run it inside the e2e module): %w\n%s", approverPolicyPackage, err, out)
	}
	log.V(1).Info("Built approver-policy", "binary", bin, "duration", time.Since(started).Round(time.Millisecond))

	webhookPort, err := freePort()
	if err != nil {
		return fmt.Errorf("finding a port for approver-policy's webhook server: %w", err)
	}
	ns := c.opts.ClusterResourceNamespace
	cmd := exec.Command(bin,
		"--kubeconfig="+kubeconfig,
		"--leader-election-namespace="+ns,
		"--webhook-ca-secret-namespace="+ns,
		"--webhook-host=127.0.0.1",
		"--webhook-port="+strconv.Itoa(webhookPort),
		"--metrics-bind-address=0",
		"--readiness-probe-bind-address=0",
		"--log-format=json",
	)
	// A process group of its own, like envtest's etcd and kube-apiserver: Ctrl-C reaches only the
	// command, and Stop ends approver-policy before the API server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &processLog{log: log}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	c.goRun(runCtx, "approver-policy", func(ctx context.Context) error {
		select {
		case <-exited:
			return fmt.Errorf("approver-policy exited before Stop (%v); its log is above", exitErr)
		case <-ctx.Done():
		}
		// approver-policy cancels its manager on SIGTERM and releases its Lease.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(approverPolicyStopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("approver-policy did not stop within %s of SIGTERM and was killed", approverPolicyStopTimeout)
		}
		return exitErr
	})

	waitCtx, cancel := context.WithTimeout(ctx, approverPolicyStartTimeout)
	defer cancel()
	lease := &coordinationv1.Lease{}
	key := client.ObjectKey{Namespace: ns, Name: approverPolicyLease}
	for {
		if err := c.client.Get(waitCtx, key, lease); err == nil && ptr.Deref(lease.Spec.HolderIdentity, "") != "" {
			log.V(1).Info("approver-policy leads", "lease", key, "holder", *lease.Spec.HolderIdentity)
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("approver-policy exited at start (%v); its log is above", exitErr)
		case <-waitCtx.Done():
			return fmt.Errorf("approver-policy did not take its Lease %s within %s; its log is above: %w", key, approverPolicyStartTimeout, context.Cause(waitCtx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// installRequesterIdentity does what cert-manager's webhook does for approver-policy, which
// decides by who asked: a CertificateRequest is created with spec.username, uid and groups of the
// user who created it, whatever the request said (spec.extra is left as it is). A
// MutatingAdmissionPolicy stands in for the webhook, which this control plane does not run. It
// returns once the API server applies it.
func (c *Cluster) installRequesterIdentity(ctx context.Context) error {
	policy := &admissionv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: requesterIdentityPolicy},
		Spec: admissionv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{
				ResourceRules: []admissionv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionv1.RuleWithOperations{
						Operations: []admissionv1.OperationType{admissionv1.Create},
						Rule: admissionv1.Rule{
							APIGroups:   []string{cmapi.SchemeGroupVersion.Group},
							APIVersions: []string{cmapi.SchemeGroupVersion.Version},
							Resources:   []string{"certificaterequests"},
						},
					},
				}},
			},
			// A JSON patch, because an apply configuration may not replace spec.groups, an
			// atomic list; map() makes the groups a CEL list the patch can marshal.
			Mutations: []admissionv1.Mutation{{
				PatchType: admissionv1.PatchTypeJSONPatch,
				JSONPatch: &admissionv1.JSONPatch{Expression: `[
	JSONPatch{op: "add", path: "/spec/username", value: request.userInfo.username},
	JSONPatch{op: "add", path: "/spec/uid", value: request.userInfo.?uid.orValue("")},
	JSONPatch{op: "add", path: "/spec/groups", value: request.userInfo.?groups.orValue([]).map(g, g)}
]`},
			}},
			FailurePolicy:      ptr.To(admissionv1.Fail),
			ReinvocationPolicy: admissionv1.NeverReinvocationPolicy,
		},
	}
	binding := &admissionv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: requesterIdentityPolicy},
		Spec:       admissionv1.MutatingAdmissionPolicyBindingSpec{PolicyName: requesterIdentityPolicy},
	}
	for _, obj := range []client.Object{policy, binding} {
		if err := c.client.Create(ctx, obj); err != nil {
			return fmt.Errorf("creating %T %s, which gives CertificateRequests their requester as cert-manager's webhook does: %w", obj, obj.GetName(), err)
		}
	}

	// The API server loads admission policies, and the CRD types they match, asynchronously:
	// probe with dry-run requests until one comes back with a username.
	probe := func() (string, error) {
		cr := &cmapi.CertificateRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: c.opts.ClusterResourceNamespace, Name: "requester-identity-probe"},
			Spec: cmapi.CertificateRequestSpec{
				Request:   []byte("probe"),
				IssuerRef: cmmeta.IssuerReference{Name: "probe"},
			},
		}
		if err := c.client.Create(ctx, cr, client.DryRunAll); err != nil {
			return "", err
		}
		return cr.Spec.Username, nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, approverPolicyStartTimeout)
	defer cancel()
	for {
		username, err := probe()
		if err == nil && username != "" {
			return nil
		}
		select {
		case <-waitCtx.Done():
			return fmt.Errorf("MutatingAdmissionPolicy %s did not set spec.username of a CertificateRequest within %s (last error: %v): %w",
				requesterIdentityPolicy, approverPolicyStartTimeout, err, context.Cause(waitCtx))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// freePort returns a TCP port on the loopback interface that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// processLog passes a process's slog JSON log (approver-policy's --log-format=json) on to log, a
// line at a time, with its logger name, message and key/value pairs. A line that is not JSON is
// passed on as it is.
type processLog struct {
	log     logr.Logger
	partial []byte
}

func (w *processLog) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		line, rest, found := bytes.Cut(w.partial, []byte("\n"))
		if !found {
			break
		}
		w.line(bytes.TrimSpace(line))
		w.partial = rest
	}
	return len(p), nil
}

func (w *processLog) line(line []byte) {
	if len(line) == 0 {
		return
	}
	var entry map[string]any
	if err := json.Unmarshal(line, &entry); err != nil {
		w.log.Info(string(line))
		return
	}
	log := w.log
	if name, ok := entry["logger"].(string); ok {
		log = log.WithName(name)
	}
	msg, _ := entry["msg"].(string)
	level, _ := entry["level"].(string)
	errText, _ := entry["err"].(string)
	var kvs []any
	for _, k := range slices.Sorted(maps.Keys(entry)) {
		switch k {
		case "time", "level", "msg", "logger", "err": // this logger adds its own time
		default:
			kvs = append(kvs, k, entry[k])
		}
	}
	switch {
	case level == "ERROR":
		log.Error(errors.New(errText), msg, kvs...)
	case strings.HasPrefix(level, "DEBUG"): // logr's V(n) is slog's level -n, DEBUG+(4-n)
		log.V(1).Info(msg, kvs...)
	default:
		if errText != "" {
			kvs = append(kvs, "err", errText)
		}
		log.Info(msg, kvs...)
	}
}

package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	// nodeBinary is built by `make kubelet-podcerts` from e2e/tools/cmd/kubelet-podcerts.
	nodeBinary       = "kubelet-podcerts"
	nodeStartTimeout = time.Minute
)

// Node is a node of the local control plane. It has no kubelet and runs no containers, but it
// runs the kubelet's pod certificate code (bin/kubelet-podcerts): for every pod bound to it
// (spec.nodeName), the kubelet's PodCertificateRequest manager requests and refreshes the
// podCertificate sources of its projected volumes. The kubelet's ClusterTrustBundle manager
// reads their clusterTrustBundle sources. The volumes are written with the kubelet's AtomicWriter
// under the node's directory, laid out as under the kubelet's root directory (VolumeDir).
//
// The node acts as the user system:node:<name> in group system:nodes, so the Node authorizer and
// NodeRestriction apply to it as to a real kubelet. Its PodCertificateRequest manager has a clock
// of its own. The clock starts at the real time when the node starts, then stands still, and
// StepClock moves it forward.
type Node struct {
	name    string
	dir     string
	cfg     *rest.Config
	control *url.URL
	proc    *process
}

// StartNode starts a node named name (also the name of its Node, which it registers) and returns
// once it serves pods. Node.Stop or Cluster.Stop stops it. Its log goes to the cluster's logger.
func (c *Cluster) StartNode(ctx context.Context, name string) (*Node, error) {
	user, err := c.env.AddUser(envtest.User{Name: "system:node:" + name, Groups: []string{"system:nodes"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding the user system:node:%s: %w", name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("writing a kubeconfig for system:node:%s: %w", name, err)
	}
	// Mkdir, not MkdirAll: a second node of the same name would share the first one's files.
	nodesDir := filepath.Join(c.dir, "nodes")
	if err := os.MkdirAll(nodesDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory for nodes: %w", err)
	}
	dir := filepath.Join(nodesDir, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of node %s (is a node of that name already running?): %w", name, err)
	}
	kubeconfigPath, addressFile := filepath.Join(dir, "kubeconfig"), filepath.Join(dir, "control-address")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		return nil, fmt.Errorf("writing the kubeconfig of node %s: %w", name, err)
	}
	n := &Node{name: name, dir: filepath.Join(dir, "root"), cfg: user.Config()}

	n.proc, err = c.startProcess("node "+name, c.opts.Log.WithName("node").WithValues("node", name),
		filepath.Join(c.opts.BinDir, nodeBinary),
		"--kubeconfig="+kubeconfigPath,
		"--node-name="+name,
		"--dir="+n.dir,
		"--control-address=127.0.0.1:0",
		"--control-address-file="+addressFile,
	)
	if err != nil {
		return nil, err
	}
	err = n.proc.waitUntil(ctx, "serving pods", nodeStartTimeout, func(ctx context.Context) (bool, error) {
		if n.control == nil {
			address, err := os.ReadFile(addressFile)
			if err != nil {
				return false, err
			}
			n.control = &url.URL{Scheme: "http", Host: strings.TrimSpace(string(address))}
		}
		_, err := n.call(ctx, http.MethodGet, "/healthz", nil)
		return err == nil, err
	})
	if err != nil {
		return nil, errors.Join(err, n.Stop())
	}
	c.opts.Log.WithName("localcluster").V(1).Info("Node started", "node", name, "dir", n.dir, "control", n.control.Host)
	return n, nil
}

// Name is the node's name: its Node, and the spec.nodeName of the pods it serves.
func (n *Node) Name() string { return n.name }

// Config returns a REST config that authenticates as the node: system:node:<name> in group
// system:nodes.
func (n *Node) Config() *rest.Config { return rest.CopyConfig(n.cfg) }

// Dir is the node's root directory, which the kubelet calls --root-dir. The node writes volumes
// under pods/ in it, and Cluster.Stop removes it.
func (n *Node) Dir() string { return n.dir }

// VolumeDir is the directory where the node writes the projected volume named volume of pod. The
// layout is the kubelet's:
// <root>/pods/<pod UID>/volumes/kubernetes.io~projected/<volume>. The files in it are
// symbolic links into ..data, which the node swaps atomically when their content changes.
func (n *Node) VolumeDir(pod *corev1.Pod, volume string) string {
	return filepath.Join(n.dir, "pods", string(pod.UID), "volumes", "kubernetes.io~projected", volume)
}

// StepClock moves the clock of the node's PodCertificateRequest manager forward by d, then has it
// look at every pod at once. The manager starts a refresh once its clock is past a certificate's
// beginRefreshAt plus a random jitter of up to 5 minutes. The clock stood still since the node
// started, so d counts from then, not from now. Signers keep the real time. A certificate issued
// after the step may therefore be due for refresh at once on the node. The manager then renews it
// again whenever it next looks at the pod: on the pod's next event, or on its refresh pass, which
// runs every 1 to 2 minutes.
func (n *Node) StepClock(ctx context.Context, d time.Duration) error {
	now, err := n.call(ctx, http.MethodPost, "/step", url.Values{"by": {d.String()}})
	if err != nil {
		return fmt.Errorf("stepping the clock of node %s by %s: %w", n.name, d, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, now); err != nil {
		return fmt.Errorf("stepping the clock of node %s by %s: the node answered %q, not a time: %w", n.name, d, now, err)
	}
	return nil
}

// Stop stops the node. Its Node object and volume files stay until Cluster.Stop. It is safe to
// call more than once.
func (n *Node) Stop() error { return n.proc.stop() }

// call sends a request to the node's control endpoint and returns the body of a 200 answer.
func (n *Node) call(ctx context.Context, method, path string, query url.Values) (string, error) {
	u := *n.control
	u.Path, u.RawQuery = path, query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return strings.TrimSpace(string(body)), nil
}

// The volume of PodWithIdentity, and the files in it.
const (
	IdentityVolume   = "identity"
	CredentialBundle = "credentialbundle.pem"
	TrustBundle      = "trust-bundle.pem"
)

// PodWithIdentity is a pod bound to node whose projected volume IdentityVolume asks the kubelet
// for a certificate from signer with keyType (CredentialBundle: the PKCS#8 key, then the chain)
// and for signer's trust bundle (TrustBundle), with userAnnotations for the signer. Its containers
// never run. Envtest's API server runs no ServiceAccount admission plugin, so the pod names its
// service account itself, and the account must exist for NodeRestriction to let the node ask.
func PodWithIdentity(namespace, name, serviceAccount, node, signer, keyType string, userAnnotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PodSpec{
			NodeName: node, ServiceAccountName: serviceAccount, AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
				VolumeMounts: []corev1.VolumeMount{{Name: IdentityVolume, MountPath: "/var/run/identity", ReadOnly: true}}}},
			Volumes: []corev1.Volume{{Name: IdentityVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{
					{PodCertificate: &corev1.PodCertificateProjection{SignerName: signer, KeyType: keyType, CredentialBundlePath: CredentialBundle, UserAnnotations: userAnnotations}},
					{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{SignerName: ptr.To(signer), LabelSelector: &metav1.LabelSelector{}, Path: TrustBundle}},
				},
			}}}},
		},
	}
}

package localcluster_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestPackagedChartInstalls packages the chart as make release does (version and appVersion set
// from the release version), writes its SHA256SUMS, and runs the README's install block on the
// local control plane, as a user installs a released chart: the release is deployed with the CRDs,
// RBAC and a Deployment that runs the release's image, and uninstalls again, keeping the CRDs. Pods
// never start (there is no kubelet), so the image may point anywhere.
func TestPackagedChartInstalls(t *testing.T) {
	const version = "0.1.0" // the README's
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pc := startPQCluster(t, localcluster.Options{})
	bin, err := buildHelm()
	if err != nil {
		t.Fatal(err)
	}
	helm := func(args ...string) string {
		t.Helper()
		return run(t, nil, bin, append([]string{"--kubeconfig", pc.kubeconfig}, args...)...)
	}
	crds := []string{"crd/pqissuers.pq-issuer.dev", "crd/pqclusterissuers.pq-issuer.dev"}

	chartDir, err := filepath.Abs(filepath.Join("..", "..", "charts", "pq-issuer"))
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	helm("package", chartDir, "--version", version, "--app-version", version, "--destination", dist)
	tgz := filepath.Join(dist, "pq-issuer-"+version+".tgz")

	// A fresh cluster has no pq-issuer CRDs; the local control plane starts with them, not owned
	// by a Helm release, so Helm would refuse to take them over.
	pc.kubectl(t, nil, append([]string{"delete", "--wait"}, crds...)...)

	sum := sha256.Sum256(readFile(t, tgz))
	writeTemp(t, dist, "SHA256SUMS", []byte(hex.EncodeToString(sum[:])+"  "+filepath.Base(tgz)+"\n"))
	block := strings.ReplaceAll(readmeBlock(t, readmeInstall), "sha256:<digest>", digest)
	if pc.ClusterResourceNamespace() != "cert-manager" || releaseNamespace != "pq-issuer" {
		t.Fatalf("the README installs into pq-issuer with cert-manager's namespace; the test uses %s and %s", releaseNamespace, pc.ClusterResourceNamespace())
	}
	t.Logf("the README's install block:\n%s", runREADMEBlock(t, pc, dist, block, nil))
	if got := helmList(t, helm); len(got) != 1 || got[0].Name != "pq-issuer" || got[0].Status != "deployed" ||
		got[0].Chart != "pq-issuer-"+version || got[0].AppVersion != version {
		t.Fatalf("helm list: %+v; want release pq-issuer deployed, chart pq-issuer-%s, app version %s", got, version, version)
	}

	pc.kubectl(t, nil, append([]string{"wait", "--for=condition=Established", "--timeout=60s"}, crds...)...)
	deploy := &appsv1.Deployment{}
	getObj(t, pc.c, client.ObjectKey{Namespace: releaseNamespace, Name: "pq-issuer"}, deploy)
	if image := deploy.Spec.Template.Spec.Containers[0].Image; image != "registry.example/pq-issuer@"+digest {
		t.Errorf("the Deployment runs %q, want the README's registry.example/pq-issuer@%s", image, digest)
	}
	if got := deploy.Labels["app.kubernetes.io/version"]; got != version {
		t.Errorf("the Deployment's app.kubernetes.io/version is %q, want %s", got, version)
	}
	getObj(t, pc.c, client.ObjectKey{Namespace: releaseNamespace, Name: "pq-issuer"}, &corev1.ServiceAccount{})
	pc.kubectl(t, nil, "get", "clusterrole/pq-issuer", "clusterrolebinding/pq-issuer", "clusterrolebinding/pq-issuer:approver",
		"--namespace", releaseNamespace, "role/pq-issuer:leader-election", "rolebinding/pq-issuer:leader-election")

	out := helm("uninstall", "pq-issuer", "--namespace", releaseNamespace)
	t.Logf("helm uninstall:\n%s", out)
	if got := helmList(t, helm); len(got) != 0 {
		t.Errorf("helm list after helm uninstall: %+v, want no release", got)
	}
	if err := pc.c.Get(t.Context(), client.ObjectKeyFromObject(deploy), &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Deployment after helm uninstall: %v, want not found", err)
	}
	// crds.keep: uninstalling must not delete every PQIssuer and PQClusterIssuer with their CRDs.
	pc.kubectl(t, nil, append([]string{"get"}, crds...)...)
}

// helmRelease is what `helm list -o json` prints of a release.
type helmRelease struct {
	Name, Status, Chart string
	AppVersion          string `json:"app_version"`
}

// helmList lists the releases in the release namespace.
func helmList(t *testing.T, helm func(...string) string) []helmRelease {
	t.Helper()
	var releases []helmRelease
	if err := json.Unmarshal([]byte(helm("list", "--namespace", releaseNamespace, "-o", "json")), &releases); err != nil {
		t.Fatalf("helm list -o json: %v", err)
	}
	return releases
}

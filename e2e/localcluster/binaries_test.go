package localcluster_test

import (
	"strings"
	"testing"

	"k8s.io/klog/v2/textlogger"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestStartWithoutBinariesSaysHowToBuildThem: a fresh clone has no bin/, and the error must say
// which command fixes that.
func TestStartWithoutBinariesSaysHowToBuildThem(t *testing.T) {
	cluster, err := localcluster.Start(t.Context(), localcluster.Options{
		BinDir: t.TempDir(),
		Log:    textlogger.NewLogger(textlogger.NewConfig()),
	})
	if err == nil {
		_ = cluster.Stop()
		t.Fatal("Start succeeded without kube-apiserver, etcd and kubectl")
	}
	for _, want := range []string{"kube-apiserver", "etcd", "kubectl", "make tools"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error %q does not mention %q", err, want)
		}
	}
}

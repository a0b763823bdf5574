package localcluster_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestStartStopLeavesNothingBehind starts and stops the control plane several times in one process:
// each cycle must work, and Stop must leave no etcd or kube-apiserver process and no temporary
// directory behind.
func TestStartStopLeavesNothingBehind(t *testing.T) {
	// Everything the cluster writes goes under tmp, so "nothing behind" means "tmp is empty" and a
	// leftover process is one of ours when its command line mentions tmp.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	bin := binDir(t)

	for cycle := 1; cycle <= 3; cycle++ {
		cluster := startCluster(t, localcluster.Options{})

		// Each cycle must run working controllers, not just processes: cert-manager's and
		// controller-runtime's process-wide registries must cope with a second start.
		c, trustNamespace := cluster.Client(), cluster.ClusterResourceNamespace()
		issuer := clusterIssuer("selfsigned", cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}})
		create(t, c, issuer)
		issueAndVerify(t, c, certificate(trustNamespace, "restart-ca", issuer.Name, cmapi.CertificateSpec{CommonName: "restart CA", IsCA: true}), "")
		publishAndVerifyBundle(t, c, trustNamespace, "restart-ca", metav1.NamespaceDefault)

		if running := processesFrom(t, bin, tmp); len(running) < 2 {
			t.Fatalf("Cycle %d: want etcd and kube-apiserver running from %s, found %v", cycle, bin, running)
		}

		if err := cluster.Stop(); err != nil {
			t.Fatalf("Cycle %d: stopping: %v", cycle, err)
		}
		if left := processesFrom(t, bin, tmp); len(left) > 0 {
			t.Fatalf("Cycle %d: processes left running after Stop: %v", cycle, left)
		}
		entries, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 0 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("Cycle %d: temporary files left in %s after Stop: %v", cycle, tmp, names)
		}
	}
}

// processesFrom lists the running processes whose executable is in bin and whose command line
// mentions marker, as "pid exe".
func processesFrom(t *testing.T, bin, marker string) []string {
	t.Helper()
	return processes(t, func(exe, cmdline string) bool {
		return filepath.Dir(strings.TrimSuffix(exe, " (deleted)")) == bin && strings.Contains(cmdline, marker)
	})
}

// processes lists the running processes for which match(executable, command line) holds, as
// "pid exe".
func processes(t *testing.T, match func(exe, cmdline string) bool) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("Listing processes: %v", err)
	}
	var found []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && match(exe, string(cmdline)) {
			found = append(found, e.Name()+" "+exe)
		}
	}
	return found
}

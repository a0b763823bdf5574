package localcluster_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/textlogger"

	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestExtraRunnersRunUntilStop covers the hook pq-issuer's controllers use: an extra runner gets an
// administrator's config, runs until Stop, and is stopped while kube-apiserver still answers, and
// a runner that fails makes Stop report its error.
func TestExtraRunnersRunUntilStop(t *testing.T) {
	type result struct {
		ranErr, stoppingErr error
	}
	ran, results := make(chan struct{}), make(chan result, 1)
	controller := func(ctx context.Context, cfg *rest.Config) error {
		clientset, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		var r result
		_, r.ranErr = clientset.CoreV1().Namespaces().Get(ctx, localcluster.DefaultClusterResourceNamespace, metav1.GetOptions{})
		close(ran)
		<-ctx.Done()
		_, r.stoppingErr = clientset.CoreV1().Namespaces().Get(context.Background(), corev1.NamespaceDefault, metav1.GetOptions{})
		results <- r
		return nil
	}
	failing := func(context.Context, *rest.Config) error { return errors.New("extra runner failed on purpose") }

	// Not startCluster: its cleanup would report the failing runner's error a second time.
	cluster, err := localcluster.Start(t.Context(), localcluster.Options{
		BinDir: binDir(t),
		Log:    textlogger.NewLogger(textlogger.NewConfig()),
		Extra:  []localcluster.Runner{controller, failing},
	})
	if err != nil {
		t.Fatalf("Starting the local control plane: %v", err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	// The failing runner returns at once; the controller's first request takes a round trip. Stop
	// only after both, or their errors would count as part of shutting down.
	select {
	case <-ran:
	case <-time.After(waitTimeout):
		t.Fatalf("Extra runner did not run within %s", waitTimeout)
	}
	err = cluster.Stop()
	if err == nil || !strings.Contains(err.Error(), "extra runner failed on purpose") {
		t.Errorf("Stop returned %v, want the failing runner's error", err)
	}

	select {
	case r := <-results:
		if r.ranErr != nil {
			t.Errorf("Extra runner could not read namespace %s: %v", localcluster.DefaultClusterResourceNamespace, r.ranErr)
		}
		if r.stoppingErr != nil {
			t.Errorf("kube-apiserver was already gone when the extra runner was stopped: %v", r.stoppingErr)
		}
	default:
		t.Fatal("Stop returned before the extra runner returned")
	}
}

package localcluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// referenceSignerBinary is built by `make kubelet-podcerts` from e2e/tools/cmd/reference-signer.
	referenceSignerBinary       = "reference-signer"
	referenceSignerStartTimeout = time.Minute
)

// ReferenceSigner is Kubernetes' in-tree reference signer for PodCertificateRequests
// (k8s.io/kubernetes/test/utils/hermeticpodcertificatesigner, the signer of Kubernetes' own e2e
// tests), run as bin/reference-signer with the administrator's kubeconfig. It signs every request
// for its signer name from a fresh Ed25519 root and intermediate. The leaf carries the URI
// spiffe://cluster.local/ns/<namespace>/sa/<service account> and lasts min(24h,
// maxExpirationSeconds), with beginRefreshAt 30 minutes before notAfter. It publishes the root in
// the ClusterTrustBundle named by TrustBundleName.
type ReferenceSigner struct {
	signerName string
	proc       *process
}

// StartReferenceSigner starts the reference signer for signerName and returns once its
// ClusterTrustBundle exists. ReferenceSigner.Stop or Cluster.Stop stops it. Its log goes to the
// cluster's logger.
func (c *Cluster) StartReferenceSigner(ctx context.Context, signerName string) (*ReferenceSigner, error) {
	proc, err := c.startProcess("reference signer "+signerName,
		c.opts.Log.WithName("reference-signer").WithValues("signerName", signerName),
		filepath.Join(c.opts.BinDir, referenceSignerBinary),
		"--kubeconfig="+filepath.Join(c.dir, "kubeconfig"),
		"--signer-name="+signerName,
	)
	if err != nil {
		return nil, err
	}
	s := &ReferenceSigner{signerName: signerName, proc: proc}
	bundle := &certificatesv1.ClusterTrustBundle{}
	err = proc.waitUntil(ctx, "publishing its ClusterTrustBundle "+s.TrustBundleName(), referenceSignerStartTimeout, func(ctx context.Context) (bool, error) {
		err := c.client.Get(ctx, client.ObjectKey{Name: s.TrustBundleName()}, bundle)
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("starting the reference signer: %w", errors.Join(err, s.Stop()))
	}
	return s, nil
}

// SignerName is the signer name the reference signer signs for.
func (s *ReferenceSigner) SignerName() string { return s.signerName }

// TrustBundleName is the name of the ClusterTrustBundle that holds the signer's root:
// <signer name with / as :>:primary-bundle. The signer deletes it when it stops.
func (s *ReferenceSigner) TrustBundleName() string {
	return strings.Replace(s.signerName, "/", ":", 1) + ":primary-bundle"
}

// Stop stops the signer. It is safe to call more than once.
func (s *ReferenceSigner) Stop() error { return s.proc.stop() }

// Package workload serves the credentials Kubernetes mounts into a pod to go-spiffe: the kubelet's
// podCertificate credential bundle or a cert-manager Secret, and the trust bundle (a
// ClusterTrustBundle projection or a Secret's ca.crt), as an x509svid.Source and an
// x509bundle.Source that follow the files as the kubelet or cert-manager rotate them. Use it with
// go-spiffe's spiffetls/tlsconfig (MTLSServerConfig, MTLSClientConfig) for mutual TLS between
// workloads; it needs no Kubernetes client and no SPIRE agent.
package workload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Files names the mounted files a Source reads. Either CredentialBundle, or Certificate and Key.
type Files struct {
	// CredentialBundle is the podCertificate projection's credentialBundlePath: the PKCS#8 key,
	// then the chain, leaf first, in one file the kubelet replaces at once.
	CredentialBundle string
	// Certificate and Key are a cert-manager Secret's tls.crt (leaf first) and tls.key (PKCS#8).
	Certificate, Key string
	// TrustBundles are PEM files whose certificates together are the trust anchors: the
	// ClusterTrustBundle projection's path (all of the signer's roots, two during a CA rotation),
	// or a Secret's ca.crt.
	TrustBundles []string
}

// PodCertificate is the layout of a podCertificate projected volume with a clusterTrustBundle
// source: credentialBundlePath and path, as in config/samples/pod-identity.yaml.
func PodCertificate(credentialBundle, trustBundle string) Files {
	return Files{CredentialBundle: credentialBundle, TrustBundles: []string{trustBundle}}
}

// Secret is the layout of a mounted kubernetes.io/tls Secret that cert-manager keeps: tls.crt,
// tls.key and ca.crt in dir.
func Secret(dir string) Files {
	return Files{Certificate: dir + "/tls.crt", Key: dir + "/tls.key", TrustBundles: []string{dir + "/ca.crt"}}
}

// DefaultInterval is how often a Source reads its files for a change: the longest a rotated
// certificate waits before new handshakes present it. The kubelet renews at half a certificate's
// lifetime, hours ahead of expiry.
const DefaultInterval = time.Second

// Options tune a Source; the zero value is usable.
type Options struct {
	// Log receives what the Source loaded and why it kept the previous credentials. Default: discard.
	Log logr.Logger
	// Interval between reads of the files; default DefaultInterval.
	Interval time.Duration
	// TrustDomain the trust bundle anchors; default: the trust domain of the workload's SPIFFE ID.
	// Peers of other trust domains are refused.
	TrustDomain spiffeid.TrustDomain
}

// Source is an x509svid.Source and x509bundle.Source over mounted files. Each credential set it
// serves was read whole, its key matched to its leaf; a change that does not parse or match is
// logged and the previous set kept until the files are consistent again.
type Source struct {
	files Files
	opts  Options
	svid  atomic.Pointer[loadedSVID]
	roots atomic.Pointer[loadedRoots]
}

type loadedSVID struct {
	raw  []byte
	svid *x509svid.SVID
}

type loadedRoots struct {
	raw    []byte
	bundle *x509bundle.Bundle
}

var (
	_ x509svid.Source   = (*Source)(nil)
	_ x509bundle.Source = (*Source)(nil)
)

// Open reads files and keeps reading them every opts.Interval until ctx ends. It fails when the
// first read does not yield a key matching its SPIFFE certificate and at least one trust anchor:
// the kubelet starts a pod's containers only once its volumes are written.
func Open(ctx context.Context, files Files, opts Options) (*Source, error) {
	pair := files.Certificate != "" || files.Key != ""
	if (files.CredentialBundle != "") == pair || (pair && (files.Certificate == "" || files.Key == "")) {
		return nil, errors.New("workload: set either Files.CredentialBundle, or Files.Certificate and Files.Key")
	}
	if len(files.TrustBundles) == 0 {
		return nil, errors.New("workload: Files.TrustBundles is empty; name the trust bundle file (the clusterTrustBundle projection's path, or ca.crt)")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	s := &Source{files: files, opts: opts}
	if err := s.reload(); err != nil {
		return nil, err
	}
	go s.watch(ctx)
	return s, nil
}

// GetX509SVID returns the current SVID.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) { return s.svid.Load().svid, nil }

// GetX509BundleForTrustDomain returns the trust anchors when td is the Source's trust domain.
func (s *Source) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.roots.Load().bundle.GetX509BundleForTrustDomain(td)
}

// NotAfter is when the current certificate expires.
func (s *Source) NotAfter() time.Time { return s.svid.Load().svid.Certificates[0].NotAfter }

// watch polls rather than using inotify: reading a few kilobytes a second costs nothing, works
// on every volume type and through the kubelet's ..data symlink swap without re-adding watches,
// and comparing contents sees every change, whatever mtime granularity the filesystem has.
func (s *Source) watch(ctx context.Context) {
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Each new problem once, not every interval while it lasts.
			err := s.reload()
			if err != nil && err.Error() != last {
				s.opts.Log.Error(err, "Keeping the previous workload credentials", "notAfter", s.NotAfter().UTC().Format(time.RFC3339))
			}
			last = ""
			if err != nil {
				last = err.Error()
			}
		}
	}
}

// reload swaps in each part whose files changed, once they parse and match.
func (s *Source) reload() error {
	svidErr := s.reloadSVID()
	return errors.Join(svidErr, s.reloadRoots())
}

func (s *Source) reloadSVID() error {
	var raw []byte
	if s.files.CredentialBundle != "" {
		b, err := os.ReadFile(s.files.CredentialBundle)
		if err != nil {
			return fmt.Errorf("workload: reading the credential bundle: %w", err)
		}
		raw = b
	} else {
		// Key first, as in a credential bundle; both files are read before either is used.
		key, err := os.ReadFile(s.files.Key)
		if err != nil {
			return fmt.Errorf("workload: reading the key: %w", err)
		}
		cert, err := os.ReadFile(s.files.Certificate)
		if err != nil {
			return fmt.Errorf("workload: reading the certificate: %w", err)
		}
		raw = append(append(key, '\n'), cert...)
	}
	if cur := s.svid.Load(); cur != nil && bytes.Equal(cur.raw, raw) {
		return nil
	}
	svid, err := parseSVID(raw)
	if err != nil {
		return fmt.Errorf("workload: the credentials in %s: %w", s.credentialFiles(), err)
	}
	s.svid.Store(&loadedSVID{raw: raw, svid: svid})
	leaf := svid.Certificates[0]
	s.opts.Log.Info("Loaded workload certificate", "spiffeID", svid.ID.String(), "serial", fmt.Sprintf("%x", leaf.SerialNumber),
		"issuer", leaf.Issuer.String(), "notAfter", leaf.NotAfter.UTC().Format(time.RFC3339), "keyType", fmt.Sprintf("%T", svid.PrivateKey))
	return nil
}

func (s *Source) credentialFiles() string {
	if s.files.CredentialBundle != "" {
		return s.files.CredentialBundle
	}
	return s.files.Certificate + " and " + s.files.Key
}

func (s *Source) reloadRoots() error {
	var raw []byte
	for _, f := range s.files.TrustBundles {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("workload: reading the trust bundle: %w", err)
		}
		raw = append(append(raw, b...), '\n')
	}
	if cur := s.roots.Load(); cur != nil && bytes.Equal(cur.raw, raw) {
		return nil
	}
	roots, err := parseRoots(raw)
	if err != nil {
		return fmt.Errorf("workload: the trust bundle %v: %w", s.files.TrustBundles, err)
	}
	td := s.opts.TrustDomain
	if td.IsZero() {
		if cur := s.svid.Load(); cur != nil {
			td = cur.svid.ID.TrustDomain()
		}
	}
	if td.IsZero() {
		return errors.New("workload: no trust domain: the workload certificate did not load and Options.TrustDomain is unset")
	}
	s.roots.Store(&loadedRoots{raw: raw, bundle: x509bundle.FromX509Authorities(td, roots)})
	subjects := make([]string, len(roots))
	for i, r := range roots {
		subjects[i] = r.Subject.String()
	}
	s.opts.Log.Info("Loaded trust bundle", "trustDomain", td.String(), "roots", subjects)
	return nil
}

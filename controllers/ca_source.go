package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/signer"
)

// CASource loads CAs from their Secrets. Only the Secrets' metadata is cached (watched cluster-wide
// to notice changes); the data of a CA Secret is read from the API server when its resourceVersion
// changes, parsed once, and kept. So the controller holds no other Secret's data in memory, and
// signing does not re-parse an unchanged CA.
type CASource struct {
	// Metadata reads Secret metadata from the informer cache.
	Metadata client.Reader
	// API reads whole Secrets from the API server.
	API client.Reader

	mu     sync.Mutex
	loaded map[types.NamespacedName]loadedCA
}

type loadedCA struct {
	resourceVersion string
	ca              *signer.CA
}

// SecretNotFoundError says the CA Secret does not exist.
type SecretNotFoundError struct {
	Secret types.NamespacedName
}

func (e *SecretNotFoundError) Error() string {
	return fmt.Sprintf("Secret %s not found: create it with the CA's tls.crt and tls.key (`kubectl pq ca secret` writes one)", e.Secret)
}

// CAError says the CA Secret exists but does not hold a usable CA; Reason is the signer's.
type CAError struct {
	Secret types.NamespacedName
	Reason signer.Reason
	Err    error
}

func (e *CAError) Error() string { return fmt.Sprintf("Secret %s: %v", e.Secret, e.Err) }
func (e *CAError) Unwrap() error { return e.Err }

// Load returns the CA in the Secret key, checked to be valid at now. It returns a
// *SecretNotFoundError or a *CAError when the Secret cannot be used, other errors when the API
// server could not be asked.
func (s *CASource) Load(ctx context.Context, key types.NamespacedName, now time.Time) (*signer.CA, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := s.Metadata.Get(ctx, key, meta); err != nil {
		if apierrors.IsNotFound(err) {
			s.forget(key)
			return nil, &SecretNotFoundError{Secret: key}
		}
		return nil, fmt.Errorf("reading Secret %s: %w", key, err)
	}

	ca := s.cached(key, meta.ResourceVersion)
	if ca == nil {
		secret := &corev1.Secret{}
		if err := s.API.Get(ctx, key, secret); err != nil {
			if apierrors.IsNotFound(err) {
				s.forget(key)
				return nil, &SecretNotFoundError{Secret: key}
			}
			return nil, fmt.Errorf("reading Secret %s: %w", key, err)
		}
		var err error
		if ca, err = parseCASecret(secret, now); err != nil {
			return nil, err
		}
		s.store(key, secret.ResourceVersion, ca)
	}
	if err := ca.ValidAt(now); err != nil {
		return nil, &CAError{Secret: key, Reason: signer.ReasonOf(err), Err: err}
	}
	return ca, nil
}

// parseCASecret checks the Secret's keys before the signer checks their contents, so the message
// names the missing key.
func parseCASecret(secret *corev1.Secret, now time.Time) (*signer.CA, error) {
	key := client.ObjectKeyFromObject(secret)
	certPEM, keyPEM := secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey]
	switch {
	case len(certPEM) == 0:
		return nil, &CAError{Secret: key, Reason: signer.ReasonCertificateMissing,
			Err: fmt.Errorf("no %s: it must hold the PEM CA certificate, optionally followed by its chain up to the root", corev1.TLSCertKey)}
	case len(keyPEM) == 0:
		return nil, &CAError{Secret: key, Reason: signer.ReasonKeyMissing,
			Err: fmt.Errorf("no %s: it must hold the CA's PKCS#8 ML-DSA private key", corev1.TLSPrivateKeyKey)}
	}
	ca, err := signer.LoadCA(certPEM, keyPEM, now)
	if err != nil {
		return nil, &CAError{Secret: key, Reason: signer.ReasonOf(err), Err: err}
	}
	return ca, nil
}

func (s *CASource) cached(key types.NamespacedName, resourceVersion string) *signer.CA {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.loaded[key]; ok && l.resourceVersion == resourceVersion {
		return l.ca
	}
	return nil
}

func (s *CASource) store(key types.NamespacedName, resourceVersion string, ca *signer.CA) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded == nil {
		s.loaded = map[types.NamespacedName]loadedCA{}
	}
	s.loaded[key] = loadedCA{resourceVersion: resourceVersion, ca: ca}
}

func (s *CASource) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.loaded, key)
}

package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// CASource loads CAs from their Secrets. A Secret is used only when its owner marked it as a CA
// Secret (label v1alpha1.CASecretLabel): whoever may create a PQIssuer must not be able to point it
// at a Secret they cannot read and have pq-issuer sign with the key in it. Only CA Secrets are
// cached, by metadata only (manager.go); the data of a CA Secret is read from the API server when
// its resourceVersion changes, parsed once, and kept while an issuer uses it (Use, Release). So the
// controller holds no other Secret in memory, no CA key outlives the last issuer that names it, and
// signing does not re-parse an unchanged CA.
type CASource struct {
	// Metadata reads the metadata of CA Secrets from the informer cache, which holds no others.
	Metadata client.Reader
	// API reads from the API server: whole CA Secrets, and the metadata of Secrets the cache lacks.
	API client.Reader

	mu     sync.Mutex
	loaded map[types.NamespacedName]loadedCA
	users  map[issuerID]types.NamespacedName // the CA Secret each issuer names
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

// CAError says the CA Secret exists but cannot be used: Reason is SecretNotMarked when it is not
// marked as a CA Secret, else the signer's reason why it holds no usable CA.
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
	meta, err := s.metadata(ctx, key)
	if err != nil {
		if apierrors.IsNotFound(err) {
			s.forget(key)
			return nil, &SecretNotFoundError{Secret: key}
		}
		return nil, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	if !isCASecret(meta) {
		s.forget(key)
		return nil, notMarkedError(key)
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
		if !isCASecret(secret) { // unmarked since its metadata was read
			s.forget(key)
			return nil, notMarkedError(key)
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

// metadata reads a Secret's metadata from the cache or, when the cache lacks it, with a GET from the
// API server: the cache holds only CA Secrets, and an issuer must tell a Secret that exists but is
// not marked from one that does not exist. A missing Secret costs one GET per check of its issuer.
func (s *CASource) metadata(ctx context.Context, key types.NamespacedName) (*metav1.PartialObjectMetadata, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := s.Metadata.Get(ctx, key, meta)
	if apierrors.IsNotFound(err) {
		err = s.API.Get(ctx, key, meta)
	}
	return meta, err
}

// caSecretSelector selects the Secrets marked as CA Secrets: the only ones the cache holds.
func caSecretSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{v1alpha1.CASecretLabel: v1alpha1.CASecretLabelValue})
}

func isCASecret(obj metav1.Object) bool {
	return obj.GetLabels()[v1alpha1.CASecretLabel] == v1alpha1.CASecretLabelValue
}

func notMarkedError(key types.NamespacedName) error {
	return &CAError{Secret: key, Reason: signer.Reason(v1alpha1.ReasonSecretNotMarked), Err: fmt.Errorf(
		"not marked as a CA Secret: pq-issuer uses a Secret only when its owner labels it %s=%s, so that whoever may create an issuer cannot have it sign with a key they may not read; if this Secret holds the CA, mark it with `kubectl label secret -n %s %s %s=%s` (`kubectl pq ca secret` writes the label)",
		v1alpha1.CASecretLabel, v1alpha1.CASecretLabelValue, key.Namespace, key.Name, v1alpha1.CASecretLabel, v1alpha1.CASecretLabelValue)}
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

// Use records that issuer names the CA Secret key. The CA it named before is dropped from memory
// when no other issuer names it.
func (s *CASource) Use(issuer issuerID, key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = map[issuerID]types.NamespacedName{}
	}
	old, had := s.users[issuer]
	s.users[issuer] = key
	if had && old != key {
		s.evictUnused(old)
	}
}

// Release records that issuer is gone: its CA is dropped from memory when no other issuer names it.
func (s *CASource) Release(issuer issuerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, had := s.users[issuer]
	delete(s.users, issuer)
	if had {
		s.evictUnused(key)
	}
}

// evictUnused drops the CA of key unless an issuer names it; s.mu is held.
func (s *CASource) evictUnused(key types.NamespacedName) {
	for _, k := range s.users {
		if k == key {
			return
		}
	}
	delete(s.loaded, key)
}

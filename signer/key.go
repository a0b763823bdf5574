package signer

import (
	"crypto"
	"crypto/mldsa"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign"
)

// Key is an ML-DSA private key. It is a crypto.Signer whose Public() is the
// standard library's *mldsa.PublicKey, so crypto/x509 recognises it, while
// the signing itself runs on circl.
type Key struct {
	alg  Algorithm
	seed []byte
	sk   sign.PrivateKey
	pk   sign.PublicKey
	pub  *mldsa.PublicKey
}

// NewKeyFromSeed derives the key pair from its 32-byte FIPS 204 seed ξ.
func NewKeyFromSeed(alg Algorithm, seed []byte) (*Key, error) {
	if len(seed) != mldsa.PrivateKeySize {
		return nil, newError(ReasonInvalidKey, "ML-DSA seed is %d bytes, expected %d", len(seed), mldsa.PrivateKeySize)
	}
	pk, sk := alg.scheme().DeriveKey(seed)
	raw, err := pk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	pub, err := mldsa.NewPublicKey(alg.params(), raw)
	if err != nil {
		return nil, err
	}
	return &Key{alg: alg, seed: append([]byte(nil), seed...), sk: sk, pk: pk, pub: pub}, nil
}

// GenerateKey makes a new key from a random seed.
func GenerateKey(alg Algorithm) (*Key, error) {
	seed := make([]byte, mldsa.PrivateKeySize)
	if _, err := io.ReadFull(rand.Reader, seed); err != nil {
		return nil, err
	}
	return NewKeyFromSeed(alg, seed)
}

// Algorithm reports the parameter set.
func (k *Key) Algorithm() Algorithm { return k.alg }

// Public returns the *mldsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Sign produces a hedged (randomized) pure ML-DSA signature of msg, as RFC
// 9881 §3 requires for certificates: no pre-hash, empty context unless opts
// is an *mldsa.Options with one. rand is ignored: circl draws its own
// randomness from crypto/rand.
func (k *Key) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 {
		return nil, errors.New("signer: ML-DSA signs messages directly, not pre-hashed digests")
	}
	var ctx []byte
	if o, ok := opts.(*mldsa.Options); ok && o != nil {
		ctx = []byte(o.Context)
	}
	return k.alg.signHedged(k.sk, msg, ctx)
}

// verify checks sig with circl: the independent cross-check of what the
// standard library produced and verified.
func (k *Key) verify(msg, sig []byte) bool {
	return k.alg.scheme().Verify(k.pk, msg, sig, nil)
}

// MarshalPEM encodes the key as PKCS#8 with the RFC 9881 seed format under
// the RFC 7468 label "PRIVATE KEY", which OpenSSL 3.5 and Go 1.27 read.
func (k *Key) MarshalPEM() ([]byte, error) {
	std, err := mldsa.NewPrivateKey(k.alg.params(), k.seed)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(std)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// matches reports whether pub is this key's public key.
func (k *Key) matches(pub crypto.PublicKey) bool {
	p, ok := pub.(*mldsa.PublicKey)
	return ok && p.Parameters() == k.pub.Parameters() &&
		subtle.ConstantTimeCompare(p.Bytes(), k.pub.Bytes()) == 1
}

func (k *Key) String() string { return fmt.Sprintf("%s private key", k.alg) }

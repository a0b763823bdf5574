// Package testkeys makes subject keys of named types for the tests of several packages.
package testkeys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/mldsa"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

// New makes a key of the named type: ECDSA-P224/P256/P384/P521, Ed25519, RSA-1024/2048 or
// ML-DSA-44/65/87. The weak ones exist to be refused.
func New(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kind {
	case "ECDSA-P224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "ECDSA-P256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ECDSA-P384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ECDSA-P521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "Ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "RSA-1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "RSA-2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ML-DSA-44":
		k, err = mldsa.GenerateKey(mldsa.MLDSA44())
	case "ML-DSA-65":
		k, err = mldsa.GenerateKey(mldsa.MLDSA65())
	case "ML-DSA-87":
		k, err = mldsa.GenerateKey(mldsa.MLDSA87())
	default:
		t.Fatalf("testkeys: unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

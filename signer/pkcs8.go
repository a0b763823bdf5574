package signer

import (
	"bytes"
	"crypto/subtle"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"strings"
)

// maxKeyPEMSize bounds what we parse: the largest ML-DSA PKCS#8 (ML-DSA-87
// "both") is 4962 bytes of DER, about 6.8 KiB of PEM.
const maxKeyPEMSize = 64 << 10

const reexportHint = "pq-issuer needs the 32-byte seed (RFC 9881 seed or both format). " +
	"Export the key again from a copy that still has its seed, e.g. with OpenSSL 3.5: " +
	"'openssl pkey -in KEY -out tls.key -provparam ml-dsa.output_formats=seed-only', " +
	"or create a new CA with 'kubectl pq ca create'"

// oneAsymmetricKey is RFC 5958's PKCS#8 v1/v2 structure.
type oneAsymmetricKey struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
	Attributes asn1.RawValue  `asn1:"optional,tag:0"`
	PublicKey  asn1.BitString `asn1:"optional,tag:1"`
}

// bothFormat is RFC 9881's `both` CHOICE: the seed and the expanded key.
type bothFormat struct {
	Seed     []byte
	Expanded []byte
}

// ParsePrivateKeyPEM reads a PKCS#8 ML-DSA private key. The seed and both
// formats of RFC 9881 §6 are accepted; both is checked for consistency
// (the key derived from the seed must equal the expanded key). The
// expanded-only format is refused: its seed cannot be recovered, and a key
// that cannot be re-exported in the recommended format is a trap later.
func ParsePrivateKeyPEM(data []byte) (*Key, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, newError(ReasonKeyMissing, "the private key is empty")
	}
	if len(data) > maxKeyPEMSize {
		return nil, newError(ReasonInvalidKey, "the private key is %d bytes, more than the %d-byte limit for an ML-DSA key", len(data), maxKeyPEMSize)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, newError(ReasonInvalidKey, "the private key is not PEM: expected '-----BEGIN PRIVATE KEY-----'")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, newError(ReasonInvalidKey, "the private key file has data after its first PEM block; it must hold exactly one PRIVATE KEY")
	}
	switch block.Type {
	case "ENCRYPTED PRIVATE KEY":
		return nil, newError(ReasonUnsupportedKeyFormat, "the private key is encrypted; store it unencrypted (PKCS#8 'PRIVATE KEY') in the Secret")
	case "RSA PRIVATE KEY", "EC PRIVATE KEY":
		return nil, newError(ReasonUnsupportedAlgorithm, "the private key is a classical %s key; pq-issuer signs only with ML-DSA keys (create one with 'kubectl pq ca create')", strings.TrimSuffix(block.Type, " PRIVATE KEY"))
	}
	// circl writes "ML-DSA-65 PRIVATE KEY"; the DER is the same PKCS#8.
	if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return nil, newError(ReasonInvalidKey, "the private key PEM block is %q, expected \"PRIVATE KEY\"", block.Type)
	}
	return ParsePKCS8(block.Bytes)
}

// KeyFormat names the RFC 9881 §6 private-key CHOICE.
type KeyFormat string

const (
	FormatSeed     KeyFormat = "seed"
	FormatExpanded KeyFormat = "expandedKey"
	FormatBoth     KeyFormat = "both"
	FormatUnknown  KeyFormat = "unknown"
)

// PKCS8Info describes a PKCS#8 key without touching its secret, for tools
// that explain a key file.
type PKCS8Info struct {
	Version      int // as encoded: 0 is v1, 1 is v2 (RFC 5958)
	Algorithm    asn1.ObjectIdentifier
	Format       KeyFormat // for the ML-DSA family; FormatUnknown otherwise
	HasPublicKey bool
}

// InspectPKCS8 reads the envelope of a DER PKCS#8 key.
func InspectPKCS8(der []byte) (PKCS8Info, error) {
	oak, err := unmarshalPKCS8(der)
	if err != nil {
		return PKCS8Info{}, err
	}
	info := PKCS8Info{Version: oak.Version, Algorithm: oak.Algorithm.Algorithm, Format: FormatUnknown, HasPublicKey: len(oak.PublicKey.Bytes) != 0}
	if IsMLDSAFamily(info.Algorithm) {
		var raw asn1.RawValue
		if rest, err := asn1.Unmarshal(oak.PrivateKey, &raw); err == nil && len(rest) == 0 {
			info.Format = keyFormat(raw)
		}
	}
	return info, nil
}

func unmarshalPKCS8(der []byte) (*oneAsymmetricKey, error) {
	var oak oneAsymmetricKey
	rest, err := asn1.Unmarshal(der, &oak)
	if err != nil {
		return nil, newError(ReasonInvalidKey, "the private key is not valid PKCS#8: %v", err)
	}
	if len(rest) != 0 {
		return nil, newError(ReasonInvalidKey, "the private key has %d bytes of trailing data after the PKCS#8 structure", len(rest))
	}
	return &oak, nil
}

// keyFormat dispatches on the tag, as RFC 9881 §6 requires, never on the
// length.
func keyFormat(raw asn1.RawValue) KeyFormat {
	switch {
	case raw.Class == asn1.ClassContextSpecific && raw.Tag == 0 && !raw.IsCompound:
		return FormatSeed
	case raw.Class == asn1.ClassUniversal && raw.Tag == asn1.TagOctetString:
		return FormatExpanded
	case raw.Class == asn1.ClassUniversal && raw.Tag == asn1.TagSequence:
		return FormatBoth
	}
	return FormatUnknown
}

// ParsePKCS8 reads a DER PKCS#8 ML-DSA private key; see ParsePrivateKeyPEM.
func ParsePKCS8(der []byte) (*Key, error) {
	oak, err := unmarshalPKCS8(der)
	if err != nil {
		return nil, err
	}
	oid := oak.Algorithm.Algorithm
	if isHashMLDSA(oid) {
		return nil, newError(ReasonHashMLDSA, "the private key is HashML-DSA (%s), which RFC 9881 §8.3 forbids in certificates; use a pure ML-DSA key", oid)
	}
	alg, ok := algorithmFromOID(oid)
	if !ok {
		return nil, newError(ReasonUnsupportedAlgorithm, "the private key is %s; pq-issuer signs only with ML-DSA-44, ML-DSA-65 or ML-DSA-87 keys", OIDName(oid))
	}
	if len(oak.Algorithm.Parameters.FullBytes) != 0 {
		return nil, newError(ReasonInvalidKey, "the %s private key has AlgorithmIdentifier parameters, which RFC 9881 §2 says must be absent", alg)
	}

	key, err := parsePrivateKeyChoice(alg, oak.PrivateKey)
	if err != nil {
		return nil, err
	}
	// A v2 key may carry its public key; if it does it must agree.
	if len(oak.PublicKey.Bytes) != 0 && subtle.ConstantTimeCompare(oak.PublicKey.RightAlign(), key.pub.Bytes()) != 1 {
		return nil, newError(ReasonKeyInconsistent, "the %s private key's embedded public key does not match the key derived from its seed; the key file is corrupt", alg)
	}
	return key, nil
}

func parsePrivateKeyChoice(alg Algorithm, b []byte) (*Key, error) {
	if len(b) == 0 {
		return nil, newError(ReasonInvalidKey, "the %s private key is empty inside its PKCS#8 wrapper", alg)
	}
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(b, &raw)
	if err != nil || len(rest) != 0 {
		return nil, newError(ReasonInvalidKey, "the %s private key inside PKCS#8 is not valid DER", alg)
	}
	switch keyFormat(raw) {
	case FormatSeed:
		return NewKeyFromSeed(alg, raw.Bytes)
	case FormatExpanded:
		return nil, newError(ReasonUnsupportedKeyFormat, "the %s private key holds only the expanded key (RFC 9881 expandedKey format). %s", alg, reexportHint)
	case FormatBoth:
		var both bothFormat
		if rest, err := asn1.Unmarshal(b, &both); err != nil || len(rest) != 0 {
			return nil, newError(ReasonInvalidKey, "the %s private key's 'both' structure is not valid DER", alg)
		}
		if want := alg.scheme().PrivateKeySize(); len(both.Expanded) != want {
			return nil, newError(ReasonInvalidKey, "the %s private key's expanded key is %d bytes, expected %d", alg, len(both.Expanded), want)
		}
		key, err := NewKeyFromSeed(alg, both.Seed)
		if err != nil {
			return nil, err
		}
		derived, err := key.sk.MarshalBinary()
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(derived, both.Expanded) != 1 {
			return nil, newError(ReasonKeyInconsistent, "the %s private key's seed and expanded key do not belong together (RFC 9881 §8.2 'both' consistency check failed); the key file is corrupt or was tampered with", alg)
		}
		return key, nil
	}
	return nil, newError(ReasonInvalidKey, "the %s private key has an unknown format (ASN.1 tag %d); expected seed, expandedKey or both from RFC 9881 §6", alg, raw.Tag)
}

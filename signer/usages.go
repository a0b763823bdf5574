package signer

import (
	"crypto/x509"
	"fmt"
	"strings"
)

// Usage names are cert-manager's (spec.usages of a Certificate), so the CLI
// and the cluster speak the same words.
var keyUsages = []struct {
	name, rfcName string
	usage         x509.KeyUsage
}{
	{"digital signature", "digitalSignature", x509.KeyUsageDigitalSignature},
	{"content commitment", "contentCommitment", x509.KeyUsageContentCommitment},
	{"key encipherment", "keyEncipherment", x509.KeyUsageKeyEncipherment},
	{"data encipherment", "dataEncipherment", x509.KeyUsageDataEncipherment},
	{"key agreement", "keyAgreement", x509.KeyUsageKeyAgreement},
	{"cert sign", "keyCertSign", x509.KeyUsageCertSign},
	{"crl sign", "cRLSign", x509.KeyUsageCRLSign},
	{"encipher only", "encipherOnly", x509.KeyUsageEncipherOnly},
	{"decipher only", "decipherOnly", x509.KeyUsageDecipherOnly},
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"any":              x509.ExtKeyUsageAny,
	"server auth":      x509.ExtKeyUsageServerAuth,
	"client auth":      x509.ExtKeyUsageClientAuth,
	"code signing":     x509.ExtKeyUsageCodeSigning,
	"email protection": x509.ExtKeyUsageEmailProtection,
	"s/mime":           x509.ExtKeyUsageEmailProtection,
	"ipsec end system": x509.ExtKeyUsageIPSECEndSystem,
	"ipsec tunnel":     x509.ExtKeyUsageIPSECTunnel,
	"ipsec user":       x509.ExtKeyUsageIPSECUser,
	"timestamping":     x509.ExtKeyUsageTimeStamping,
	"ocsp signing":     x509.ExtKeyUsageOCSPSigning,
}

// DefaultUsages suit mutual TLS, the reason pq-issuer exists: the CLI's default.
func DefaultUsages() []string { return []string{"digital signature", "server auth", "client auth"} }

// certManagerDefaultUsages are what cert-manager gives a request that names no usages.
var certManagerDefaultUsages = []string{"digital signature", "key encipherment"}

// canonicalUsage is a usage name as the tables spell it: lower case, with cert-manager's aliases
// resolved.
func canonicalUsage(name string) string {
	switch n := strings.ToLower(strings.TrimSpace(name)); n {
	case "signing":
		return "digital signature"
	case "s/mime":
		return "email protection"
	default:
		return n
	}
}

// keyProfile is what a leaf for one family of subject keys may carry.
type keyProfile struct {
	family KeyAlgorithm
	// usages are the key usages the key can serve on a leaf; the others are dropped.
	usages x509.KeyUsage
	// rule is why the others are dropped, for the event.
	rule string
}

// keyProfiles: RFC 3279 §2.3.1 / RFC 4055 (RSA: no key agreement), RFC 8813 §3 (ECDSA: no
// encipherment), RFC 8410 §5 (Ed25519) and RFC 9881 §5 (ML-DSA) (sign only). keyCertSign and
// cRLSign are for CAs and never on a leaf: a request for them is refused, not dropped.
var keyProfiles = []keyProfile{
	{KeyRSA, x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		"RFC 3279 §2.3.1 allows no key agreement for RSA keys"},
	{KeyECDSA, x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyAgreement,
		"RFC 8813 §3 forbids encipherment for ECDSA keys"},
	{KeyEd25519, x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		"RFC 8410 §5 forbids it for Ed25519 keys, which only sign"},
	{KeyMLDSA, x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		"RFC 9881 §5 forbids it for ML-DSA keys, which only sign"},
}

func profileOf(family KeyAlgorithm) keyProfile {
	for _, p := range keyProfiles {
		if p.family == family {
			return p
		}
	}
	return keyProfile{family: family}
}

// keyUsageBit is the key usage a canonical name stands for, or 0 for an extended key usage.
func keyUsageBit(name string) x509.KeyUsage {
	for _, u := range keyUsages {
		if u.name == name {
			return u.usage
		}
	}
	return 0
}

// ParseUsages maps cert-manager usage names to x509 key usages.
func ParseUsages(names []string) (x509.KeyUsage, []x509.ExtKeyUsage, error) {
	var ku x509.KeyUsage
	var eku []x509.ExtKeyUsage
	for _, n := range names {
		n = canonicalUsage(n)
		if bit := keyUsageBit(n); bit != 0 {
			ku |= bit
			continue
		}
		e, ok := extKeyUsages[n]
		if !ok {
			return 0, nil, fmt.Errorf("unknown usage %q: use cert-manager's names, e.g. \"digital signature\", \"server auth\", \"client auth\"", n)
		}
		eku = append(eku, e)
	}
	return ku, eku, nil
}

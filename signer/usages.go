package signer

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"
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

// DefaultUsages suit mutual TLS, the reason pq-issuer exists.
func DefaultUsages() []string { return []string{"digital signature", "server auth", "client auth"} }

// ParseUsages maps cert-manager usage names to x509 key usages.
func ParseUsages(names []string) (x509.KeyUsage, []x509.ExtKeyUsage, error) {
	var ku x509.KeyUsage
	var eku []x509.ExtKeyUsage
next:
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "signing" {
			n = "digital signature"
		}
		for _, u := range keyUsages {
			if u.name == n {
				ku |= u.usage
				continue next
			}
		}
		e, ok := extKeyUsages[n]
		if !ok {
			return 0, nil, fmt.Errorf("unknown usage %q: use cert-manager's names, e.g. \"digital signature\", \"server auth\", \"client auth\"", n)
		}
		eku = append(eku, e)
	}
	return ku, eku, nil
}

// TemplateFromCSR builds a leaf template from a checked CSR, for offline
// signing; in the cluster cert-manager's pki helpers build it from the
// CertificateRequest instead.
func TemplateFromCSR(csr *x509.CertificateRequest, duration time.Duration, usages []string, now time.Time) (*x509.Certificate, error) {
	if duration <= 0 {
		return nil, newError(ReasonPolicyViolation, "the duration %s is not positive", duration)
	}
	ku, eku, err := ParseUsages(usages)
	if err != nil {
		return nil, newError(ReasonPolicyViolation, "%v", err)
	}
	return &x509.Certificate{
		Subject:               csr.Subject,
		DNSNames:              csr.DNSNames,
		IPAddresses:           csr.IPAddresses,
		URIs:                  csr.URIs,
		EmailAddresses:        csr.EmailAddresses,
		KeyUsage:              ku,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		NotBefore:             now,
		NotAfter:              now.Add(duration),
	}, nil
}

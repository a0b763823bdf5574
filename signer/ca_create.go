package signer

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"strings"
	"time"
)

// CAOptions describe a CA certificate to create.
type CAOptions struct {
	Algorithm Algorithm
	Subject   pkix.Name
	Duration  time.Duration
}

// caKeyUsage is RFC 9881 Appendix C's choice for CA certificates.
const caKeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature

// CreateRootCA makes a self-signed ML-DSA root and returns its certificate
// and seed-format PKCS#8 key as PEM, ready for a kubernetes.io/tls Secret.
func CreateRootCA(opts CAOptions, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := GenerateKey(opts.Algorithm)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := caTemplate(opts, key, now)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the root certificate: %w", err)
	}
	return finishCA(encodeCert(der), key, now)
}

// CreateIntermediate makes an ML-DSA intermediate signed by ca. The returned
// certificate PEM is the intermediate followed by ca's chain, so the parent's
// key can stay offline. The intermediate may only sign leaves (pathLen 0).
func (ca *CA) CreateIntermediate(opts CAOptions, now time.Time) (certPEM, keyPEM []byte, err error) {
	// The new CA adds one level below every certificate of the chain.
	for i, c := range ca.Chain {
		if limit, ok := maxPathLen(c); ok && limit < i+1 {
			return nil, nil, newError(ReasonPolicyViolation, "%s has pathLen %d: an intermediate under %s would not verify; create it from a CA higher up, such as the root", c.Subject, limit, ca.Certificate.Subject)
		}
	}
	key, err := GenerateKey(opts.Algorithm)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := caTemplate(opts, key, now)
	if err != nil {
		return nil, nil, err
	}
	tmpl.MaxPathLenZero = true
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Certificate, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing the intermediate certificate: %w", err)
	}
	chain := encodeCert(der)
	for _, c := range ca.Chain {
		chain = append(chain, encodeCert(c.Raw)...)
	}
	return finishCA(chain, key, now)
}

func caTemplate(opts CAOptions, key *Key, now time.Time) (*x509.Certificate, error) {
	if opts.Duration <= 0 {
		return nil, newError(ReasonPolicyViolation, "the CA duration %s is not positive", opts.Duration)
	}
	if opts.Subject.CommonName == "" {
		return nil, newError(ReasonPolicyViolation, "the CA subject needs a common name (CN=...)")
	}
	serial, err := randomSerial(rand.Reader)
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               opts.Subject,
		NotBefore:             now.Add(-time.Minute), // tolerate clock skew between nodes
		NotAfter:              now.Add(opts.Duration),
		KeyUsage:              caKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}, nil
}

// finishCA loads what was made, so every CA we write has passed the same
// checks as one an operator brings.
func finishCA(certPEM []byte, key *Key, now time.Time) ([]byte, []byte, error) {
	keyPEM, err := key.MarshalPEM()
	if err != nil {
		return nil, nil, err
	}
	if _, err := LoadCA(certPEM, keyPEM, now); err != nil {
		return nil, nil, fmt.Errorf("the new CA does not pass its own checks: %w", err)
	}
	return certPEM, keyPEM, nil
}

// ParseSubject reads a distinguished name such as "CN=Mesh Root,O=Example".
// Attributes: CN, O, OU, C, L, ST, STREET, POSTALCODE, SERIALNUMBER; a comma
// inside a value is escaped as "\,".
func ParseSubject(s string) (pkix.Name, error) {
	var n pkix.Name
	for _, part := range splitUnescaped(s, ',') {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(strings.ReplaceAll(v, `\,`, ","))
		if !ok || v == "" {
			return n, fmt.Errorf("subject %q: %q is not ATTRIBUTE=value", s, part)
		}
		switch k {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "C":
			n.Country = append(n.Country, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "ST":
			n.Province = append(n.Province, v)
		case "STREET":
			n.StreetAddress = append(n.StreetAddress, v)
		case "POSTALCODE":
			n.PostalCode = append(n.PostalCode, v)
		case "SERIALNUMBER":
			n.SerialNumber = v
		default:
			return n, fmt.Errorf("subject %q: unknown attribute %q (use CN, O, OU, C, L, ST, STREET, POSTALCODE, SERIALNUMBER)", s, k)
		}
	}
	return n, nil
}

func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == sep {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

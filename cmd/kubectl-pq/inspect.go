package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/mldsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/pq-issuer/pq-issuer/signer"
)

// item is one PEM block of the input, with where it came from.
type item struct {
	index  int    // 1-based, across the whole input
	source string // the Secret data field, or "" for a plain file
	block  *pem.Block
	cert   *x509.Certificate // for CERTIFICATE blocks that parse
	csr    *x509.CertificateRequest
	err    error // why a CERTIFICATE or CSR block does not parse
}

func (it *item) title() string {
	t := fmt.Sprintf("[%d] %s", it.index, it.block.Type)
	if it.source != "" {
		t += " (" + it.source + ")"
	}
	return t
}

// ref names an item in another item's report.
func (it *item) ref() string {
	switch {
	case it.cert != nil:
		return fmt.Sprintf("[%d] %s", it.index, it.cert.Subject)
	case it.csr != nil:
		return fmt.Sprintf("[%d] CSR %s", it.index, it.csr.Subject)
	}
	return fmt.Sprintf("[%d]", it.index)
}

func (c *cli) inspect(args []string) error {
	fs := newFlagSet("inspect", `Usage: kubectl pq inspect [FILE|-]

Prints every PEM block of FILE (default: standard input) in readable form:
certificates (with whether each is signed by the next one), certificate
requests (with whether their signature verifies), private keys (algorithm
and PKCS#8 format, never key material) and public keys. ML-DSA keys and
signatures are named (ML-DSA-44/65/87), which OpenSSL 3.0 cannot do.

FILE may also be a Secret manifest, YAML or JSON, for example
  kubectl get secret mesh-ca -o yaml | kubectl pq inspect
in which case tls.crt, ca.crt and tls.key are decoded and inspected.
`)
	if err := c.parse(fs, args, true); err != nil {
		return err
	}
	path := "-"
	switch fs.NArg() {
	case 0:
	case 1:
		path = fs.Arg(0)
	default:
		return usagef("inspect takes one file, got %d", fs.NArg())
	}
	data, err := c.readInput(path)
	if err != nil {
		return err
	}
	name := path
	if path == "-" {
		name = "standard input"
	}
	items, err := collectItems(c.stdout, data)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	failed := 0
	for i, it := range items {
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		if !c.describe(c.stdout, it, items) {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s: %d of %d PEM blocks could not be parsed", name, failed, len(items))
	}
	return nil
}

// collectItems splits the input into PEM blocks, decoding a Secret manifest
// first, and parses the certificates and CSRs so that others can refer to
// them. A Secret's heading goes to w.
func collectItems(w io.Writer, data []byte) ([]*item, error) {
	type source struct {
		name string
		data []byte
	}
	sources := []source{{data: data}}
	secrets, isManifest, err := parseManifest(data)
	if err != nil {
		return nil, err
	}
	if isManifest {
		sources = nil
		for _, s := range secrets {
			fmt.Fprintf(w, "Secret %s\n", secretHeading(s))
			for _, f := range s.fields() {
				if !bytes.Contains(s.data[f], []byte("-----BEGIN ")) {
					fmt.Fprintf(w, "  %s: not PEM, skipped\n", f)
					continue
				}
				sources = append(sources, source{name: f, data: s.data[f]})
			}
		}
		fmt.Fprintln(w)
	}
	var items []*item
	for _, src := range sources {
		rest := src.data
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			it := &item{index: len(items) + 1, source: src.name, block: block}
			switch block.Type {
			case "CERTIFICATE":
				it.cert, it.err = x509.ParseCertificate(block.Bytes)
			case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
				it.csr, it.err = x509.ParseCertificateRequest(block.Bytes)
			}
			items = append(items, it)
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("no PEM blocks found: expected '-----BEGIN CERTIFICATE-----', a CSR, a key or a Secret manifest")
	}
	return items, nil
}

// secretHeading names a Secret as kubectl does, namespace/name, with its type.
func secretHeading(s secretInput) string {
	h := s.name
	if s.namespace != "" {
		h = s.namespace + "/" + h
	}
	if s.typ != "" {
		h += " (type " + s.typ + ")"
	}
	return h
}

// fieldWriter prints aligned "name: value" lines under an item's title.
type fieldWriter struct{ w io.Writer }

func (f fieldWriter) field(name, format string, args ...any) {
	fmt.Fprintf(f.w, "    %-21s %s\n", name+":", fmt.Sprintf(format, args...))
}

func (f fieldWriter) list(name string, values []string) {
	if len(values) > 0 {
		f.field(name, "%s", strings.Join(values, ", "))
	}
}

// describe prints one item; it reports false if the block does not parse.
func (c *cli) describe(w io.Writer, it *item, all []*item) bool {
	fmt.Fprintln(w, it.title())
	f := fieldWriter{w}
	switch {
	case it.block.Type == "CERTIFICATE":
		if it.err != nil {
			f.field("Error", "cannot parse the certificate: %v", it.err)
			return false
		}
		c.describeCertificate(f, it, all)
	case it.block.Type == "CERTIFICATE REQUEST" || it.block.Type == "NEW CERTIFICATE REQUEST":
		if it.err != nil {
			f.field("Error", "cannot parse the CSR: %v", it.err)
			return false
		}
		describeCSR(f, it)
	case strings.HasSuffix(it.block.Type, "PRIVATE KEY"):
		return describePrivateKey(f, it, all)
	case it.block.Type == "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(it.block.Bytes)
		if err != nil {
			f.field("Error", "cannot parse the public key: %v", err)
			return false
		}
		f.field("Algorithm", "%s", publicKeyName(pub, it.block.Bytes))
		describeMatches(f, pub, all)
	default:
		f.field("Note", "not a certificate, CSR or key; skipped")
	}
	return true
}

func (c *cli) describeCertificate(f fieldWriter, it *item, all []*item) {
	cert := it.cert
	// A CA Secret repeats the root in tls.crt and ca.crt: say so once.
	for _, o := range all[:it.index-1] {
		if o.cert != nil && bytes.Equal(o.cert.Raw, cert.Raw) {
			f.field("Same as", "%s (identical certificate)", o.ref())
			return
		}
	}
	now := c.now()
	f.field("Subject", "%s", cert.Subject)
	f.field("Issuer", "%s", cert.Issuer)
	f.field("Serial", "%s", hexColons(cert.SerialNumber.Bytes()))
	f.field("Not before", "%s", formatTime(cert.NotBefore))
	switch {
	case now.Before(cert.NotBefore):
		f.field("Not after", "%s (NOT YET VALID: starts in %s)", formatTime(cert.NotAfter), humanDuration(cert.NotBefore.Sub(now)))
	case now.After(cert.NotAfter):
		f.field("Not after", "%s (EXPIRED %s ago)", formatTime(cert.NotAfter), humanDuration(now.Sub(cert.NotAfter)))
	default:
		f.field("Not after", "%s (valid, expires in %s)", formatTime(cert.NotAfter), humanDuration(cert.NotAfter.Sub(now)))
	}
	f.field("Signature algorithm", "%s", signatureName(cert.SignatureAlgorithm, cert.Raw))
	f.field("Public key", "%s", publicKeyDetail(cert.PublicKey, cert.RawSubjectPublicKeyInfo))
	f.list("Key usage", signer.KeyUsageNames(cert.KeyUsage))
	f.list("Extended key usage", extKeyUsageNames(cert))
	switch {
	case !cert.BasicConstraintsValid:
		f.field("Basic constraints", "absent")
	case cert.IsCA && (cert.MaxPathLen > 0 || cert.MaxPathLenZero):
		f.field("Basic constraints", "CA:TRUE, pathlen:%d", cert.MaxPathLen)
	case cert.IsCA:
		f.field("Basic constraints", "CA:TRUE")
	default:
		f.field("Basic constraints", "CA:FALSE")
	}
	f.list("DNS names", cert.DNSNames)
	f.list("URIs", urlStrings(cert.URIs))
	f.list("IP addresses", ipStrings(cert.IPAddresses))
	f.list("Emails", cert.EmailAddresses)
	if len(cert.SubjectKeyId) > 0 {
		f.field("Subject key ID", "%s", hexColons(cert.SubjectKeyId))
	}
	if len(cert.AuthorityKeyId) > 0 {
		f.field("Authority key ID", "%s", hexColons(cert.AuthorityKeyId))
	}
	f.field("Signed by next", "%s", chainStatus(it, all))
	if _, ok := cert.PublicKey.(*mldsa.PublicKey); ok {
		if bad := cert.KeyUsage & (x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageKeyAgreement); bad != 0 {
			f.field("Warning", "an ML-DSA key with %s: RFC 9881 §5 forbids it", strings.Join(signer.KeyUsageNames(bad), ", "))
		}
	}
}

// chainStatus says whether the item's certificate is signed by the next
// certificate of the input (each certificate followed by its issuer, as in
// tls.crt), or by itself.
func chainStatus(it *item, all []*item) string {
	cert := it.cert
	if bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			return fmt.Sprintf("no: self-issued, but its signature does not verify with its own key: %v", err)
		}
		if cert.IsCA {
			return "self-signed root (signature verifies with its own key)"
		}
		return "self-signed (signature verifies with its own key)"
	}
	var next *item
	for _, o := range all[it.index:] {
		if o.cert != nil {
			next = o
			break
		}
	}
	if next == nil {
		return fmt.Sprintf("- (last certificate; its issuer %s is not in the input)", cert.Issuer)
	}
	if err := cert.CheckSignatureFrom(next.cert); err != nil {
		return fmt.Sprintf("no: not signed by %s: %v", next.ref(), err)
	}
	return fmt.Sprintf("yes, signature verifies with %s", next.ref())
}

func describeCSR(f fieldWriter, it *item) {
	csr := it.csr
	f.field("Subject", "%s", csr.Subject)
	f.field("Signature algorithm", "%s", signatureName(csr.SignatureAlgorithm, csr.Raw))
	f.field("Public key", "%s", publicKeyDetail(csr.PublicKey, csr.RawSubjectPublicKeyInfo))
	f.list("DNS names", csr.DNSNames)
	f.list("URIs", urlStrings(csr.URIs))
	f.list("IP addresses", ipStrings(csr.IPAddresses))
	f.list("Emails", csr.EmailAddresses)
	if err := csr.CheckSignature(); err != nil {
		f.field("Signature", "DOES NOT VERIFY with its own public key (tampered or corrupt): %v", err)
		return
	}
	f.field("Signature", "verifies (proves possession of the private key)")
	// The signer's checks are the issuer's; show its verdict on this block.
	if _, err := signer.ParseCSR(pem.EncodeToMemory(it.block)); err != nil {
		f.field("pq-issuer", "would refuse it: %v", err)
	} else {
		f.field("pq-issuer", "would accept it")
	}
}

// describePrivateKey names the key and its format and says which
// certificate or CSR of the input it belongs to. Key material is never
// printed.
func describePrivateKey(f fieldWriter, it *item, all []*item) bool {
	der := it.block.Bytes
	var pub crypto.PublicKey
	switch it.block.Type {
	case "ENCRYPTED PRIVATE KEY":
		f.field("Format", "encrypted PKCS#8 (cannot be inspected without the password)")
		return true
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(der)
		if err != nil {
			f.field("Error", "cannot parse the PKCS#1 RSA key: %v", err)
			return false
		}
		f.field("Algorithm", "%s", publicKeyName(&k.PublicKey, nil))
		f.field("Format", "PKCS#1 (traditional OpenSSL RSA format)")
		pub = &k.PublicKey
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(der)
		if err != nil {
			f.field("Error", "cannot parse the SEC 1 EC key: %v", err)
			return false
		}
		f.field("Algorithm", "%s", publicKeyName(&k.PublicKey, nil))
		f.field("Format", "SEC 1 (traditional OpenSSL EC format)")
		pub = &k.PublicKey
	default:
		var ok bool
		if pub, ok = describePKCS8(f, der); !ok {
			return false
		}
	}
	if pub != nil {
		describeMatches(f, pub, all)
	}
	return true
}

// describePKCS8 prints a PKCS#8 key's algorithm and format, and returns
// its public key when it can be derived.
func describePKCS8(f fieldWriter, der []byte) (crypto.PublicKey, bool) {
	info, err := signer.InspectPKCS8(der)
	if err != nil {
		f.field("Error", "not a valid PKCS#8 private key")
		return nil, false
	}
	version := fmt.Sprintf("PKCS#8 v%d", info.Version+1)
	if !signer.IsMLDSAFamily(info.Algorithm) {
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			f.field("Algorithm", "%s", signer.OIDName(info.Algorithm))
			f.field("Format", "%s", version)
			f.field("Note", "cannot parse the key: %v", err)
			return nil, true
		}
		pub := key.(crypto.Signer).Public()
		f.field("Algorithm", "%s", publicKeyName(pub, nil))
		f.field("Format", "%s", version)
		return pub, true
	}
	f.field("Algorithm", "%s", signer.OIDName(info.Algorithm))
	f.field("Format", "%s, RFC 9881 %s", version, keyFormatDetail[info.Format])
	if info.HasPublicKey {
		f.field("Public key included", "yes")
	}
	// The signer derives the key from its seed and checks a "both" key's
	// halves agree: exactly what the controller will do with it.
	key, err := signer.ParsePKCS8(der)
	if err != nil {
		f.field("pq-issuer", "cannot use it: %v", err)
		return nil, true
	}
	f.field("pq-issuer", "can use it (seed present and consistent)")
	return key.Public(), true
}

var keyFormatDetail = map[signer.KeyFormat]string{
	signer.FormatSeed:     "seed format (32-byte seed)",
	signer.FormatExpanded: "expandedKey format (no seed)",
	signer.FormatBoth:     "both format (seed and expanded key)",
	signer.FormatUnknown:  "format unknown",
}

// describeMatches lists the certificates and CSRs of the input that carry
// pub.
func describeMatches(f fieldWriter, pub crypto.PublicKey, all []*item) {
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return
	}
	var matches []string
	others := false
	for _, o := range all {
		switch {
		case o.cert != nil:
			others = true
			if eq.Equal(o.cert.PublicKey) {
				matches = append(matches, o.ref())
			}
		case o.csr != nil:
			others = true
			if eq.Equal(o.csr.PublicKey) {
				matches = append(matches, o.ref())
			}
		}
	}
	switch {
	case len(matches) > 0:
		f.list("Belongs to", matches)
	case others:
		f.field("Belongs to", "none of the certificates or CSRs in the input")
	}
}

// publicKeyName names a public key; rawSPKI names what crypto/x509 does not
// parse.
func publicKeyName(pub crypto.PublicKey, rawSPKI []byte) string {
	switch k := pub.(type) {
	case *mldsa.PublicKey:
		return k.Parameters().String()
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d-bit", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(rawSPKI, &spki); err != nil {
		return "unknown"
	}
	return signer.OIDName(spki.Algorithm.Algorithm)
}

// publicKeyDetail is publicKeyName with the size of an ML-DSA key, which
// differs a lot between parameter sets.
func publicKeyDetail(pub crypto.PublicKey, rawSPKI []byte) string {
	if k, ok := pub.(*mldsa.PublicKey); ok {
		return fmt.Sprintf("%s (%d-byte public key)", k.Parameters(), len(k.Bytes()))
	}
	return publicKeyName(pub, rawSPKI)
}

// signatureName names a signature algorithm, falling back to the OID in
// the signed structure's outer SEQUENCE for ones crypto/x509 does not know.
func signatureName(alg x509.SignatureAlgorithm, raw []byte) string {
	if alg != x509.UnknownSignatureAlgorithm {
		return alg.String()
	}
	var signed struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(raw, &signed); err != nil {
		return "unknown"
	}
	return signer.OIDName(signed.Algorithm.Algorithm)
}

var extKeyUsageName = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:                            "any",
	x509.ExtKeyUsageServerAuth:                     "serverAuth",
	x509.ExtKeyUsageClientAuth:                     "clientAuth",
	x509.ExtKeyUsageCodeSigning:                    "codeSigning",
	x509.ExtKeyUsageEmailProtection:                "emailProtection",
	x509.ExtKeyUsageIPSECEndSystem:                 "ipsecEndSystem",
	x509.ExtKeyUsageIPSECTunnel:                    "ipsecTunnel",
	x509.ExtKeyUsageIPSECUser:                      "ipsecUser",
	x509.ExtKeyUsageTimeStamping:                   "timeStamping",
	x509.ExtKeyUsageOCSPSigning:                    "OCSPSigning",
	x509.ExtKeyUsageMicrosoftServerGatedCrypto:     "msSGC",
	x509.ExtKeyUsageNetscapeServerGatedCrypto:      "nsSGC",
	x509.ExtKeyUsageMicrosoftCommercialCodeSigning: "msCodeCom",
	x509.ExtKeyUsageMicrosoftKernelCodeSigning:     "msKernelCodeSigning",
}

func extKeyUsageNames(cert *x509.Certificate) []string {
	var names []string
	for _, u := range cert.ExtKeyUsage {
		names = append(names, extKeyUsageName[u])
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		names = append(names, oid.String())
	}
	return names
}

func urlStrings(urls []*url.URL) []string {
	var s []string
	for _, u := range urls {
		s = append(s, u.String())
	}
	return s
}

func ipStrings(ips []net.IP) []string {
	var s []string
	for _, ip := range ips {
		s = append(s, ip.String())
	}
	return s
}

// hexColons prints bytes as OpenSSL does, so serials and key IDs can be
// compared with its output.
func hexColons(b []byte) string {
	parts := make([]string, len(b))
	for i := range b {
		parts[i] = hex.EncodeToString(b[i : i+1])
	}
	return strings.Join(parts, ":")
}

// humanDuration rounds d to days, or hours and minutes below two days.
func humanDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

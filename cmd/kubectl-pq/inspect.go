package main

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/mldsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

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
	t := fmt.Sprintf("[%d] %s", it.index, quote(it.block.Type, ""))
	if it.source != "" {
		t += " (" + quote(it.source, "()") + ")"
	}
	return t
}

// ref names an item in another item's report.
func (it *item) ref() string {
	switch {
	case it.cert != nil:
		return fmt.Sprintf("[%d] %s", it.index, formatDN(it.cert.RawSubject))
	case it.csr != nil:
		return fmt.Sprintf("[%d] CSR %s", it.index, formatDN(it.csr.RawSubject))
	}
	return fmt.Sprintf("[%d]", it.index)
}

func (c *cli) inspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect [FILE|-]",
		Short: "Print certificates, CSRs, keys and Secrets, including ML-DSA ones",
		Long: `Prints every PEM block of FILE (default: standard input) in readable form:
certificates (with whether each is signed by the next one), certificate
requests (with whether their signature verifies), private keys (algorithm
and PKCS#8 format, never key material) and public keys. ML-DSA keys and
signatures are named (ML-DSA-44/65/87), which OpenSSL 3.0 cannot do.
Every extension is shown, critical ones marked, and every kind of subject
alternative name. A string from the input that holds control characters,
invalid UTF-8, quotes or separators is printed quoted, Go-style ("a\x00b").

FILE may also be a Secret manifest, YAML or JSON, for example
  kubectl get secret mesh-ca -o yaml | kubectl pq inspect
in which case tls.crt, ca.crt and tls.key are decoded and inspected.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("inspect takes one file, got %d", len(args))
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			path := "-"
			if len(args) == 1 {
				path = args[0]
			}
			return c.inspect(path)
		},
	}
}

func (c *cli) inspect(path string) error {
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
		// The message may quote the manifest (a Secret's name, a kind).
		return fmt.Errorf("%s: %s", name, escapeText(err.Error()))
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
			for _, f := range secretFields(s) {
				if !bytes.Contains(s.Data[f], []byte("-----BEGIN ")) {
					fmt.Fprintf(w, "  %s: not PEM, skipped\n", quote(f, ":"))
					continue
				}
				sources = append(sources, source{name: f, data: s.Data[f]})
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
func secretHeading(s *corev1.Secret) string {
	h := quote(s.Name, "/ ()")
	if s.Namespace != "" {
		h = quote(s.Namespace, "/ ()") + "/" + h
	}
	if s.Type != "" {
		h += " (type " + quote(string(s.Type), " ()") + ")"
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
			f.field("Error", "cannot parse the certificate: %s", escapeText(it.err.Error()))
			return false
		}
		c.describeCertificate(f, it, all)
	case it.block.Type == "CERTIFICATE REQUEST" || it.block.Type == "NEW CERTIFICATE REQUEST":
		if it.err != nil {
			f.field("Error", "cannot parse the CSR: %s", escapeText(it.err.Error()))
			return false
		}
		describeCSR(f, it)
	case strings.HasSuffix(it.block.Type, "PRIVATE KEY"):
		return describePrivateKey(f, it, all)
	case it.block.Type == "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(it.block.Bytes)
		if err != nil {
			f.field("Error", "cannot parse the public key: %s", escapeText(err.Error()))
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
	f.field("Subject", "%s", formatDN(cert.RawSubject))
	f.field("Issuer", "%s", formatDN(cert.RawIssuer))
	f.field("Serial", "%s", formatSerial(cert))
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
	if !hasExtension(cert.Extensions, oidExtBasicConstraints) {
		f.field("Basic constraints", "absent")
	}
	describeExtensions(f, cert.Extensions)
	for _, oid := range cert.UnhandledCriticalExtensions {
		f.field("Warning", "critical extension %s is not one crypto/x509 handles: a verifier that does not know it must reject the certificate (RFC 5280 §4.2)", oid)
	}
	f.field("Signed by next", "%s", chainStatus(it, all))
	if _, ok := cert.PublicKey.(*mldsa.PublicKey); ok {
		if bad := cert.KeyUsage & (x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageKeyAgreement); bad != 0 {
			f.field("Warning", "an ML-DSA key with %s: RFC 9881 §5 forbids it", strings.Join(signer.KeyUsageNames(bad), ", "))
		}
	}
}

// formatSerial prints the serial as OpenSSL does, with the sign crypto/x509
// still accepts from old CAs.
func formatSerial(cert *x509.Certificate) string {
	if cert.SerialNumber.Sign() < 0 {
		return "-" + hexColons(cert.SerialNumber.Bytes())
	}
	return hexColons(cert.SerialNumber.Bytes())
}

// chainStatus says whether the item's certificate is signed by the next
// certificate of the input (each certificate followed by its issuer, as in
// tls.crt), or by itself.
func chainStatus(it *item, all []*item) string {
	cert := it.cert
	if bytes.Equal(cert.RawIssuer, cert.RawSubject) {
		if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			return fmt.Sprintf("no: self-issued, but its signature does not verify with its own key: %s", escapeText(err.Error()))
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
		return fmt.Sprintf("- (last certificate; its issuer %s is not in the input)", formatDN(cert.RawIssuer))
	}
	if err := cert.CheckSignatureFrom(next.cert); err != nil {
		return fmt.Sprintf("no: not signed by %s: %s", next.ref(), escapeText(err.Error()))
	}
	return fmt.Sprintf("yes, signature verifies with %s", next.ref())
}

func describeCSR(f fieldWriter, it *item) {
	csr := it.csr
	f.field("Subject", "%s", formatDN(csr.RawSubject))
	f.field("Signature algorithm", "%s", signatureName(csr.SignatureAlgorithm, csr.Raw))
	f.field("Public key", "%s", publicKeyDetail(csr.PublicKey, csr.RawSubjectPublicKeyInfo))
	describeExtensions(f, csr.Extensions)
	if err := csr.CheckSignature(); err != nil {
		f.field("Signature", "DOES NOT VERIFY with its own public key (tampered or corrupt): %s", escapeText(err.Error()))
		return
	}
	f.field("Signature", "verifies (proves possession of the private key)")
	// The signer's checks are the issuer's; show its verdict on this block.
	if _, err := signer.ParseCSR(pem.EncodeToMemory(it.block)); err != nil {
		f.field("pq-issuer", "would refuse it: %s", escapeText(err.Error()))
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
			f.field("Error", "cannot parse the PKCS#1 RSA key: %s", escapeText(err.Error()))
			return false
		}
		f.field("Algorithm", "%s", publicKeyName(&k.PublicKey, nil))
		f.field("Format", "PKCS#1 (traditional OpenSSL RSA format)")
		pub = &k.PublicKey
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(der)
		if err != nil {
			f.field("Error", "cannot parse the SEC 1 EC key: %s", escapeText(err.Error()))
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
			f.field("Note", "cannot parse the key: %s", escapeText(err.Error()))
			return nil, true
		}
		// Not every key is a crypto.Signer: X25519 (*ecdh.PrivateKey)
		// only agrees keys, but all have a public half.
		k, ok := key.(interface{ Public() crypto.PublicKey })
		if !ok {
			f.field("Algorithm", "%s", signer.OIDName(info.Algorithm))
			f.field("Format", "%s", version)
			return nil, true
		}
		pub := k.Public()
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
		f.field("pq-issuer", "cannot use it: %s", escapeText(err.Error()))
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
		f.list("Belongs to", capList(matches))
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
	case *ecdh.PublicKey:
		return fmt.Sprintf("%s (key agreement only)", k.Curve())
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

// Printing what the input says. Every string that comes from the input goes
// through quote (a value) or escapeText (a message that may embed one), so
// that a certificate cannot forge lines of the report or drive the
// auditor's terminal with control bytes.

// quote prints s as it is when it is plain text, and Go-quoted otherwise:
// when it is empty, holds a control byte (NUL, ESC, newline, DEL), invalid
// UTF-8, an invisible or bidirectional character, a quote or backslash, or
// one of special, the characters that would let it pass for more than one
// value where it is printed.
func quote(s, special string) string {
	if s != "" && !strings.ContainsAny(s, special) && strconv.Quote(s) == `"`+s+`"` {
		return s
	}
	return strconv.Quote(s)
}

// listItem quotes an item of a comma-separated list; names, URIs and
// addresses never hold a space, so one is quoted too.
func listItem(s string) string { return quote(s, ", ") }

// escapeText escapes, without quoting, what quote would escape: for parser
// messages, which may embed bytes of the input.
func escapeText(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// Distinguished names.

// attributeTypeAndValue is pkix's, with the value kept raw so that every
// string type, and values that are not strings at all, can be shown.
type attributeTypeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// rdnSET is a relative distinguished name; encoding/asn1 reads a type whose
// name ends in SET as a SET.
type rdnSET []attributeTypeAndValue

var attributeNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.5":                    "SERIALNUMBER",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.17":                   "POSTALCODE",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.1":       "emailAddress",
}

// formatDN prints a DER Name as RFC 4514 orders it (last RDN first, as
// pkix.Name.String and OpenSSL do), keeping every attribute, multi-valued
// RDNs and the encoded order, which pkix.Name does not. A value that is
// not plain text is quoted; one that is not a string is #hex (RFC 4514
// §2.4).
func formatDN(der []byte) string {
	var rdns []rdnSET
	if rest, err := asn1.Unmarshal(der, &rdns); err != nil || len(rest) != 0 {
		return "(a name that does not decode: " + hexPrefix(der) + ")"
	}
	if len(rdns) == 0 {
		return "(empty)"
	}
	parts := make([]string, 0, len(rdns))
	for i := len(rdns) - 1; i >= 0; i-- {
		atvs := make([]string, len(rdns[i]))
		for j, atv := range rdns[i] {
			name, ok := attributeNames[atv.Type.String()]
			if !ok {
				name = atv.Type.String()
			}
			atvs[j] = name + "=" + dnValue(atv.Value)
		}
		parts = append(parts, strings.Join(atvs, "+"))
	}
	return strings.Join(parts, ",")
}

func dnValue(v asn1.RawValue) string {
	s, ok := directoryString(v)
	switch {
	case !ok:
		return "#" + hex.EncodeToString(v.FullBytes)
	case strings.HasPrefix(s, "#"), strings.TrimSpace(s) != s:
		return strconv.Quote(s)
	}
	return quote(s, ",+")
}

// directoryString decodes the string types a name or an otherName may
// use. The bytes are taken as they are: quote shows what is not UTF-8.
func directoryString(v asn1.RawValue) (string, bool) {
	if v.Class != asn1.ClassUniversal || v.IsCompound {
		return "", false
	}
	switch v.Tag {
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagT61String, asn1.TagNumericString, 26: // 26: VisibleString
		return string(v.Bytes), true
	case asn1.TagBMPString:
		if len(v.Bytes)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(v.Bytes)/2)
		for i := range u {
			u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
		}
		return string(utf16.Decode(u)), true
	}
	return "", false
}

// Extensions.

var oidExtBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

// extensionDecoder decodes one extension: value into its one field, or
// fields (the SAN) into several.
type extensionDecoder struct {
	name   string
	value  func(der []byte) (string, error)
	fields func(der []byte) ([]field, error)
}

// field is one line of the report.
type field struct{ name, value string }

// extensionDecoders decodes the extensions a certificate of this issuer,
// or one an auditor compares it with, is likely to carry; any other is
// shown by OID with its length and first bytes.
var extensionDecoders = map[string]extensionDecoder{
	"2.5.29.15":         {name: "Key usage", value: keyUsage},
	"2.5.29.37":         {name: "Extended key usage", value: extKeyUsage},
	"2.5.29.19":         {name: "Basic constraints", value: basicConstraints},
	"2.5.29.14":         {name: "Subject key ID", value: subjectKeyID},
	"2.5.29.35":         {name: "Authority key ID", value: authorityKeyID},
	"2.5.29.17":         {name: "Subject alt names", fields: subjectAltNames},
	"2.5.29.30":         {name: "Name constraints", value: nameConstraints},
	"1.3.6.1.5.5.7.1.1": {name: "Authority info (AIA)", value: authorityInfoAccess},
	"2.5.29.31":         {name: "CRL distribution", value: crlDistributionPoints},
	"2.5.29.32":         {name: "Certificate policies", value: certificatePolicies},
}

func (d extensionDecoder) decode(der []byte) ([]field, error) {
	if d.fields != nil {
		return d.fields(der)
	}
	v, err := d.value(der)
	if err != nil {
		return nil, err
	}
	return []field{{d.name, v}}, nil
}

func hasExtension(exts []pkix.Extension, oid asn1.ObjectIdentifier) bool {
	for _, e := range exts {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// describeExtensions prints every extension in the order encoded: the known
// ones decoded, any other by OID, each critical one marked.
func describeExtensions(f fieldWriter, exts []pkix.Extension) {
	for _, e := range exts {
		critical := ""
		if e.Critical {
			critical = " (critical)"
		}
		d, known := extensionDecoders[e.Id.String()]
		if !known {
			f.field("Extension", "%s, %s%s", e.Id, hexPrefix(e.Value), critical)
			continue
		}
		fields, err := d.decode(e.Value)
		switch {
		case err != nil:
			f.field(d.name, "cannot decode (%s): %s%s", escapeText(err.Error()), hexPrefix(e.Value), critical)
		case len(fields) == 0:
			f.field(d.name, "none (empty extension)%s", critical)
		case d.fields != nil && critical != "":
			// A critical SAN is marked on a line of its own, not on one
			// of its lists of names.
			f.field(d.name, "critical")
			critical = ""
			fallthrough
		default:
			for i, fl := range fields {
				if i == 0 {
					fl.value += critical
				}
				f.field(fl.name, "%s", fl.value)
			}
		}
	}
}

func keyUsage(der []byte) (string, error) {
	var bits asn1.BitString
	if err := unmarshalAll(der, &bits, "a BIT STRING"); err != nil {
		return "", err
	}
	var ku x509.KeyUsage
	var extra []string
	for i := 0; i < bits.BitLength; i++ {
		switch {
		case bits.At(i) == 0:
		case i < 9: // digitalSignature (0) to decipherOnly (8), RFC 5280 §4.2.1.3
			ku |= 1 << i
		default:
			extra = append(extra, fmt.Sprintf("unknown bit %d", i))
		}
	}
	names := append(signer.KeyUsageNames(ku), capList(extra)...)
	if len(names) == 0 {
		return "none", nil
	}
	return strings.Join(names, ", "), nil
}

// extKeyUsageNames are crypto/x509's extended key usages, named as OpenSSL
// names them.
var extKeyUsageNames = map[string]string{
	"2.5.29.37.0":             "any",
	"1.3.6.1.5.5.7.3.1":       "serverAuth",
	"1.3.6.1.5.5.7.3.2":       "clientAuth",
	"1.3.6.1.5.5.7.3.3":       "codeSigning",
	"1.3.6.1.5.5.7.3.4":       "emailProtection",
	"1.3.6.1.5.5.7.3.5":       "ipsecEndSystem",
	"1.3.6.1.5.5.7.3.6":       "ipsecTunnel",
	"1.3.6.1.5.5.7.3.7":       "ipsecUser",
	"1.3.6.1.5.5.7.3.8":       "timeStamping",
	"1.3.6.1.5.5.7.3.9":       "OCSPSigning",
	"1.3.6.1.4.1.311.10.3.3":  "msSGC",
	"2.16.840.1.113730.4.1":   "nsSGC",
	"1.3.6.1.4.1.311.2.1.22":  "msCodeCom",
	"1.3.6.1.4.1.311.61.1.1":  "msKernelCodeSigning",
	"1.3.6.1.5.5.7.3.17":      "ipsecIKE",
	"1.3.6.1.4.1.311.20.2.2":  "msSmartcardLogin",
	"1.3.6.1.5.2.3.5":         "pkInitKDC",
	"1.3.6.1.4.1.11129.2.4.4": "certificateTransparency",
}

func extKeyUsage(der []byte) (string, error) {
	var oids []asn1.ObjectIdentifier
	if err := unmarshalAll(der, &oids, "a SEQUENCE of OIDs"); err != nil {
		return "", err
	}
	if len(oids) == 0 {
		return "none", nil
	}
	names := make([]string, len(oids))
	for i, oid := range oids {
		if n, ok := extKeyUsageNames[oid.String()]; ok {
			names[i] = n
		} else {
			names[i] = oid.String()
		}
	}
	return strings.Join(names, ", "), nil
}

func basicConstraints(der []byte) (string, error) {
	var bc struct {
		IsCA       bool `asn1:"optional"`
		MaxPathLen int  `asn1:"optional,default:-1"`
	}
	if err := unmarshalAll(der, &bc, "a basicConstraints SEQUENCE"); err != nil {
		return "", err
	}
	s := "CA:FALSE"
	if bc.IsCA {
		s = "CA:TRUE"
	}
	if bc.MaxPathLen >= 0 {
		s += fmt.Sprintf(", pathlen:%d", bc.MaxPathLen)
	}
	return s, nil
}

func subjectKeyID(der []byte) (string, error) {
	var id []byte
	if err := unmarshalAll(der, &id, "an OCTET STRING"); err != nil {
		return "", err
	}
	return hexColons(id), nil
}

// authorityKeyID prints the key identifier, and the issuer and serial
// number that RFC 5280 §4.2.1.1 allows instead or as well.
func authorityKeyID(der []byte) (string, error) {
	elems, err := sequenceOf(der)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, e := range elems {
		switch {
		case e.Class == asn1.ClassContextSpecific && e.Tag == 0:
			parts = append(parts, hexColons(e.Bytes))
		case e.Class == asn1.ClassContextSpecific && e.Tag == 1:
			names, err := generalNames(e.Bytes)
			if err != nil {
				return "", err
			}
			parts = append(parts, "issuer "+strings.Join(names, ", "))
		case e.Class == asn1.ClassContextSpecific && e.Tag == 2:
			parts = append(parts, "serial "+hexColons(e.Bytes))
		default:
			return "", fmt.Errorf("unexpected element %s", tagName(e))
		}
	}
	if len(parts) == 0 {
		return "empty", nil
	}
	return strings.Join(parts, "; "), nil
}

// subjectAltNames prints every GeneralName of the extension, which
// crypto/x509 only partly parses (it drops otherName, directoryName and
// registeredID): the list types on one line each, as the issuer's users
// know them, the structured ones on a line per name.
func subjectAltNames(der []byte) ([]field, error) {
	elems, err := sequenceOf(der)
	if err != nil {
		return nil, err
	}
	lists := map[string][]string{}
	var single []field
	for _, e := range elems {
		kind, v := generalName(e)
		switch kind {
		case "DNS", "email", "URI", "IP", "RID":
			lists[kind] = append(lists[kind], v)
		default:
			single = append(single, field{sanFieldNames[kind], v})
		}
	}
	var fields []field
	for _, kind := range []string{"DNS", "email", "URI", "IP", "RID"} {
		if len(lists[kind]) > 0 {
			fields = append(fields, field{sanFieldNames[kind], strings.Join(lists[kind], ", ")})
		}
	}
	return append(fields, single...), nil
}

var sanFieldNames = map[string]string{
	"DNS":          "DNS names",
	"email":        "Emails",
	"URI":          "URIs",
	"IP":           "IP addresses",
	"RID":          "Registered IDs",
	"othername":    "Other name",
	"DirName":      "Directory name",
	"X400":         "X.400 address",
	"EdiPartyName": "EDI party name",
	"unknown":      "Unknown name",
}

// nameConstraints prints the permitted and excluded subtrees.
func nameConstraints(der []byte) (string, error) {
	elems, err := sequenceOf(der)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, e := range elems {
		var label string
		switch {
		case e.Class == asn1.ClassContextSpecific && e.Tag == 0:
			label = "permitted "
		case e.Class == asn1.ClassContextSpecific && e.Tag == 1:
			label = "excluded "
		default:
			return "", fmt.Errorf("unexpected element %s", tagName(e))
		}
		subtrees, err := elements(e.Bytes)
		if err != nil {
			return "", err
		}
		names := make([]string, 0, len(subtrees))
		for _, st := range subtrees {
			// GeneralSubtree: the base name, then a minimum and maximum
			// that RFC 5280 §4.2.1.10 says must be absent.
			inner, err := sequenceOf(st.FullBytes)
			if err != nil {
				return "", err
			}
			if len(inner) == 0 {
				return "", errors.New("a subtree without a name")
			}
			n := compactGeneralName(inner[0])
			if len(inner) > 1 {
				n += fmt.Sprintf(" (with %d minimum/maximum fields)", len(inner)-1)
			}
			names = append(names, n)
		}
		parts = append(parts, label+strings.Join(names, ", "))
	}
	if len(parts) == 0 {
		return "empty", nil
	}
	return strings.Join(parts, "; "), nil
}

var accessMethodNames = map[string]string{
	"1.3.6.1.5.5.7.48.1": "OCSP",
	"1.3.6.1.5.5.7.48.2": "CA issuers",
}

func authorityInfoAccess(der []byte) (string, error) {
	descs, err := sequenceOf(der)
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(descs))
	for _, d := range descs {
		inner, err := sequenceOf(d.FullBytes)
		if err != nil {
			return "", err
		}
		var method asn1.ObjectIdentifier
		if len(inner) != 2 {
			return "", fmt.Errorf("an access description with %d elements, expected 2", len(inner))
		}
		if err := unmarshalAll(inner[0].FullBytes, &method, "an access method OID"); err != nil {
			return "", err
		}
		name, ok := accessMethodNames[method.String()]
		if !ok {
			name = method.String()
		}
		parts = append(parts, name+" "+compactGeneralName(inner[1]))
	}
	return strings.Join(parts, ", "), nil
}

func crlDistributionPoints(der []byte) (string, error) {
	points, err := sequenceOf(der)
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(points))
	for _, p := range points {
		inner, err := sequenceOf(p.FullBytes)
		if err != nil {
			return "", err
		}
		var desc []string
		for _, e := range inner {
			switch {
			case e.Class == asn1.ClassContextSpecific && e.Tag == 0:
				// distributionPoint: fullName [0] or nameRelativeToCRLIssuer [1].
				dp, err := elements(e.Bytes)
				if err != nil {
					return "", err
				}
				for _, n := range dp {
					if n.Class == asn1.ClassContextSpecific && n.Tag == 0 {
						names, err := generalNames(n.Bytes)
						if err != nil {
							return "", err
						}
						desc = append(desc, names...)
					} else {
						desc = append(desc, "relative name "+hexPrefix(n.FullBytes))
					}
				}
			case e.Class == asn1.ClassContextSpecific && e.Tag == 1:
				desc = append(desc, "reasons "+hexPrefix(e.Bytes))
			case e.Class == asn1.ClassContextSpecific && e.Tag == 2:
				names, err := generalNames(e.Bytes)
				if err != nil {
					return "", err
				}
				desc = append(desc, "CRL issuer "+strings.Join(names, ", "))
			default:
				return "", fmt.Errorf("unexpected element %s", tagName(e))
			}
		}
		parts = append(parts, strings.Join(desc, " "))
	}
	return strings.Join(parts, ", "), nil
}

var policyNames = map[string]string{
	"2.5.29.32.0":    "anyPolicy",
	"2.23.140.1.1":   "CA/B extended validation",
	"2.23.140.1.2.1": "CA/B domain validated",
	"2.23.140.1.2.2": "CA/B organization validated",
	"2.23.140.1.2.3": "CA/B individual validated",
}

func certificatePolicies(der []byte) (string, error) {
	policies, err := sequenceOf(der)
	if err != nil {
		return "", err
	}
	parts := make([]string, 0, len(policies))
	for _, p := range policies {
		inner, err := sequenceOf(p.FullBytes)
		if err != nil {
			return "", err
		}
		if len(inner) == 0 || len(inner) > 2 {
			return "", fmt.Errorf("a policy with %d elements, expected 1 or 2", len(inner))
		}
		var oid asn1.ObjectIdentifier
		if err := unmarshalAll(inner[0].FullBytes, &oid, "a policy OID"); err != nil {
			return "", err
		}
		s := oid.String()
		if n, ok := policyNames[s]; ok {
			s += " (" + n + ")"
		}
		if len(inner) == 2 {
			q, err := policyQualifiers(inner[1].FullBytes)
			if err != nil {
				return "", err
			}
			s += " " + q
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", "), nil
}

// policyQualifiers prints a CPS pointer as its URI and a user notice by
// name; RFC 5280 §4.2.1.4 defines no others.
func policyQualifiers(der []byte) (string, error) {
	quals, err := sequenceOf(der)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, q := range quals {
		inner, err := sequenceOf(q.FullBytes)
		if err != nil {
			return "", err
		}
		var oid asn1.ObjectIdentifier
		if len(inner) != 2 {
			return "", fmt.Errorf("a policy qualifier with %d elements, expected 2", len(inner))
		}
		if err := unmarshalAll(inner[0].FullBytes, &oid, "a qualifier OID"); err != nil {
			return "", err
		}
		switch s, isString := directoryString(inner[1]); {
		case oid.String() == "1.3.6.1.5.5.7.2.1" && isString:
			parts = append(parts, "CPS "+listItem(s))
		case oid.String() == "1.3.6.1.5.5.7.2.2":
			parts = append(parts, "user notice "+hexPrefix(inner[1].FullBytes))
		default:
			parts = append(parts, "qualifier "+oid.String()+" "+hexPrefix(inner[1].FullBytes))
		}
	}
	return "(" + strings.Join(parts, ", ") + ")", nil
}

// General names (RFC 5280 §4.2.1.6).

// otherNameTypes names the otherName forms an auditor is likely to meet.
var otherNameTypes = map[string]string{
	"1.3.6.1.4.1.311.20.2.3": "UPN",
	"1.3.6.1.5.5.7.8.3":      "permanentIdentifier",
	"1.3.6.1.5.5.7.8.4":      "hardwareModuleName",
	"1.3.6.1.5.5.7.8.5":      "XmppAddr",
	"1.3.6.1.5.5.7.8.7":      "SRVName",
	"1.3.6.1.5.5.7.8.9":      "SmtpUTF8Mailbox",
}

// generalName decodes one GeneralName into its kind, as OpenSSL prefixes
// it (DNS, email, URI, IP, RID, othername, DirName, X400, EdiPartyName),
// and its value ready to print.
func generalName(v asn1.RawValue) (kind, value string) {
	if v.Class != asn1.ClassContextSpecific {
		return "unknown", tagName(v) + " " + hexPrefix(v.FullBytes)
	}
	switch v.Tag {
	case 0:
		return "othername", otherName(v)
	case 1:
		return "email", listItem(string(v.Bytes))
	case 2:
		return "DNS", listItem(string(v.Bytes))
	case 3:
		return "X400", hexPrefix(v.Bytes)
	case 4:
		return "DirName", formatDN(v.Bytes)
	case 5:
		return "EdiPartyName", hexPrefix(v.Bytes)
	case 6:
		return "URI", listItem(string(v.Bytes))
	case 7:
		return "IP", ipAddress(v.Bytes)
	case 8:
		var oid asn1.ObjectIdentifier
		if _, err := asn1.UnmarshalWithParams(v.FullBytes, &oid, "tag:8"); err != nil {
			return "RID", "(an OID that does not decode: " + hexPrefix(v.Bytes) + ")"
		}
		return "RID", oid.String()
	}
	return "unknown", tagName(v) + " " + hexPrefix(v.FullBytes)
}

// otherName prints type-id and value; a string value is decoded and
// always quoted, anything else is shown as DER.
func otherName(v asn1.RawValue) string {
	var typeID asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(v.Bytes, &typeID)
	if err != nil {
		return "(does not decode: " + hexPrefix(v.Bytes) + ")"
	}
	name := typeID.String()
	if n, ok := otherNameTypes[name]; ok {
		name = n + " (" + name + ")"
	}
	var explicit, inner asn1.RawValue
	if err := unmarshalAll(rest, &explicit, "a value"); err != nil || explicit.Class != asn1.ClassContextSpecific || explicit.Tag != 0 || !explicit.IsCompound {
		return name + ": (a value that does not decode: " + hexPrefix(rest) + ")"
	}
	if err := unmarshalAll(explicit.Bytes, &inner, "a value"); err != nil {
		return name + ": (a value that does not decode: " + hexPrefix(explicit.Bytes) + ")"
	}
	if s, ok := directoryString(inner); ok {
		return name + ": " + strconv.Quote(s)
	}
	return name + ": " + hexPrefix(inner.FullBytes)
}

// ipAddress prints an address, or in name constraints an address and mask.
func ipAddress(b []byte) string {
	switch len(b) {
	case net.IPv4len, net.IPv6len:
		return net.IP(b).String()
	case 2 * net.IPv4len, 2 * net.IPv6len:
		ip, mask := net.IP(b[:len(b)/2]), net.IPMask(b[len(b)/2:])
		if ones, bits := mask.Size(); bits != 0 {
			return fmt.Sprintf("%s/%d", ip, ones)
		}
		return fmt.Sprintf("%s/%s", ip, hexColons(mask))
	}
	return "(" + strconv.Itoa(len(b)) + " bytes, not an address: " + hexPrefix(b) + ")"
}

// compactGeneralName prints a name as OpenSSL does inside other
// extensions: "DNS:example.com", "URI:http://...".
func compactGeneralName(v asn1.RawValue) string {
	kind, value := generalName(v)
	return kind + ":" + value
}

// generalNames decodes the contents of a GeneralNames SEQUENCE.
func generalNames(b []byte) ([]string, error) {
	elems, err := elements(b)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(elems))
	for i, e := range elems {
		names[i] = compactGeneralName(e)
	}
	return names, nil
}

// DER helpers.

// unmarshalAll is asn1.Unmarshal that refuses trailing bytes. Its error
// names what was expected: encoding/asn1's own messages describe Go types.
func unmarshalAll(der []byte, v any, what string) error {
	rest, err := asn1.Unmarshal(der, v)
	switch {
	case err != nil:
		return fmt.Errorf("not %s", what)
	case len(rest) != 0:
		return fmt.Errorf("%d bytes after %s", len(rest), what)
	}
	return nil
}

// sequenceOf splits a DER SEQUENCE into its elements.
func sequenceOf(der []byte) ([]asn1.RawValue, error) {
	var seq asn1.RawValue
	if err := unmarshalAll(der, &seq, "a SEQUENCE"); err != nil {
		return nil, err
	}
	if seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, fmt.Errorf("%s where a SEQUENCE was expected", tagName(seq))
	}
	return elements(seq.Bytes)
}

// elements splits concatenated DER values.
func elements(b []byte) ([]asn1.RawValue, error) {
	var out []asn1.RawValue
	for len(b) > 0 {
		var v asn1.RawValue
		var err error
		if b, err = asn1.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func tagName(v asn1.RawValue) string {
	if v.Class == asn1.ClassContextSpecific {
		return fmt.Sprintf("[%d]", v.Tag)
	}
	return fmt.Sprintf("tag %d (class %d)", v.Tag, v.Class)
}

// hexPrefix shows the length and the first bytes of a value that is not
// decoded, enough to recognise it without flooding the report.
func hexPrefix(b []byte) string {
	const show = 16
	if len(b) <= show {
		return fmt.Sprintf("%d bytes %s", len(b), hexColons(b))
	}
	return fmt.Sprintf("%d bytes %s:...", len(b), hexColons(b[:show]))
}

// capList shortens a list that the input can make as long as it likes (a
// key repeated with thousands of certificates, a BIT STRING of millions of
// bits), so that the report stays proportional to what is worth reading.
func capList(values []string) []string {
	const show = 10
	if len(values) <= show {
		return values
	}
	return append(values[:show:show], fmt.Sprintf("and %d more", len(values)-show))
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

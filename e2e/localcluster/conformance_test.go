package localcluster_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/e2e/localcluster"
)

// TestConformance runs the cases of cert-manager's issuer conformance suite
// (test/e2e/suite/conformance/certificates/tests.go, v1.21, the suite cert-manager runs against its
// own issuers and against an external issuer) through pq-issuer, against a PQClusterIssuer and a
// PQIssuer as the suite does for ClusterIssuers and Issuers. Each case creates what cert-manager's
// creates, waits as WaitForCertificateReadyAndDoneIssuing does, and checks the Secret with ports of
// cert-manager's validation helpers (test/e2e/framework/helper/validation/certificates). Where
// pq-issuer's policy refuses a case by design, the test asserts the refusal and its rule instead.
// cert-manager v1.21's OtherNames and LiteralCertificateSubject feature gates are Beta, on by
// default, so the in-process controllers put otherNames and literal subjects in the CSR.
//
//	cert-manager case                                         outcome here
//	basic, defaulted, single distinct DNS Name                issued (RSA 2048, cert-manager's default)
//	CA certificate with the CA basicConstraint set            refused: pq-issuer signs no CA (isCA)
//	ECDSA / Ed25519, defaulted, single distinct DNS Name      issued, no keyEncipherment (RFC 8813/8410)
//	basic, defaulted, single Common Name                      issued
//	otherName SAN values (two UPNs) and an emailAddress       refused: no otherName by default; issued,
//	                                                          SAN as cert-manager expects, when
//	                                                          spec.policy.otherNames lists the UPN OID
//	single distinct DNS Name with a literal subject           issued, the subject as written
//	ECDSA / Ed25519, defaulted, single Common Name            issued
//	IP Address; DNS Name and IP; Common Name and IP           issued
//	Email Address                                             issued
//	Common Name and URI SAN; only a URI SAN                   refused: spiffe://cluster.local/ns/sandbox/
//	                                                          names another namespace; issued with an
//	                                                          ID of the request's own namespace
//	2 DNS Names, one copied to the CN; DNS Name, distinct CN  issued
//	DNS Name and a duration (896h)                            issued, 896h
//	wildcard DNS Name; wildcard and its apex                  issued
//	arbitrary key usages (signing, data enc., server, client) issued
//	long domain (a 63-character label)                        issued
//	Gateway with issuerRef and Certificate field annotations  issued, 999h, renewal 111h before expiry
//	same private key once tls.crt is deleted from the Secret  issued again: same key, new certificate
//	updating a Certificate with a new DNS Name                issued again, with both names
//	ACME Renewal Information (ARI)                            not run: ACME only
//	the two Ingress cases                                     not run: no ingress-shim here
//	Gateway with an extra protocol; ListenerSet               not run: skipped upstream unless set up
//	Gateway with ignore-tls-listeners                         not run: gateway-shim only, issues nothing
//	pq-issuer's own, beside the suite: 30m; usage "any"       refused: under 1h; needs policy.usages
func TestConformance(t *testing.T) {
	pc := startPQCluster(t, localcluster.Options{Extra: inProcessPQIssuer})
	c := pc.c
	root := offlineRoot(t, "ML-DSA-65", "Conformance Root")
	suites := []*conformanceSuite{
		{kind: "PQClusterIssuer", namespace: "conformance-cluster"},
		{kind: "PQIssuer", namespace: "conformance-issuer"},
	}
	for _, s := range suites {
		create(t, c, namespace(s.namespace))
		secretNamespace := s.namespace
		if s.kind == "PQClusterIssuer" {
			secretNamespace = pc.ClusterResourceNamespace()
		}
		pc.installCASecret(t, root, secretNamespace, conformanceCASecret)
		for _, upn := range []bool{false, true} {
			issuer := s.issuer(upn)
			create(t, c, issuer)
			waitIssuer(t, c, issuer, metav1.ConditionTrue, v1alpha1.ReasonVerified)
		}
		// Everything at once, as the suite's cases run in parallel: the subtests then only wait.
		s.cases = conformanceCases(s.namespace)
		for _, cc := range s.cases {
			s.start(t, c, cc)
		}
	}
	for _, s := range suites {
		t.Run(s.kind, func(t *testing.T) {
			for _, cc := range s.cases {
				t.Run(cc.name, func(t *testing.T) { s.check(t, c, cc) })
			}
		})
	}
}

// conformanceCASecret holds the CA of every issuer of the test, in the cluster resource namespace
// for PQClusterIssuers and in the suite's namespace for PQIssuers.
const conformanceCASecret = "conformance-ca"

// oidUPN is the otherName type of the suite's otherNames case: a Microsoft UPN.
var oidUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}

// conformanceSuite is one run of the cases against one issuer kind, each case's Certificate in
// namespace.
type conformanceSuite struct {
	kind      string
	namespace string
	cases     []*conformanceCase
}

// conformanceCase is a case of cert-manager's suite (name is its It text) or one of pq-issuer's
// limits.
type conformanceCase struct {
	name string
	// slug names the Certificate and its Secret.
	slug string
	spec cmapi.CertificateSpec
	// upn signs with the issuer whose spec.policy.otherNames lists oidUPN.
	upn bool
	// gateway has gateway-shim make the Certificate, for spec.CommonName, from a Gateway annotated
	// with the issuer, the common name, duration 999h and renewBefore 111h.
	gateway bool
	// refused is the rule a PolicyViolation names; "" when pq-issuer issues the certificate.
	refused string
	// checks come on top of conformanceChecks, as the case's extraValidations do upstream.
	checks []certCheck
	// then runs once the certificate is issued and checked: re-issuance.
	then func(t *testing.T, c client.Client, crt *cmapi.Certificate, first *x509.Certificate)
	// crt is the case's Certificate, once start has created it (or its Gateway).
	crt *cmapi.Certificate
}

// issuer is the suite's issuer; with upn, the one whose policy allows UPN otherNames.
func (s *conformanceSuite) issuer(upn bool) v1alpha1.Issuer {
	name := s.issuerName(upn)
	var issuer v1alpha1.Issuer = pqIssuer(s.namespace, name, conformanceCASecret)
	if s.kind == "PQClusterIssuer" {
		issuer = pqClusterIssuer(name, conformanceCASecret)
	}
	if upn {
		issuer.GetSpec().Policy = &v1alpha1.IssuerPolicy{OtherNames: []string{oidUPN.String()}}
	}
	return issuer
}

func (s *conformanceSuite) issuerName(upn bool) string {
	if upn {
		return s.namespace + "-upn"
	}
	return s.namespace
}

// start creates the case's Certificate, or the Gateway gateway-shim makes it from.
func (s *conformanceSuite) start(t *testing.T, c client.Client, cc *conformanceCase) {
	t.Helper()
	ref := cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: s.kind, Name: s.issuerName(cc.upn)}
	secret := "e2e-conformance-tls-" + cc.slug
	if cc.gateway {
		createGateway(t, c, s.namespace, s.namespace+"-"+cc.slug, cc.spec.CommonName, secret, map[string]string{
			cmapi.IngressIssuerNameAnnotationKey: ref.Name,
			cmapi.IssuerKindAnnotationKey:        ref.Kind,
			cmapi.IssuerGroupAnnotationKey:       ref.Group,
			cmapi.CommonNameAnnotationKey:        cc.spec.CommonName,
			cmapi.DurationAnnotationKey:          cc.spec.Duration.Duration.String(),
			cmapi.RenewBeforeAnnotationKey:       cc.spec.RenewBefore.Duration.String(),
		})
		// gateway-shim names the Certificate after the listener's Secret.
		cc.crt = &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: secret}}
		return
	}
	spec := *cc.spec.DeepCopy()
	spec.SecretName, spec.IssuerRef = secret, ref
	cc.crt = &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.namespace, Name: "e2e-conformance-" + cc.slug,
			Annotations: map[string]string{"conformance.cert-manager.io/test-name": s.kind + " " + cc.name},
		},
		Spec: spec,
	}
	create(t, c, cc.crt)
}

// check waits for the case's outcome and checks it.
func (s *conformanceSuite) check(t *testing.T, c client.Client, cc *conformanceCase) {
	crt := cc.crt
	if cc.refused != "" {
		cr := waitRequestFor(t, c, crt, cmapi.CertificateRequestReasonFailed)
		want := fmt.Sprintf("%s %s cannot sign this request (PolicyViolation)", s.kind, s.issuerName(cc.upn))
		if msg := readyMessage(cr); !strings.Contains(msg, want) || !strings.Contains(msg, cc.refused) || cr.Status.FailureTime == nil {
			t.Fatalf("CertificateRequest %s: Failed with %q (failureTime %v); want %q and %q", cr.Name, msg, cr.Status.FailureTime, want, cc.refused)
		}
		// cert-manager passes the refusal on to the Certificate and backs off.
		waitFor(t, c, "Certificate "+crt.Name+" Issuing=False with the refusal", crt, func() bool {
			issuing := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionIssuing)
			return issuing != nil && issuing.Status == cmmeta.ConditionFalse && strings.Contains(issuing.Message, cc.refused) &&
				crt.Status.LastFailureTime != nil
		})
		if hasCondition(crt.Status.Conditions, cmapi.CertificateConditionReady) {
			t.Fatalf("Certificate %s is Ready although its request was refused", crt.Name)
		}
		return
	}
	waitIssuedAndDone(t, c, crt)
	cert := validateCertificate(t, c, crt, cc.checks)
	if cc.then != nil && !t.Failed() {
		cc.then(t, c, crt, cert)
	}
}

// waitIssuedAndDone is cert-manager's WaitForCertificateReadyAndDoneIssuing: Ready for the current
// generation, no issuance under way.
func waitIssuedAndDone(t *testing.T, c client.Client, crt *cmapi.Certificate) {
	t.Helper()
	waitFor(t, c, "Certificate "+crt.Namespace+"/"+crt.Name+" Ready and done issuing", crt, func() bool {
		ready := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionReady)
		issuing := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionIssuing)
		return ready != nil && ready.Status == cmmeta.ConditionTrue && ready.ObservedGeneration == crt.Generation &&
			(issuing == nil || issuing.Status != cmmeta.ConditionTrue) && crt.Status.NextPrivateKeySecretName == nil
	}, requestsOf(t, c, crt))
}

// requestsOf describes the CertificateRequests of crt.
func requestsOf(t *testing.T, c client.Client, crt *cmapi.Certificate) func() string {
	return func() string {
		var list cmapi.CertificateRequestList
		if err := c.List(t.Context(), &list, client.InNamespace(crt.Namespace)); err != nil {
			return fmt.Sprintf("listing CertificateRequests in %s: %v", crt.Namespace, err)
		}
		mine := slices.DeleteFunc(list.Items, func(cr cmapi.CertificateRequest) bool {
			owner := metav1.GetControllerOf(&cr)
			return owner == nil || owner.UID != crt.UID
		})
		return "CertificateRequests of " + crt.Name + ":\n" + dump(mine)
	}
}

// validateCertificate is cert-manager's ValidateCertificate with the validation set of an issuer
// that supports every feature the cases use: verifyTLSSecret stands for ExpectValidKeysInSecret,
// ExpectValidCertificate and ExpectCorrectTrustChain (and checks that tls.key matches tls.crt), the
// rest are ported below. It returns the certificate.
func validateCertificate(t *testing.T, c client.Client, crt *cmapi.Certificate, extra []certCheck) *x509.Certificate {
	t.Helper()
	secret := &corev1.Secret{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, secret); err != nil {
		t.Fatal(err)
	}
	var dnsName string
	if len(crt.Spec.DNSNames) > 0 {
		dnsName = crt.Spec.DNSNames[0]
	}
	cert := verifyTLSSecret(t, secret, dnsName)
	for _, check := range append(slices.Clone(conformanceChecks), extra...) {
		if err := check(crt, secret, cert); err != nil {
			t.Error(err)
		}
	}
	return cert
}

// certCheck is cert-manager's certificates.ValidationFunc, given the parsed tls.crt.
type certCheck func(crt *cmapi.Certificate, secret *corev1.Secret, cert *x509.Certificate) error

// conformanceChecks are cert-manager's CertificateSetForUnsupportedFeatureSet for an issuer that
// supports the features (ExpectValidAdditionalOutputFormats left out: no case asks for one), and
// what pq-issuer adds: an ML-DSA-65 signature and the key usages of the key type.
var conformanceChecks = []certCheck{
	expectDNSNamesToMatch, expectOrganizationToMatch, expectValidPrivateKeyData, expectValidBasicConstraints,
	expectValidNotAfterDate, expectValidAnnotations, expectConditionReadyObservedGeneration,
	expectValidCommonName, expectURIsToMatch, expectEmailsToMatch, expectIPsToMatch, expectDurationToMatch,
	expectCARootCertificate, expectMLDSA65Signature, expectKeyUsagesOfKeyType,
}

func expectDNSNamesToMatch(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	for _, name := range crt.Spec.DNSNames {
		if !slices.Contains(cert.DNSNames, name) {
			return fmt.Errorf("expected a certificate valid for DNS names %v, got %v", crt.Spec.DNSNames, cert.DNSNames)
		}
	}
	return nil
}

func expectOrganizationToMatch(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	var want []string
	if crt.Spec.Subject != nil {
		want = crt.Spec.Subject.Organizations
	}
	if crt.Spec.LiteralSubject != "" {
		rdns, err := pki.UnmarshalSubjectStringToRDNSequence(crt.Spec.LiteralSubject)
		if err != nil {
			return err
		}
		for _, rdn := range rdns {
			for _, atv := range rdn {
				if s, ok := atv.Value.(string); ok && atv.Type.Equal(pki.OIDConstants.Organization) {
					want = append(want, s)
				}
			}
		}
	}
	if !util.EqualUnsorted(cert.Subject.Organization, want) {
		return fmt.Errorf("expected a certificate for O %v, got O %v", want, cert.Subject.Organization)
	}
	return nil
}

func expectValidPrivateKeyData(crt *cmapi.Certificate, secret *corev1.Secret, _ *x509.Certificate) error {
	key, err := pki.DecodePrivateKeyBytes(secret.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return err
	}
	if violations := pki.PrivateKeyMatchesSpec(key, crt.Spec); len(violations) > 0 {
		return fmt.Errorf("private key does not match the Certificate: %s", strings.Join(violations, ", "))
	}
	return nil
}

func expectValidBasicConstraints(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	if crt.Spec.IsCA != cert.IsCA {
		return fmt.Errorf("expected the CA basicConstraint to be %v, got %v", crt.Spec.IsCA, cert.IsCA)
	}
	return nil
}

func expectValidNotAfterDate(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	if crt.Status.NotAfter == nil || !cert.NotAfter.Equal(crt.Status.NotAfter.Time) {
		return fmt.Errorf("expected status.notAfter %v to be the certificate's notAfter %v", crt.Status.NotAfter, cert.NotAfter)
	}
	return nil
}

func expectValidAnnotations(crt *cmapi.Certificate, secret *corev1.Secret, _ *x509.Certificate) error {
	if got := secret.Annotations[cmapi.CertificateNameKey]; got != crt.Name {
		return fmt.Errorf("expected the Secret's %s annotation to be %q, got %q", cmapi.CertificateNameKey, crt.Name, got)
	}
	return nil
}

func expectConditionReadyObservedGeneration(crt *cmapi.Certificate, _ *corev1.Secret, _ *x509.Certificate) error {
	ready := apiutil.GetCertificateCondition(crt, cmapi.CertificateConditionReady)
	if ready == nil || ready.Status != cmmeta.ConditionTrue || ready.ObservedGeneration != crt.Generation {
		return fmt.Errorf("expected Ready=True for generation %d, got %+v", crt.Generation, ready)
	}
	return nil
}

// expectValidCommonName: the requested CN, or when none was requested, none or one of the SANs.
func expectValidCommonName(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	cn, ips := cert.Subject.CommonName, pki.IPAddressesToString(cert.IPAddresses)
	if crt.Spec.CommonName == "" && cn != "" {
		if !slices.Contains(cert.DNSNames, cn) && !slices.Contains(ips, cn) {
			return fmt.Errorf("expected a common name that is one of the DNS names %v or IP addresses %v, got %q", cert.DNSNames, ips, cn)
		}
	} else if cn != crt.Spec.CommonName {
		return fmt.Errorf("expected the common name %q, got %q", crt.Spec.CommonName, cn)
	}
	return nil
}

func expectURIsToMatch(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	if got := pki.URLsToString(cert.URIs); !util.EqualUnsorted(got, crt.Spec.URIs) {
		return fmt.Errorf("expected URIs %v, got %v", crt.Spec.URIs, got)
	}
	return nil
}

func expectEmailsToMatch(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	if !util.EqualUnsorted(cert.EmailAddresses, crt.Spec.EmailAddresses) {
		return fmt.Errorf("expected emails %v, got %v", crt.Spec.EmailAddresses, cert.EmailAddresses)
	}
	return nil
}

func expectIPsToMatch(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	if got := pki.IPAddressesToString(cert.IPAddresses); !util.EqualUnsorted(got, crt.Spec.IPAddresses) {
		return fmt.Errorf("expected IP addresses %v, got %v", crt.Spec.IPAddresses, got)
	}
	return nil
}

// expectDurationToMatch: the requested duration (cert-manager's default if none), within 30 s.
func expectDurationToMatch(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	want, got := apiutil.DefaultCertDuration(crt.Spec.Duration), cert.NotAfter.Sub(cert.NotBefore)
	if (got - want).Abs() > 30*time.Second {
		return fmt.Errorf("expected a duration of %s, got %s (notBefore %s, notAfter %s)", want, got, cert.NotBefore, cert.NotAfter)
	}
	return nil
}

func expectCARootCertificate(_ *cmapi.Certificate, secret *corev1.Secret, _ *x509.Certificate) error {
	ca, err := pki.DecodeX509CertificateBytes(secret.Data[cmmeta.TLSCAKey])
	if err != nil {
		return err
	}
	if !bytes.Equal(ca.RawSubject, ca.RawIssuer) {
		return fmt.Errorf("expected ca.crt to be a root CA, got %s issued by %s", ca.Subject, ca.Issuer)
	}
	return nil
}

func expectMLDSA65Signature(_ *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	if got := cert.SignatureAlgorithm.String(); got != "ML-DSA-65" {
		return fmt.Errorf("expected an ML-DSA-65 signature, got %s", got)
	}
	return nil
}

// expectKeyUsagesOfKeyType: cert-manager's default usages (digital signature, key encipherment)
// lose key encipherment on ECDSA (RFC 8813) and Ed25519 (RFC 8410) keys, and keep it on RSA keys.
func expectKeyUsagesOfKeyType(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	if len(crt.Spec.Usages) > 0 {
		return nil
	}
	want := x509.KeyUsageDigitalSignature
	if cert.PublicKeyAlgorithm == x509.RSA {
		want |= x509.KeyUsageKeyEncipherment
	}
	if cert.KeyUsage != want {
		return fmt.Errorf("expected key usage %#b for a %s key, got %#b", want, cert.PublicKeyAlgorithm, cert.KeyUsage)
	}
	return nil
}

// expectUsages is the usages case's extra validations (ExpectKeyUsageExtKeyUsageClientAuth and
// friends): each of these usages is in the certificate.
func expectUsages(ku x509.KeyUsage, eku ...x509.ExtKeyUsage) certCheck {
	return func(_ *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
		for _, e := range eku {
			if !slices.Contains(cert.ExtKeyUsage, e) {
				return fmt.Errorf("expected extended key usage %v, got %v", e, cert.ExtKeyUsage)
			}
		}
		if cert.KeyUsage&ku != ku {
			return fmt.Errorf("expected key usage %#b, got %#b", ku, cert.KeyUsage)
		}
		return nil
	}
}

// expectLiteralSubject is the literal subject case's: the subject, attribute by attribute and in
// order, is the one spec.literalSubject spells.
func expectLiteralSubject(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
	var got pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &got); err != nil || len(rest) != 0 {
		return fmt.Errorf("parsing the subject: %v (%d bytes left)", err, len(rest))
	}
	want, err := pki.UnmarshalSubjectStringToRDNSequence(crt.Spec.LiteralSubject)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("expected the subject %q, got %q", crt.Spec.LiteralSubject, got)
	}
	return nil
}

// expectSANs is the otherNames case's HaveSameSANsAs: the SAN extension holds exactly the
// GeneralNames OpenSSL writes for `subjectAltName=email:E,otherName:msUPN;UTF8:U,...`, in any order.
func expectSANs(emails, upns []string) certCheck {
	return func(_ *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
		var want [][]byte
		for _, e := range emails {
			// rfc822Name: [1] IMPLICIT IA5String
			der, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte(e)})
			if err != nil {
				return err
			}
			want = append(want, der)
		}
		for _, u := range upns {
			der, err := upnName(u)
			if err != nil {
				return err
			}
			want = append(want, der)
		}
		i := slices.IndexFunc(cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) })
		if i < 0 {
			return fmt.Errorf("the certificate has no SAN extension")
		}
		var names []asn1.RawValue
		if rest, err := asn1.Unmarshal(cert.Extensions[i].Value, &names); err != nil || len(rest) != 0 {
			return fmt.Errorf("parsing the SAN extension: %v (%d bytes left)", err, len(rest))
		}
		got := make([][]byte, len(names))
		for j, n := range names {
			got[j] = n.FullBytes
		}
		slices.SortFunc(got, bytes.Compare)
		slices.SortFunc(want, bytes.Compare)
		if !slices.EqualFunc(got, want, bytes.Equal) {
			return fmt.Errorf("expected the GeneralNames %x, got %x", want, got)
		}
		return nil
	}
}

// upnName is the otherName GeneralName of a Microsoft UPN: [0] { OID, [0] EXPLICIT UTF8String }.
func upnName(value string) ([]byte, error) {
	utf8, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(value)})
	if err != nil {
		return nil, err
	}
	return asn1.MarshalWithParams(struct {
		TypeID asn1.ObjectIdentifier
		Value  asn1.RawValue
	}{oidUPN, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: utf8}}, "tag:0")
}

// expectGatewayFields is the Gateway case's: gateway-shim turned the annotations into the
// Certificate's fields, and cert-manager schedules the renewal renewBefore ahead of notAfter.
func expectGatewayFields(host string) certCheck {
	return func(crt *cmapi.Certificate, _ *corev1.Secret, cert *x509.Certificate) error {
		s := crt.Spec
		if !slices.Equal(s.DNSNames, []string{host}) || s.CommonName != host || s.Duration == nil || s.Duration.Duration != 999*time.Hour ||
			s.RenewBefore == nil || s.RenewBefore.Duration != 111*time.Hour {
			return fmt.Errorf("gateway-shim's Certificate: dnsNames %v, commonName %q, duration %v, renewBefore %v; want %s, %s, 999h, 111h",
				s.DNSNames, s.CommonName, s.Duration, s.RenewBefore, host, host)
		}
		if want := cert.NotAfter.Add(-111 * time.Hour); crt.Status.RenewalTime == nil || crt.Status.RenewalTime.Sub(want).Abs() > time.Second {
			return fmt.Errorf("expected renewalTime %s (notAfter - renewBefore), got %v", want, crt.Status.RenewalTime)
		}
		return nil
	}
}

// conformanceCases are the suite's cases for Certificates in namespace, with names made the way
// the suite makes them (e2eutil.RandomSubdomain of example.com).
func conformanceCases(namespace string) []*conformanceCase {
	domain := func() string { return rand.String(5) + ".example.com" }
	cn := func() string { return "test-common-name-" + rand.String(10) }
	ecdsa := &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm}
	ed25519 := &cmapi.CertificatePrivateKey{Algorithm: cmapi.Ed25519KeyAlgorithm}
	const sandboxID = "spiffe://cluster.local/ns/sandbox/sa/foo"
	ownID := "spiffe://cluster.local/ns/" + namespace + "/sa/foo"
	const otherNamesCase = "should issue a certificate with a couple valid otherName SAN values set as well as an emailAddress"
	otherNames := cmapi.CertificateSpec{
		OtherNames: []cmapi.OtherName{
			{OID: oidUPN.String(), UTF8Value: "upn@domain.test"},
			{OID: oidUPN.String(), UTF8Value: "upn@domain2.test"},
		},
		EmailAddresses: []string{"email@domain.test"},
		CommonName:     "someCN-" + rand.String(10),
	}
	literalHost := fmt.Sprintf("*.%s.foo-long.bar.com", rand.String(10))
	cnCopied, wildcardApex, gatewayHost := domain(), domain(), domain()

	return []*conformanceCase{
		{name: "should issue a basic, defaulted certificate for a single distinct DNS Name", slug: "dns",
			spec: cmapi.CertificateSpec{DNSNames: []string{domain()}}},
		{name: "should issue a CA certificate with the CA basicConstraint set", slug: "ca",
			spec:    cmapi.CertificateSpec{IsCA: true, DNSNames: []string{domain()}},
			refused: "the request asks for a CA certificate (isCA: true); pq-issuer signs only leaf certificates"},
		{name: "should issue an ECDSA, defaulted certificate for a single distinct DNS Name", slug: "ecdsa-dns",
			spec: cmapi.CertificateSpec{PrivateKey: ecdsa, DNSNames: []string{domain()}}},
		{name: "should issue an Ed25519, defaulted certificate for a single distinct DNS Name", slug: "ed25519-dns",
			spec: cmapi.CertificateSpec{PrivateKey: ed25519, DNSNames: []string{domain()}}},
		{name: "should issue a basic, defaulted certificate for a single Common Name", slug: "cn",
			spec: cmapi.CertificateSpec{CommonName: cn()}},
		{name: otherNamesCase, slug: "othernames", spec: otherNames,
			refused: "is not allowed: the issuer's policy.otherNames does not name that OID"},
		{name: otherNamesCase + " (spec.policy.otherNames lists the UPN OID)", slug: "othernames-upn", spec: otherNames, upn: true,
			checks: []certCheck{expectSANs(otherNames.EmailAddresses, []string{"upn@domain.test", "upn@domain2.test"})}},
		{name: "should issue a basic, defaulted certificate for a single distinct DNS Name with a literal subject", slug: "literal-subject",
			spec: cmapi.CertificateSpec{
				LiteralSubject: fmt.Sprintf("CN=%s,OU=FooLong,OU=Bar,OU=Baz,OU=Dept.,O=Corp.", literalHost),
				DNSNames:       []string{literalHost},
			},
			checks: []certCheck{expectLiteralSubject}},
		{name: "should issue an ECDSA, defaulted certificate for a single Common Name", slug: "ecdsa-cn",
			spec: cmapi.CertificateSpec{PrivateKey: ecdsa, CommonName: cn()}},
		{name: "should issue an Ed25519, defaulted certificate for a single Common Name", slug: "ed25519-cn",
			spec: cmapi.CertificateSpec{PrivateKey: ed25519, CommonName: cn()}},
		{name: "should issue a certificate that defines an IP Address", slug: "ip",
			spec: cmapi.CertificateSpec{IPAddresses: []string{"127.0.0.1"}}},
		{name: "should issue a certificate that defines a DNS Name and IP Address", slug: "dns-ip",
			spec: cmapi.CertificateSpec{IPAddresses: []string{"127.0.0.1"}, DNSNames: []string{domain()}}},
		{name: "should issue a certificate that defines a Common Name and IP Address", slug: "cn-ip",
			spec: cmapi.CertificateSpec{IPAddresses: []string{"127.0.0.1"}, CommonName: cn()}},
		{name: "should issue a certificate that defines an Email Address", slug: "email",
			spec: cmapi.CertificateSpec{EmailAddresses: []string{"alice@example.com"}}},
		{name: "should issue a certificate that defines a Common Name and URI SAN", slug: "cn-uri",
			spec:    cmapi.CertificateSpec{URIs: []string{sandboxID}, CommonName: cn()},
			refused: fmt.Sprintf("the SPIFFE ID %q does not name the request's namespace %q", sandboxID, namespace)},
		{name: "should issue a certificate that defines a Common Name and URI SAN (the SPIFFE ID of the request's namespace)", slug: "cn-uri-own",
			spec: cmapi.CertificateSpec{URIs: []string{ownID}, CommonName: cn()}},
		{name: "should issue a certificate that defines a 2 distinct DNS Names with one copied to the Common Name", slug: "dns-cn-copied",
			spec: cmapi.CertificateSpec{CommonName: cnCopied, DNSNames: []string{cnCopied, domain()}}},
		{name: "should issue a certificate that defines a distinct DNS Name and another distinct Common Name", slug: "dns-cn-distinct",
			spec: cmapi.CertificateSpec{CommonName: domain(), DNSNames: []string{domain()}}},
		{name: "should issue a certificate that defines a DNS Name and sets a duration", slug: "duration",
			spec: cmapi.CertificateSpec{DNSNames: []string{domain()}, Duration: &metav1.Duration{Duration: 896 * time.Hour}}},
		{name: "should issue a certificate that defines a wildcard DNS Name", slug: "wildcard",
			spec: cmapi.CertificateSpec{DNSNames: []string{"*." + domain()}}},
		{name: "should issue a certificate that includes only a URISANs name", slug: "uri",
			spec:    cmapi.CertificateSpec{URIs: []string{sandboxID}},
			refused: fmt.Sprintf("the SPIFFE ID %q does not name the request's namespace %q", sandboxID, namespace)},
		{name: "should issue a certificate that includes only a URISANs name (the SPIFFE ID of the request's namespace)", slug: "uri-own",
			spec: cmapi.CertificateSpec{URIs: []string{ownID}}},
		{name: "should issue a certificate that includes arbitrary key usages", slug: "usages",
			spec: cmapi.CertificateSpec{DNSNames: []string{domain()}, Usages: []cmapi.KeyUsage{
				cmapi.UsageSigning, cmapi.UsageDataEncipherment, cmapi.UsageServerAuth, cmapi.UsageClientAuth,
			}},
			checks: []certCheck{expectUsages(x509.KeyUsageDigitalSignature|x509.KeyUsageDataEncipherment,
				x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)}},
		{name: "should issue a certificate that defines a long domain", slug: "long-domain",
			spec: cmapi.CertificateSpec{DNSNames: []string{rand.String(63) + ".example.com"}}},
		{name: "should issue a certificate that defines a wildcard DNS Name and its apex DNS Name", slug: "wildcard-apex",
			spec: cmapi.CertificateSpec{DNSNames: []string{"*." + wildcardApex, wildcardApex}}},
		{name: "Creating a Gateway with annotations for issuerRef and other Certificate fields", slug: "gateway", gateway: true,
			spec: cmapi.CertificateSpec{
				CommonName: gatewayHost,
				Duration:   &metav1.Duration{Duration: 999 * time.Hour}, RenewBefore: &metav1.Duration{Duration: 111 * time.Hour},
			},
			checks: []certCheck{expectGatewayFields(gatewayHost)}},
		{name: "should issue another certificate with the same private key if the existing certificate and CertificateRequest are deleted", slug: "same-key",
			spec: cmapi.CertificateSpec{
				DNSNames: []string{domain()}, PrivateKey: &cmapi.CertificatePrivateKey{RotationPolicy: cmapi.RotationPolicyNever},
			},
			then: reissueWithSameKey},
		{name: "should allow updating an existing certificate with a new DNS Name", slug: "new-dns-name",
			spec: cmapi.CertificateSpec{DNSNames: []string{domain()}},
			then: reissueWithNewDNSName(domain())},
		{name: "pq-issuer: a duration under the 1h minimum is refused", slug: "duration-30m",
			spec:    cmapi.CertificateSpec{DNSNames: []string{domain()}, Duration: &metav1.Duration{Duration: 30 * time.Minute}},
			refused: "the requested duration 30m0s is under the 1h0m0s minimum"},
		{name: `pq-issuer: the usage "any" is refused unless spec.policy.usages names it`, slug: "usage-any",
			spec:    cmapi.CertificateSpec{DNSNames: []string{domain()}, Usages: []cmapi.KeyUsage{cmapi.UsageAny}},
			refused: `the usage "any" (anyExtendedKeyUsage) makes the certificate good for every purpose; the issuer's policy.usages must name it`},
	}
}

// reissueWithSameKey: with rotationPolicy Never, emptying tls.crt has cert-manager issue a new
// certificate for the same key.
func reissueWithSameKey(t *testing.T, c client.Client, crt *cmapi.Certificate, first *x509.Certificate) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: crt.Namespace, Name: crt.Spec.SecretName}}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(secret), secret); err != nil {
			return err
		}
		secret.Data[corev1.TLSCertKey] = []byte{}
		return c.Update(t.Context(), secret)
	}); err != nil {
		t.Fatalf("Emptying tls.crt of Secret %s: %v", secret.Name, err)
	}
	waitFor(t, c, "Secret "+secret.Name+" to hold a certificate again", secret, func() bool {
		return len(secret.Data[corev1.TLSCertKey]) > 0
	}, requestsOf(t, c, crt))
	second := verifyTLSSecret(t, secret, crt.Spec.DNSNames[0])
	if same, err := pki.PublicKeysEqual(first.PublicKey, second.PublicKey); err != nil || !same {
		t.Fatalf("the re-issued certificate has another key (equal: %v, %v)", same, err)
	}
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("the Secret holds the old certificate (serial %x) again, not a new one", first.SerialNumber)
	}
}

// reissueWithNewDNSName: a DNS name added to the spec is in the next certificate.
func reissueWithNewDNSName(name string) func(*testing.T, client.Client, *cmapi.Certificate, *x509.Certificate) {
	return func(t *testing.T, c client.Client, crt *cmapi.Certificate, first *x509.Certificate) {
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.Get(t.Context(), client.ObjectKeyFromObject(crt), crt); err != nil {
				return err
			}
			crt.Spec.DNSNames = append(crt.Spec.DNSNames, name)
			return c.Update(t.Context(), crt)
		}); err != nil {
			t.Fatalf("Adding DNS name %s to Certificate %s: %v", name, crt.Name, err)
		}
		waitIssuedAndDone(t, c, crt)
		second := validateCertificate(t, c, crt, nil)
		if second.SerialNumber.Cmp(first.SerialNumber) == 0 || !slices.Contains(second.DNSNames, name) {
			t.Fatalf("after adding %s the Secret holds serial %x for %v; the first certificate was %x for %v",
				name, second.SerialNumber, second.DNSNames, first.SerialNumber, first.DNSNames)
		}
	}
}

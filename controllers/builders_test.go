package controllers

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/prometheus/client_golang/prometheus"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/internal/testkeys"
	"github.com/pq-issuer/pq-issuer/signer"
)

// Names shared by the tests.
const (
	testNamespace            = "demo"
	clusterResourceNamespace = "cert-manager"
	caSecret                 = "ca"
	issuerName               = "mesh"
	crName                   = "api-1"
	testPendingRecheck       = 42 * time.Second
	testMaxRetryDuration     = 30 * time.Minute
)

// ---------------------------------------------------------------------------
// Clock

// newTestClock starts a fake clock at a random time one to ten years from now, so that nothing in
// the controllers can silently rely on the wall clock: a time.Now() where the injected clock
// belongs makes certificates invalid at the fake time. The start is logged to reproduce a failure.
func newTestClock(t testing.TB) *clocktesting.FakeClock {
	t.Helper()
	const year = 365 * 24 * time.Hour
	start := time.Now().UTC().Add(year + time.Duration(mrand.Int64N(int64(9*year))))
	t.Logf("fake clock starts at %s", start.Format(time.RFC3339Nano))
	return clocktesting.NewFakeClock(start)
}

// ---------------------------------------------------------------------------
// Test environment: a fake API server and the two reconcilers sharing one CASource, as
// SetupWithManager wires them.

type testEnv struct {
	Client   client.WithWatch
	Clock    *clocktesting.FakeClock
	Recorder *events.FakeRecorder
	Registry *prometheus.Registry
	Metrics  *Metrics
	CAs      *CASource
}

type envOptions struct {
	objects     []client.Object
	interceptor *interceptor.Funcs
}

type envOption func(*envOptions)

func withObjects(objs ...client.Object) envOption {
	return func(o *envOptions) { o.objects = append(o.objects, objs...) }
}

func withInterceptor(f interceptor.Funcs) envOption {
	return func(o *envOptions) { o.interceptor = &f }
}

// newFakeClientBuilder is the fake API server with the status subresources and the field indexes
// of controllers/setup.go.
func newFakeClientBuilder(t testing.TB) *fake.ClientBuilder {
	t.Helper()
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.PQIssuer{}, &v1alpha1.PQClusterIssuer{}, &cmapi.CertificateRequest{}, &certificatesv1.PodCertificateRequest{},
			&certificatesv1.CertificateSigningRequest{}).
		WithIndex(&certificatesv1.PodCertificateRequest{}, signerNameField, func(o client.Object) []string { return []string{signerNameOf(o)} }).
		WithIndex(&certificatesv1.CertificateSigningRequest{}, signerNameField, func(o client.Object) []string { return []string{signerNameOf(o)} })
	// The same extract functions as SetupWithManager's.
	for _, kind := range issuerKinds {
		b = b.WithIndex(kind.New(), caSecretNameField, func(o client.Object) []string {
			return []string{o.(v1alpha1.Issuer).GetSpec().CASecretName}
		})
	}
	return b.WithIndex(&cmapi.CertificateRequest{}, issuerRefField, func(o client.Object) []string {
		ref := o.(*cmapi.CertificateRequest).Spec.IssuerRef
		if _, ok := issuerKindOf(ref); !ok {
			return nil
		}
		return []string{issuerRefValue(ref.Kind, ref.Name)}
	})
}

func newTestEnv(t testing.TB, clk *clocktesting.FakeClock, opts ...envOption) *testEnv {
	t.Helper()
	var o envOptions
	for _, opt := range opts {
		opt(&o)
	}
	b := newFakeClientBuilder(t).WithObjects(o.objects...)
	if o.interceptor != nil {
		b = b.WithInterceptorFuncs(*o.interceptor)
	}
	c := b.Build()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{
		Client:   c,
		Clock:    clk,
		Recorder: events.NewFakeRecorder(100),
		Registry: reg,
		Metrics:  m,
		CAs:      &CASource{Metadata: caSecretCache{c}, API: c},
	}
}

func (e *testEnv) issuerReconciler(kind IssuerKind) *IssuerReconciler {
	return &IssuerReconciler{
		Kind: kind, Client: e.Client, APIReader: e.Client, CAs: e.CAs, Recorder: e.Recorder, Clock: e.Clock, Metrics: e.Metrics,
		ClusterResourceNamespace: clusterResourceNamespace,
		ClusterTrustBundles:      true,
	}
}

func (e *testEnv) requestReconciler() *CertificateRequestReconciler {
	return &CertificateRequestReconciler{
		Client: e.Client, APIReader: decodingReader{e.Client}, CAs: e.CAs, Recorder: e.Recorder, Clock: e.Clock, Metrics: e.Metrics,
		ClusterResourceNamespace: clusterResourceNamespace,
		PendingRecheck:           testPendingRecheck,
		MaxRetryDuration:         testMaxRetryDuration,
	}
}

func (e *testEnv) reconcileIssuer(t testing.TB, kind IssuerKind, key types.NamespacedName) (ctrl.Result, error) {
	t.Helper()
	return e.issuerReconciler(kind).Reconcile(context.Background(), reconcile.Request{NamespacedName: key})
}

func (e *testEnv) reconcileRequest(t testing.TB, key types.NamespacedName) (ctrl.Result, error) {
	t.Helper()
	return e.requestReconciler().Reconcile(context.Background(), reconcile.Request{NamespacedName: key})
}

func (e *testEnv) getIssuer(t testing.TB, kind IssuerKind, key types.NamespacedName) v1alpha1.Issuer {
	t.Helper()
	issuer := kind.New()
	if err := e.Client.Get(context.Background(), key, issuer); err != nil {
		t.Fatalf("getting %s %s: %v", kind.Name, key, err)
	}
	return issuer
}

func (e *testEnv) getRequest(t testing.TB, key types.NamespacedName) *cmapi.CertificateRequest {
	t.Helper()
	cr := &cmapi.CertificateRequest{}
	if err := e.Client.Get(context.Background(), key, cr); err != nil {
		t.Fatalf("getting CertificateRequest %s: %v", key, err)
	}
	return cr
}

// drainEvents returns the events recorded so far. FakeRecorder records synchronously, so after a
// Reconcile returned every event it emitted is in the channel.
func (e *testEnv) drainEvents() []string {
	var got []string
	for {
		select {
		case ev := <-e.Recorder.Events:
			got = append(got, ev)
		default:
			return got
		}
	}
}

// wantEvent is an event expected on the FakeRecorder: "<type> <reason> <note>", with the note
// containing Contains.
type wantEvent struct {
	Type, Reason string
	Contains     []string
}

// expectEvents drains the recorder and fails unless it holds exactly want, in order.
func (e *testEnv) expectEvents(t testing.TB, want ...wantEvent) {
	t.Helper()
	got := e.drainEvents()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		prefix := w.Type + " " + w.Reason + " "
		if !strings.HasPrefix(got[i], prefix) {
			t.Errorf("event %d is %q, want it to start with %q", i, got[i], prefix)
		}
		for _, s := range w.Contains {
			if !strings.Contains(got[i], s) {
				t.Errorf("event %d is %q, want it to contain %q", i, got[i], s)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Conditions

// wantCondition is an expected Ready condition: status, reason and substrings of the message.
type wantCondition struct {
	Status   string
	Reason   string
	Contains []string
}

func checkIssuerReady(t testing.TB, issuer v1alpha1.Issuer, want wantCondition) {
	t.Helper()
	c := meta.FindStatusCondition(issuer.GetStatus().Conditions, v1alpha1.ConditionReady)
	if c == nil {
		t.Fatalf("%s has no Ready condition, want %s/%s", issuer.GetName(), want.Status, want.Reason)
	}
	if string(c.Status) != want.Status || c.Reason != want.Reason {
		t.Errorf("Ready is %s/%s (%q), want %s/%s", c.Status, c.Reason, c.Message, want.Status, want.Reason)
	}
	for _, s := range want.Contains {
		if !strings.Contains(c.Message, s) {
			t.Errorf("Ready message %q does not contain %q", c.Message, s)
		}
	}
	if c.ObservedGeneration != issuer.GetGeneration() {
		t.Errorf("Ready observedGeneration %d, want the issuer's generation %d", c.ObservedGeneration, issuer.GetGeneration())
	}
	if n := len(issuer.GetStatus().Conditions); n != 1 {
		t.Errorf("issuer has %d conditions, want only Ready", n)
	}
}

func requestReady(cr *cmapi.CertificateRequest) *cmapi.CertificateRequestCondition {
	for i := range cr.Status.Conditions {
		if cr.Status.Conditions[i].Type == cmapi.CertificateRequestConditionReady {
			return &cr.Status.Conditions[i]
		}
	}
	return nil
}

func checkRequestReady(t testing.TB, cr *cmapi.CertificateRequest, want wantCondition) {
	t.Helper()
	c := requestReady(cr)
	if c == nil {
		t.Fatalf("CertificateRequest %s has no Ready condition, want %s/%s", cr.Name, want.Status, want.Reason)
	}
	if string(c.Status) != want.Status || c.Reason != want.Reason {
		t.Errorf("Ready is %s/%s (%q), want %s/%s", c.Status, c.Reason, c.Message, want.Status, want.Reason)
	}
	for _, s := range want.Contains {
		if !strings.Contains(c.Message, s) {
			t.Errorf("Ready message %q does not contain %q", c.Message, s)
		}
	}
}

// ---------------------------------------------------------------------------
// CAs

// testCA is a CA as the controllers see it: the loaded CA and its Secret's tls.crt and tls.key.
type testCA struct {
	*signer.CA
	CertPEM, KeyPEM []byte
}

func loadTestCA(t testing.TB, certPEM, keyPEM []byte, now time.Time) testCA {
	t.Helper()
	ca, err := signer.LoadCA(certPEM, keyPEM, now)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{CA: ca, CertPEM: certPEM, KeyPEM: keyPEM}
}

// newRootCA creates a root CA, valid from a minute before now for d, through the production path.
func newRootCA(t testing.TB, alg signer.Algorithm, now time.Time, d time.Duration) testCA {
	t.Helper()
	certPEM, keyPEM, err := signer.CreateRootCA(signer.CAOptions{
		Algorithm: alg, Subject: pkix.Name{CommonName: "Test Root " + string(alg), Organization: []string{"pq-issuer tests"}}, Duration: d,
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	return loadTestCA(t, certPEM, keyPEM, now)
}

// newIntermediateCA creates an intermediate under parent; its tls.crt holds the whole chain.
func newIntermediateCA(t testing.TB, parent testCA, alg signer.Algorithm, now time.Time, d time.Duration) testCA {
	t.Helper()
	certPEM, keyPEM, err := parent.CreateIntermediate(signer.CAOptions{
		Algorithm: alg, Subject: pkix.Name{CommonName: "Test Intermediate " + string(alg)}, Duration: d,
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	return loadTestCA(t, certPEM, keyPEM, now)
}

// newMLDSALeafCertPEM is a self-signed ML-DSA certificate that is not a CA, with its key.
func newMLDSALeafCertPEM(t testing.TB, now time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := signer.GenerateKey(signer.MLDSA65)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Not A CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err = key.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM
}

// newECDSACAPEM is a well-formed classical CA, which pq-issuer must refuse.
func newECDSACAPEM(t testing.TB, now time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key := testkeys.New(t, "ECDSA-P256")
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "Classical CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// ---------------------------------------------------------------------------
// Secrets

type secretOption func(*corev1.Secret)

// newSecret is a kubernetes.io/tls Secret marked as a CA Secret; without options it is empty.
func newSecret(namespace, name string, opts ...secretOption) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{v1alpha1.CASecretLabel: v1alpha1.CASecretLabelValue}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// withCAData sets tls.crt and tls.key to ca's.
func withCAData(ca testCA) secretOption {
	return withTLS(ca.CertPEM, ca.KeyPEM)
}

func withTLS(certPEM, keyPEM []byte) secretOption {
	return func(s *corev1.Secret) {
		s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = certPEM, keyPEM
	}
}

func withoutData(key string) secretOption {
	return func(s *corev1.Secret) { delete(s.Data, key) }
}

// withLabel sets the CA Secret label to value, or removes it when value is "".
func withLabel(value string) secretOption {
	return func(s *corev1.Secret) {
		if value == "" {
			delete(s.Labels, v1alpha1.CASecretLabel)
			return
		}
		s.Labels[v1alpha1.CASecretLabel] = value
	}
}

// ---------------------------------------------------------------------------
// Issuers

type issuerOption func(v1alpha1.Issuer)

// newIssuer builds an issuer of kind (key.Namespace is ignored for a PQClusterIssuer) naming the
// Secret caSecret, at generation 1 as the API server would create it.
func newIssuer(kind IssuerKind, key types.NamespacedName, opts ...issuerOption) v1alpha1.Issuer {
	issuer := kind.New()
	issuer.SetName(key.Name)
	if !kind.ClusterScoped {
		issuer.SetNamespace(key.Namespace)
	}
	issuer.SetGeneration(1)
	issuer.GetSpec().CASecretName = caSecret
	for _, o := range opts {
		o(issuer)
	}
	return issuer
}

func newPQIssuer(namespace, name string, opts ...issuerOption) *v1alpha1.PQIssuer {
	return newIssuer(PQIssuerKind, types.NamespacedName{Namespace: namespace, Name: name}, opts...).(*v1alpha1.PQIssuer)
}

func newPQClusterIssuer(name string, opts ...issuerOption) *v1alpha1.PQClusterIssuer {
	return newIssuer(PQClusterIssuerKind, types.NamespacedName{Name: name}, opts...).(*v1alpha1.PQClusterIssuer)
}

func withCASecretName(name string) issuerOption {
	return func(i v1alpha1.Issuer) { i.GetSpec().CASecretName = name }
}

func withMaxDuration(d time.Duration) issuerOption {
	return func(i v1alpha1.Issuer) { i.GetSpec().MaxDuration = &metav1.Duration{Duration: d} }
}

func withPolicy(p *v1alpha1.IssuerPolicy) issuerOption {
	return func(i v1alpha1.Issuer) { i.GetSpec().Policy = p }
}

func newNamespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func withGeneration(g int64) issuerOption {
	return func(i v1alpha1.Issuer) { i.SetGeneration(g) }
}

// withIssuerReady sets a Ready condition observed at generation observed.
func withIssuerReady(status metav1.ConditionStatus, reason, message string, observed int64) issuerOption {
	return func(i v1alpha1.Issuer) {
		meta.SetStatusCondition(&i.GetStatus().Conditions, metav1.Condition{
			Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: message, ObservedGeneration: observed,
		})
	}
}

// issuerSecretNamespace is where an issuer of kind in namespace ns reads its Secret.
func issuerSecretNamespace(kind IssuerKind, ns string) string {
	if kind.ClusterScoped {
		return clusterResourceNamespace
	}
	return ns
}

// ---------------------------------------------------------------------------
// CertificateRequests

type requestOption func(*cmapi.CertificateRequest)

// newCertificateRequest builds a request; without options it names nothing and carries no CSR.
func newCertificateRequest(namespace, name string, opts ...requestOption) *cmapi.CertificateRequest {
	cr := &cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Generation: 1}}
	for _, o := range opts {
		o(cr)
	}
	return cr
}

func withIssuerRef(group, kind, name string) requestOption {
	return func(cr *cmapi.CertificateRequest) {
		cr.Spec.IssuerRef = cmmeta.IssuerReference{Group: group, Kind: kind, Name: name}
	}
}

// withPQIssuerRef names a pq-issuer issuer of kind.
func withPQIssuerRef(kind IssuerKind, name string) requestOption {
	return withIssuerRef(v1alpha1.GroupVersion.Group, kind.Name, name)
}

func withCSR(csrPEM []byte) requestOption {
	return func(cr *cmapi.CertificateRequest) { cr.Spec.Request = csrPEM }
}

func withUsages(usages ...cmapi.KeyUsage) requestOption {
	return func(cr *cmapi.CertificateRequest) { cr.Spec.Usages = usages }
}

func withDuration(d time.Duration) requestOption {
	return func(cr *cmapi.CertificateRequest) { cr.Spec.Duration = &metav1.Duration{Duration: d} }
}

func withIsCA(isCA bool) requestOption {
	return func(cr *cmapi.CertificateRequest) { cr.Spec.IsCA = isCA }
}

func withCondition(typ cmapi.CertificateRequestConditionType, status cmmeta.ConditionStatus, reason, message string) requestOption {
	return func(cr *cmapi.CertificateRequest) {
		cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
			Type: typ, Status: status, Reason: reason, Message: message,
		})
	}
}

// withApproved is what cert-manager's approver sets.
func withApproved() requestOption {
	return withCondition(cmapi.CertificateRequestConditionApproved, cmmeta.ConditionTrue, "cert-manager.io", "Certificate request has been approved by cert-manager.io")
}

func withDenied(reason, message string) requestOption {
	return withCondition(cmapi.CertificateRequestConditionDenied, cmmeta.ConditionTrue, reason, message)
}

// withIssuedStatus makes the request look issued by another writer.
func withIssuedStatus(certPEM []byte) requestOption {
	return func(cr *cmapi.CertificateRequest) {
		cr.Status.Certificate = certPEM
		withCondition(cmapi.CertificateRequestConditionReady, cmmeta.ConditionTrue, cmapi.CertificateRequestReasonIssued, "issued elsewhere")(cr)
	}
}

// ---------------------------------------------------------------------------
// Keys and CSRs

// csrCommonName is the subject of every test CSR; tamperCSR rewrites it.
const csrCommonName = "api.demo.svc"

type csrOption func(*x509.CertificateRequest)

// withCSRExtension adds an extension to the CSR, e.g. basicConstraints.
func withCSRExtension(ext pkix.Extension) csrOption {
	return func(c *x509.CertificateRequest) { c.ExtraExtensions = append(c.ExtraExtensions, ext) }
}

// withCSRURI adds a URI SAN, e.g. a SPIFFE ID, to the CSR.
func withCSRURI(t testing.TB, raw string) csrOption {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *x509.CertificateRequest) { c.URIs = append(c.URIs, u) }
}

// newCSRPEM is a PEM CSR signed by key, for csrCommonName with two DNS SANs.
func newCSRPEM(t testing.TB, key crypto.Signer, opts ...csrOption) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: csrCommonName},
		DNSNames: []string{csrCommonName, csrCommonName + ".cluster.local"},
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// tamperCSR changes the subject of a signed CSR without re-signing it: the CSR still parses, but
// its signature no longer matches its contents.
func tamperCSR(t testing.TB, csrPEM []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	if block == nil {
		t.Fatal("tamperCSR: not PEM")
	}
	der := bytes.Replace(block.Bytes, []byte(csrCommonName), []byte("evil.demo.sv"), 1)
	if bytes.Equal(der, block.Bytes) {
		t.Fatal("tamperCSR: the common name is not in the CSR")
	}
	if _, err := x509.ParseCertificateRequest(der); err != nil {
		t.Fatalf("tamperCSR: the tampered CSR no longer parses: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// ---------------------------------------------------------------------------
// Issued certificates

// verifyIssued parses status.certificate (the leaf, then intermediates) and verifies it against
// status.ca at now, the fake clock's time. It returns the leaf.
func verifyIssued(t testing.TB, cr *cmapi.CertificateRequest, now time.Time) *x509.Certificate {
	t.Helper()
	chain := parseCertsPEM(t, cr.Status.Certificate)
	anchors := parseCertsPEM(t, cr.Status.CA)
	if len(anchors) != 1 {
		t.Fatalf("status.ca holds %d certificates, want 1", len(anchors))
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(anchors[0])
	for _, c := range chain[1:] {
		intermediates.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: intermediates, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		t.Fatalf("the issued certificate does not verify against status.ca: %v", err)
	}
	return chain[0]
}

func parseCertsPEM(t testing.TB, data []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(bytes.TrimSpace(rest)) != 0 {
				t.Fatalf("trailing data after the PEM certificates")
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("PEM block %q, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.Fatal("no PEM certificate")
	}
	return certs
}

// ---------------------------------------------------------------------------
// Metrics

// metricValue returns the value of the series of name with exactly labels, and whether it exists.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// seriesCount is the number of series of name.
func seriesCount(t testing.TB, reg *prometheus.Registry, name string) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

// failGet makes the client's Get fail with err for objects of type T.
func failGet[T client.Object](err error) interceptor.Funcs {
	return interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(T); ok {
				return err
			}
			return c.Get(ctx, key, obj, opts...)
		},
	}
}

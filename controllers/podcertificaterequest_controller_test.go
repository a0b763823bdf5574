package controllers

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/internal/testkeys"
	"github.com/pq-issuer/pq-issuer/signer"
)

const pcrName = "req-abcde"

var pcrKey = types.NamespacedName{Namespace: testNamespace, Name: pcrName}

type pcrOption func(*certificatesv1.PodCertificateRequest)

// newPCR is the request a kubelet makes for pod api-0 (service account api) in namespace ns: an
// empty stub CSR signed by key, maxExpirationSeconds defaulted to 24h as the API server does.
func newPCR(t testing.TB, ns, signerName string, key crypto.Signer, opts ...pcrOption) *certificatesv1.PodCertificateRequest {
	t.Helper()
	stub, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	pcr := &certificatesv1.PodCertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: pcrName, Generation: 1},
		Spec: certificatesv1.PodCertificateRequestSpec{
			SignerName: signerName, PodName: "api-0", PodUID: "pod-uid", ServiceAccountName: "api", ServiceAccountUID: "sa-uid",
			NodeName: "node-1", NodeUID: "node-uid", MaxExpirationSeconds: ptr.To[int32](86400), StubPKCS10Request: stub,
		},
	}
	for _, o := range opts {
		o(pcr)
	}
	return pcr
}

func withMaxExpiration(seconds int32) pcrOption {
	return func(p *certificatesv1.PodCertificateRequest) { p.Spec.MaxExpirationSeconds = &seconds }
}

func withUserAnnotations(kv ...string) pcrOption {
	return func(p *certificatesv1.PodCertificateRequest) {
		p.Spec.UnverifiedUserAnnotations = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.UnverifiedUserAnnotations[kv[i]] = kv[i+1]
		}
	}
}

func withPodCertificates(pc *v1alpha1.PodCertificates) issuerOption {
	return func(i v1alpha1.Issuer) { i.GetSpec().PodCertificates = pc }
}

// decodingReader reads as the real client does: it decodes the response into the object it is
// given, keeping what the response lacks (the fake client clears the object first).
type decodingReader struct{ client.Reader }

func (r decodingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	fresh := obj.DeepCopyObject().(client.Object)
	if err := r.Reader.Get(ctx, key, fresh, opts...); err != nil {
		return err
	}
	data, err := json.Marshal(fresh)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, obj)
}

func (e *testEnv) pcrReconciler() *PodCertificateRequestReconciler {
	return &PodCertificateRequestReconciler{
		Client: e.Client, APIReader: decodingReader{e.Client}, CAs: e.CAs, Recorder: e.Recorder, Clock: e.Clock, Metrics: e.Metrics,
		ClusterResourceNamespace: clusterResourceNamespace,
		PendingRecheck:           testPendingRecheck,
	}
}

const (
	clusterSigner = "pqclusterissuers.pq-issuer.dev/" + issuerName
	demoSigner    = "pqissuers.pq-issuer.dev/" + testNamespace + "." + issuerName
)

func TestPodCertificateRequestReconcile(t *testing.T) {
	const hour = time.Hour
	ecdsa := testkeys.New(t, "ECDSA-P256")
	tests := []struct {
		name    string
		ca      func(t *testing.T, now time.Time) testCA // default: a year-long ML-DSA-65 root
		cluster func(ca testCA) []client.Object          // default: the PQClusterIssuer mesh
		request func(t *testing.T) *certificatesv1.PodCertificateRequest

		untouched   bool // no status, no event
		waits       bool // no status, one Warning WaitingForIssuer event, requeued
		condition   string
		reason      string
		contains    []string
		wantLife    time.Duration
		wantDNS     []string
		wantURI     string
		wantKeyBits x509.KeyUsage
	}{
		{name: "ECDSA pod of a cluster issuer", request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
			return newPCR(t, testNamespace, clusterSigner, ecdsa)
		}, condition: "Issued", reason: "Issued", contains: []string{"PQClusterIssuer mesh", "spiffe://cluster.local/ns/demo/sa/api", "ML-DSA-65"},
			wantLife: 24 * hour, wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKeyBits: x509.KeyUsageDigitalSignature},
		{name: "Ed25519 pod of its namespace's PQIssuer", cluster: func(ca testCA) []client.Object { return pqIssuerWith(ca) },
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, testNamespace, demoSigner, testkeys.New(t, "Ed25519"))
			}, condition: "Issued", reason: "Issued", wantLife: 24 * hour, wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKeyBits: x509.KeyUsageDigitalSignature},
		{name: "ML-DSA-44 stub key, as kubelets after 1.37 may make", request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
			return newPCR(t, testNamespace, clusterSigner, testkeys.New(t, "ML-DSA-44"))
		}, condition: "Issued", reason: "Issued", wantLife: 24 * hour, wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKeyBits: x509.KeyUsageDigitalSignature},
		{name: "the pod asks for one hour", request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
			return newPCR(t, testNamespace, clusterSigner, ecdsa, withMaxExpiration(3600))
		}, condition: "Issued", reason: "Issued", wantLife: hour, wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKeyBits: x509.KeyUsageDigitalSignature},
		{name: "the issuer's pod maximum caps what the pod asks",
			cluster: func(ca testCA) []client.Object {
				return pqClusterIssuerWith(ca, withPodCertificates(&v1alpha1.PodCertificates{MaxDuration: &metav1.Duration{Duration: 2 * hour}}))
			},
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, testNamespace, clusterSigner, ecdsa, withMaxExpiration(7*24*3600))
			}, condition: "Issued", reason: "Issued", wantLife: 2 * hour, wantURI: "spiffe://cluster.local/ns/demo/sa/api", wantKeyBits: x509.KeyUsageDigitalSignature},
		{name: "trust domain and DNS names from the issuer",
			cluster: func(ca testCA) []client.Object {
				return pqClusterIssuerWith(ca, withPolicy(&v1alpha1.IssuerPolicy{SPIFFE: &v1alpha1.SPIFFEPolicy{TrustDomain: "prod.example"}}),
					withPodCertificates(&v1alpha1.PodCertificates{DNSNames: []string{"*.{namespace}.svc"}}))
			},
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, testNamespace, clusterSigner, ecdsa, withUserAnnotations(DNSNamesAnnotation, "api.demo.svc, web.demo.svc"))
			}, condition: "Issued", reason: "Issued", wantLife: 24 * hour, wantURI: "spiffe://prod.example/ns/demo/sa/api",
			wantDNS: []string{"api.demo.svc", "web.demo.svc"}, wantKeyBits: x509.KeyUsageDigitalSignature},

		// Denied: final for the pod.
		{name: "a PQIssuer of another namespace", cluster: func(ca testCA) []client.Object { return pqIssuerWith(ca) },
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, "other", demoSigner, ecdsa)
			}, condition: "Denied", reason: "PolicyViolation", contains: []string{"namespace other", "own namespace demo"}},
		{name: "a namespace the selector leaves out",
			cluster: func(ca testCA) []client.Object {
				return append(pqClusterIssuerWith(ca, withPolicy(&v1alpha1.IssuerPolicy{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"mesh": "on"}}})),
					newNamespace(testNamespace, nil))
			},
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, testNamespace, clusterSigner, ecdsa)
			}, condition: "Denied", reason: "PolicyViolation", contains: []string{"namespace demo is not selected", "mesh=on"}},
		{name: "a key type the policy does not allow",
			cluster: func(ca testCA) []client.Object {
				return pqClusterIssuerWith(ca, withPolicy(&v1alpha1.IssuerPolicy{KeyAlgorithms: []string{"Ed25519", "ML-DSA"}}))
			},
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, testNamespace, clusterSigner, ecdsa)
			}, condition: "Denied", reason: "UnsupportedKeyType", contains: []string{"the subject key is ECDSA", "allows only Ed25519, ML-DSA", "keyType"}},
		{name: "an unknown user annotation", request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
			return newPCR(t, testNamespace, clusterSigner, ecdsa, withUserAnnotations("pq-issuer.dev/dns-name", "api.demo.svc"))
		}, condition: "Denied", reason: "InvalidUnverifiedUserAnnotations", contains: []string{`"pq-issuer.dev/dns-name"`, "pq-issuer.dev/dns-names"}},
		{name: "DNS names the issuer does not let pods add", request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
			return newPCR(t, testNamespace, clusterSigner, ecdsa, withUserAnnotations(DNSNamesAnnotation, "kubernetes.default.svc"))
		}, condition: "Denied", reason: "PolicyViolation", contains: []string{"kubernetes.default.svc", "spec.podCertificates.dnsNames is empty"}},
		{name: "a restricted policy without the pod's SPIFFE ID",
			cluster: func(ca testCA) []client.Object {
				return pqClusterIssuerWith(ca, withPolicy(&v1alpha1.IssuerPolicy{DNSNames: []string{"*.example.com"}}))
			},
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, testNamespace, clusterSigner, ecdsa)
			}, condition: "Denied", reason: "PolicyViolation", contains: []string{"spiffe://cluster.local/ns/demo/sa/api", "policy.uris"}},

		// Waiting: no status, the kubelet waits.
		{name: "the issuer does not exist", cluster: func(testCA) []client.Object { return nil },
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, testNamespace, clusterSigner, ecdsa)
			}, waits: true, contains: []string{"PQClusterIssuer mesh", "does not exist"}},
		{name: "the issuer is not ready",
			cluster: func(testCA) []client.Object {
				return []client.Object{newPQClusterIssuer(issuerName)}
			},
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, testNamespace, clusterSigner, ecdsa)
			}, waits: true, contains: []string{"to be ready", "not found"}},
		{name: "the CA expires within the hour",
			ca: func(t *testing.T, now time.Time) testCA { return newRootCA(t, signer.MLDSA44, now, 50*time.Minute) },
			request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
				return newPCR(t, testNamespace, clusterSigner, ecdsa)
			}, waits: true, contains: []string{"too soon for a pod certificate", "rotate the CA"}},

		// Not ours, or answered.
		{name: "another signer's request", request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
			return newPCR(t, testNamespace, "example.com/mesh", ecdsa)
		}, untouched: true},
		{name: "already denied", request: func(t *testing.T) *certificatesv1.PodCertificateRequest {
			return newPCR(t, testNamespace, clusterSigner, ecdsa, func(p *certificatesv1.PodCertificateRequest) {
				p.Status.Conditions = []metav1.Condition{{Type: "Denied", Status: metav1.ConditionTrue, Reason: "Other", Message: "another signer"}}
			})
		}, untouched: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			now := clk.Now()
			ca := newRootCA(t, signer.MLDSA65, now, 365*24*hour)
			if tc.ca != nil {
				ca = tc.ca(t, now)
			}
			cluster := pqClusterIssuerWith(ca)
			if tc.cluster != nil {
				cluster = tc.cluster(ca)
			}
			pcr := tc.request(t)
			env := newTestEnv(t, clk, withObjects(append(cluster, pcr)...))
			reconcileIssuers(t, env, cluster)
			before := env.getPCR(t)

			res, err := env.pcrReconciler().Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(pcr)})
			if err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			got := env.getPCR(t)
			switch {
			case tc.untouched:
				if got.ResourceVersion != before.ResourceVersion {
					t.Errorf("the request was written: %+v", got.Status)
				}
				env.expectEvents(t)
				return
			case tc.waits:
				if len(got.Status.Conditions) != 0 || got.Status.CertificateChain != "" {
					t.Errorf("a waiting request got a status: %+v", got.Status)
				}
				if res.RequeueAfter != testPendingRecheck {
					t.Errorf("requeue after %s, want %s", res.RequeueAfter, testPendingRecheck)
				}
				env.expectEvents(t, wantEvent{Type: "Warning", Reason: "WaitingForIssuer", Contains: tc.contains})
				return
			}
			if len(got.Status.Conditions) != 1 {
				t.Fatalf("conditions %+v, want exactly one", got.Status.Conditions)
			}
			c := got.Status.Conditions[0]
			if c.Type != tc.condition || c.Status != metav1.ConditionTrue || c.Reason != tc.reason || c.LastTransitionTime.IsZero() {
				t.Fatalf("condition %s=%s reason %s (%q), want %s=True reason %s", c.Type, c.Status, c.Reason, c.Message, tc.condition, tc.reason)
			}
			for _, s := range tc.contains {
				if !strings.Contains(c.Message, s) {
					t.Errorf("message %q does not say %q", c.Message, s)
				}
			}
			eventType := "Normal"
			if tc.condition != "Issued" {
				eventType = "Warning"
				if got.Status.CertificateChain != "" || got.Status.NotAfter != nil {
					t.Errorf("a %s request carries a certificate", tc.condition)
				}
				env.expectEvents(t, wantEvent{Type: eventType, Reason: tc.reason, Contains: tc.contains})
				kind, _, _ := issuerOfSigner(got.Spec.SignerName)
				if v, _ := metricValue(t, env.Registry, "pq_issuer_podcertificaterequests_denied_total", map[string]string{"issuer_kind": kind.Name, "reason": tc.reason}); v != 1 {
					t.Errorf("denied counter %v, want 1", v)
				}
				return
			}
			env.expectEvents(t, wantEvent{Type: eventType, Reason: tc.reason, Contains: tc.contains})
			checkPodCertificate(t, got, ca, now, tc.wantLife, tc.wantURI, tc.wantDNS, tc.wantKeyBits)
		})
	}
}

// checkPodCertificate checks an Issued request as the API server does (leaf key = stub key, times
// equal to the leaf's, lifetime and refresh bounds), then the certificate itself.
func checkPodCertificate(t *testing.T, pcr *certificatesv1.PodCertificateRequest, ca testCA, now time.Time, life time.Duration, uri string, dns []string, ku x509.KeyUsage) {
	t.Helper()
	chain := parseCertsPEM(t, []byte(pcr.Status.CertificateChain))
	leaf := chain[0]
	stub, err := x509.ParseCertificateRequest(pcr.Spec.StubPKCS10Request)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(stub.PublicKey) {
		t.Error("the leaf's key is not the stub CSR's")
	}
	st := pcr.Status
	if !st.NotBefore.Time.Equal(leaf.NotBefore) || !st.NotAfter.Time.Equal(leaf.NotAfter) {
		t.Errorf("status notBefore/notAfter %s/%s, leaf %s/%s", st.NotBefore, st.NotAfter, leaf.NotBefore, leaf.NotAfter)
	}
	if d := leaf.NotBefore.Sub(now); d > 0 || d < -time.Second {
		t.Errorf("notBefore %s, want now %s", leaf.NotBefore, now)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != life || got > time.Duration(*pcr.Spec.MaxExpirationSeconds)*time.Second {
		t.Errorf("lifetime %s, want %s within maxExpirationSeconds %d", got, life, *pcr.Spec.MaxExpirationSeconds)
	}
	if want := leaf.NotBefore.Add(life / 2); !st.BeginRefreshAt.Time.Equal(want) {
		t.Errorf("beginRefreshAt %s, want half the lifetime, %s", st.BeginRefreshAt, want)
	}
	if r := st.BeginRefreshAt.Time; r.Before(leaf.NotBefore.Add(10*time.Minute)) || r.After(leaf.NotAfter.Add(-10*time.Minute)) {
		t.Errorf("beginRefreshAt %s outside the API server's [notBefore+10m, notAfter-10m]", r)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != uri || !slices.Equal(leaf.DNSNames, dns) {
		t.Errorf("names URI %v DNS %q, want %s and %q", leaf.URIs, leaf.DNSNames, uri, dns)
	}
	if leaf.Subject.String() != (pkix.Name{}).String() || leaf.KeyUsage != ku || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("subject %q KU %v EKU %v, want empty subject, %v, server+client auth", leaf.Subject, leaf.KeyUsage, leaf.ExtKeyUsage, ku)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the leaf does not verify against the CA: %v", err)
	}
}

func (e *testEnv) getPCR(t testing.TB) *certificatesv1.PodCertificateRequest {
	t.Helper()
	pcr := &certificatesv1.PodCertificateRequest{}
	list := &certificatesv1.PodCertificateRequestList{}
	if err := e.Client.List(context.Background(), list); err != nil || len(list.Items) != 1 {
		t.Fatalf("listing PodCertificateRequests: %v (%d)", err, len(list.Items))
	}
	list.Items[0].DeepCopyInto(pcr)
	return pcr
}

// TestPodCertificateRequestOneStatusWrite: a request answered is never written again, and a
// reconcile that lost the race to another writer drops its answer.
func TestPodCertificateRequestOneStatusWrite(t *testing.T) {
	clk := newTestClock(t)
	ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
	cluster := pqClusterIssuerWith(ca)
	pcr := newPCR(t, testNamespace, clusterSigner, testkeys.New(t, "ECDSA-P256"))
	env := newTestEnv(t, clk, withObjects(append(cluster, pcr)...))
	reconcileIssuers(t, env, cluster)
	r := env.pcrReconciler()
	for i := range 3 {
		if _, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: pcrKey}); err != nil {
			t.Fatalf("reconcile %d: %v", i, err)
		}
	}
	got := env.getPCR(t)
	if got.Status.CertificateChain == "" {
		t.Fatal("not issued")
	}
	env.expectEvents(t, wantEvent{Type: "Normal", Reason: "Issued"})
	const issued = "pq_issuer_podcertificaterequests_issued_total"
	if v, _ := metricValue(t, env.Registry, issued, map[string]string{"issuer_kind": "PQClusterIssuer", "algorithm": "ML-DSA-65"}); v != 1 {
		t.Errorf("%s = %v, want 1", issued, v)
	}
}

// TestPodCertificateRequestsForIssuer: an issuer's change wakes its unanswered requests only.
func TestPodCertificateRequestsForIssuer(t *testing.T) {
	clk := newTestClock(t)
	key := testkeys.New(t, "ECDSA-P256")
	waiting := newPCR(t, testNamespace, clusterSigner, key)
	answered := newPCR(t, testNamespace, clusterSigner, key, func(p *certificatesv1.PodCertificateRequest) {
		p.Name = "req-answered"
		p.Status.Conditions = []metav1.Condition{{Type: "Issued", Status: metav1.ConditionTrue, Reason: "Issued"}}
	})
	other := newPCR(t, testNamespace, "pqclusterissuers.pq-issuer.dev/other", key, func(p *certificatesv1.PodCertificateRequest) { p.Name = "req-other" })
	env := newTestEnv(t, clk, withObjects(waiting, answered, other))
	got := env.pcrReconciler().requestsForIssuer(PQClusterIssuerKind)(context.Background(), newPQClusterIssuer(issuerName))
	if want := []reconcile.Request{{NamespacedName: pcrKey}}; !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
}

// TestPodCertificateRequestWriteConflict: when another writer answered the request between the
// read and the write, the conflict is resolved by reading the API server, and pq-issuer's answer is
// dropped (the API server would refuse a second answer anyway); a conflict from a metadata change
// is retried and the request issued once.
func TestPodCertificateRequestWriteConflict(t *testing.T) {
	tests := []struct {
		name        string
		otherWriter func(t *testing.T, c client.Client, pcr *certificatesv1.PodCertificateRequest)
		wantUpdates int
		wantReason  string
		wantEvents  []wantEvent
	}{
		{
			name: "answered by another writer: dropped",
			otherWriter: func(t *testing.T, c client.Client, pcr *certificatesv1.PodCertificateRequest) {
				pcr.Status.Conditions = []metav1.Condition{{Type: "Denied", Status: metav1.ConditionTrue, Reason: "Other", Message: "other signer", LastTransitionTime: metav1.Now()}}
				if err := c.Status().Update(context.Background(), pcr); err != nil {
					t.Fatal(err)
				}
			},
			wantUpdates: 1,
			wantReason:  "Other",
		},
		{
			name: "labels changed: retried on the latest version, issued once",
			otherWriter: func(t *testing.T, c client.Client, pcr *certificatesv1.PodCertificateRequest) {
				pcr.Labels = map[string]string{"other": "writer"}
				if err := c.Update(context.Background(), pcr); err != nil {
					t.Fatal(err)
				}
			},
			wantUpdates: 2,
			wantReason:  "Issued",
			wantEvents:  []wantEvent{{Type: "Normal", Reason: "Issued"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			cluster := pqClusterIssuerWith(ca)
			pcr := newPCR(t, testNamespace, clusterSigner, testkeys.New(t, "ECDSA-P256"))
			updates, raced := 0, false
			env := newTestEnv(t, clk, withObjects(append(cluster, pcr)...), withInterceptor(interceptor.Funcs{
				SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					if _, ok := obj.(*certificatesv1.PodCertificateRequest); ok {
						updates++
						if !raced {
							raced = true
							latest := &certificatesv1.PodCertificateRequest{}
							if err := c.Get(ctx, client.ObjectKeyFromObject(obj), latest); err != nil {
								t.Fatal(err)
							}
							tc.otherWriter(t, c, latest)
						}
					}
					return c.SubResource(sub).Update(ctx, obj, opts...)
				},
			}))
			reconcileIssuers(t, env, cluster)
			if _, err := env.pcrReconciler().Reconcile(context.Background(), reconcile.Request{NamespacedName: pcrKey}); err != nil {
				t.Fatal(err)
			}
			got := env.getPCR(t)
			if len(got.Status.Conditions) != 1 || got.Status.Conditions[0].Reason != tc.wantReason {
				t.Fatalf("conditions %+v, want one with reason %s", got.Status.Conditions, tc.wantReason)
			}
			if updates != tc.wantUpdates {
				t.Errorf("%d status updates, want %d", updates, tc.wantUpdates)
			}
			env.expectEvents(t, tc.wantEvents...)
		})
	}
}

package controllers

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

const (
	caExpiryMetric = "pq_issuer_ca_expiry_seconds"
	readyMetric    = "pq_issuer_issuer_ready"
)

// testIssuerKey is the key of the issuer named issuerName of kind.
func testIssuerKey(kind IssuerKind) types.NamespacedName {
	if kind.ClusterScoped {
		return types.NamespacedName{Name: issuerName}
	}
	return types.NamespacedName{Namespace: testNamespace, Name: issuerName}
}

// checkReadyMetric checks the issuer's pq_issuer_issuer_ready series: 1 when ready, else 0.
func checkReadyMetric(t *testing.T, reg *prometheus.Registry, kind IssuerKind, key types.NamespacedName, ready bool) {
	t.Helper()
	want := 0.0
	if ready {
		want = 1
	}
	labels := map[string]string{"issuer_kind": kind.Name, "namespace": key.Namespace, "name": key.Name}
	if v, ok := metricValue(t, reg, readyMetric, labels); !ok || v != want {
		t.Errorf("%s%v = %v (present: %v), want %v", readyMetric, labels, v, ok, want)
	}
	if n := seriesCount(t, reg, readyMetric); n != 1 {
		t.Errorf("%d %s series, want 1", n, readyMetric)
	}
}

// expiryLabels are the labels of an issuer's pq_issuer_ca_expiry_seconds series.
func expiryLabels(kind IssuerKind, key types.NamespacedName, alg signer.Algorithm) map[string]string {
	return map[string]string{"issuer_kind": kind.Name, "namespace": key.Namespace, "name": key.Name, "algorithm": string(alg)}
}

func TestIssuerReconcile(t *testing.T) {
	const year = 365 * 24 * time.Hour
	// caIn is a Secret in ns holding a new root CA of alg, valid for a year from now.
	caIn := func(alg signer.Algorithm) func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
		return func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
			ca := newRootCA(t, alg, now, year)
			return []client.Object{newSecret(ns, caSecret, withCAData(ca))}, &ca
		}
	}

	tests := []struct {
		name string
		kind IssuerKind
		opts []issuerOption
		// secrets returns the Secrets of the cluster, given the namespace the issuer reads from,
		// and the CA the issuer must load when it is verified.
		secrets       func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA)
		want          wantCondition
		wantAlgorithm signer.Algorithm // set when Verified
		wantNames     string           // status.names when Verified; default Unrestricted
		wantRequeue   time.Duration    // when not Verified
	}{
		{
			name:          "PQIssuer verified with ML-DSA-44",
			kind:          PQIssuerKind,
			secrets:       caIn(signer.MLDSA44),
			want:          wantCondition{"True", v1alpha1.ReasonVerified, []string{"Signing with ML-DSA-44 CA", "Test Root ML-DSA-44"}},
			wantAlgorithm: signer.MLDSA44,
		},
		{
			name:          "PQIssuer verified with ML-DSA-65",
			kind:          PQIssuerKind,
			secrets:       caIn(signer.MLDSA65),
			want:          wantCondition{"True", v1alpha1.ReasonVerified, []string{"Signing with ML-DSA-65 CA"}},
			wantAlgorithm: signer.MLDSA65,
		},
		{
			name:          "PQIssuer verified with ML-DSA-87",
			kind:          PQIssuerKind,
			secrets:       caIn(signer.MLDSA87),
			want:          wantCondition{"True", v1alpha1.ReasonVerified, []string{"Signing with ML-DSA-87 CA"}},
			wantAlgorithm: signer.MLDSA87,
		},
		{
			name:          "PQClusterIssuer verified with ML-DSA-44",
			kind:          PQClusterIssuerKind,
			secrets:       caIn(signer.MLDSA44),
			want:          wantCondition{"True", v1alpha1.ReasonVerified, []string{"Signing with ML-DSA-44 CA"}},
			wantAlgorithm: signer.MLDSA44,
		},
		{
			name:          "PQClusterIssuer verified with ML-DSA-65",
			kind:          PQClusterIssuerKind,
			secrets:       caIn(signer.MLDSA65),
			want:          wantCondition{"True", v1alpha1.ReasonVerified, []string{"Signing with ML-DSA-65 CA"}},
			wantAlgorithm: signer.MLDSA65,
		},
		{
			name:          "PQClusterIssuer verified with ML-DSA-87",
			kind:          PQClusterIssuerKind,
			secrets:       caIn(signer.MLDSA87),
			want:          wantCondition{"True", v1alpha1.ReasonVerified, []string{"Signing with ML-DSA-87 CA"}},
			wantAlgorithm: signer.MLDSA87,
		},
		{
			name: "PQIssuer verified with an intermediate whose chain expires before the root",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				root := newRootCA(t, signer.MLDSA87, now, 2*year)
				ca := newIntermediateCA(t, root, signer.MLDSA65, now, 90*24*time.Hour)
				return []client.Object{newSecret(ns, caSecret, withCAData(ca))}, &ca
			},
			want:          wantCondition{"True", v1alpha1.ReasonVerified, []string{"Test Intermediate ML-DSA-65"}},
			wantAlgorithm: signer.MLDSA65,
		},
		{
			name:          "PQClusterIssuer with a DNS name policy is verified and restricted",
			kind:          PQClusterIssuerKind,
			opts:          []issuerOption{withPolicy(&v1alpha1.IssuerPolicy{DNSNames: []string{"*.{namespace}.svc.cluster.local"}})},
			secrets:       caIn(signer.MLDSA65),
			want:          wantCondition{"True", v1alpha1.ReasonVerified, nil},
			wantAlgorithm: signer.MLDSA65,
			wantNames:     v1alpha1.NamesRestricted,
		},
		{
			name:    "policy with an unknown usage is an invalid spec",
			kind:    PQIssuerKind,
			opts:    []issuerOption{withPolicy(&v1alpha1.IssuerPolicy{Usages: []string{"server auth", "teleportation"}})},
			secrets: caIn(signer.MLDSA65),
			want:    wantCondition{"False", v1alpha1.ReasonInvalidSpec, []string{`spec.policy.usages: unknown usage "teleportation"`, "fix the issuer's spec"}},
		},
		{
			name:    "policy with a bad IP range is an invalid spec",
			kind:    PQClusterIssuerKind,
			opts:    []issuerOption{withPolicy(&v1alpha1.IssuerPolicy{IPRanges: []string{"10.0.0.0/33"}})},
			secrets: caIn(signer.MLDSA65),
			want:    wantCondition{"False", v1alpha1.ReasonInvalidSpec, []string{`spec.policy.ipRanges: "10.0.0.0/33" is not a CIDR range`}},
		},
		{
			name:    "maxDuration under an hour is an invalid spec",
			kind:    PQClusterIssuerKind,
			opts:    []issuerOption{withMaxDuration(30 * time.Minute)},
			secrets: caIn(signer.MLDSA65),
			want:    wantCondition{"False", v1alpha1.ReasonInvalidSpec, []string{"spec.maxDuration 30m0s is under the 1h0m0s minimum"}},
		},
		{
			name:          "PQIssuer with a positive maxDuration is verified",
			kind:          PQIssuerKind,
			opts:          []issuerOption{withMaxDuration(24 * time.Hour)},
			secrets:       caIn(signer.MLDSA65),
			want:          wantCondition{"True", v1alpha1.ReasonVerified, nil},
			wantAlgorithm: signer.MLDSA65,
		},
		{
			name: "PQIssuer Secret missing",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				return []client.Object{newSecret(ns, "another-secret")}, nil
			},
			want: wantCondition{"False", v1alpha1.ReasonSecretNotFound, []string{
				"Secret demo/ca not found", "a PQIssuer reads its Secret from its own namespace"}},
		},
		{
			name: "PQIssuer Secret without the CA Secret label",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(ns, caSecret, withCAData(ca), withLabel(""))}, nil
			},
			want: wantCondition{"False", v1alpha1.ReasonSecretNotMarked, []string{
				"Secret demo/ca: not marked as a CA Secret", "`kubectl label secret -n demo ca pq-issuer.dev/ca-secret=true`",
				"`kubectl pq ca secret` writes the label"}},
		},
		{
			name: "PQClusterIssuer Secret with the CA Secret label set to another value",
			kind: PQClusterIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(ns, caSecret, withCAData(ca), withLabel("false"))}, nil
			},
			want: wantCondition{"False", v1alpha1.ReasonSecretNotMarked, []string{
				"`kubectl label secret -n cert-manager ca pq-issuer.dev/ca-secret=true`"}},
		},
		{
			name: "PQClusterIssuer Secret missing",
			kind: PQClusterIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				return nil, nil
			},
			want: wantCondition{"False", v1alpha1.ReasonSecretNotFound, []string{"Secret cert-manager/ca not found"}},
		},
		{
			name: "PQClusterIssuer whose Secret exists only in another namespace",
			kind: PQClusterIssuerKind,
			secrets: func(t *testing.T, now time.Time, _ string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(testNamespace, caSecret, withCAData(ca))}, nil
			},
			want: wantCondition{"False", v1alpha1.ReasonSecretNotFound, []string{
				"Secret cert-manager/ca not found", `cluster resource namespace "cert-manager"`}},
		},
		{
			name: "PQIssuer whose Secret exists only in another namespace",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, _ string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(clusterResourceNamespace, caSecret, withCAData(ca))}, nil
			},
			want: wantCondition{"False", v1alpha1.ReasonSecretNotFound, []string{"Secret demo/ca not found"}},
		},
		{
			name: "PQIssuer tls.crt missing",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(ns, caSecret, withCAData(ca), withoutData(corev1.TLSCertKey))}, nil
			},
			want: wantCondition{"False", string(signer.ReasonCertificateMissing), []string{"Secret demo/ca: no tls.crt"}},
		},
		{
			name: "PQClusterIssuer tls.key missing",
			kind: PQClusterIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(ns, caSecret, withCAData(ca), withoutData(corev1.TLSPrivateKeyKey))}, nil
			},
			want: wantCondition{"False", string(signer.ReasonKeyMissing), []string{"Secret cert-manager/ca: no tls.key"}},
		},
		{
			name: "PQIssuer tls.key missing",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(ns, caSecret, withTLS(ca.CertPEM, nil))}, nil
			},
			want: wantCondition{"False", string(signer.ReasonKeyMissing), []string{"no tls.key", "PKCS#8 ML-DSA private key"}},
		},
		{
			name: "PQIssuer key of another CA",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca, other := newRootCA(t, signer.MLDSA65, now, year), newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(ns, caSecret, withTLS(ca.CertPEM, other.KeyPEM))}, nil
			},
			want: wantCondition{"False", string(signer.ReasonKeyMismatch), []string{"does not belong to the CA certificate", "must be a pair"}},
		},
		{
			name: "PQIssuer key of another algorithm",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca, other := newRootCA(t, signer.MLDSA65, now, year), newRootCA(t, signer.MLDSA44, now, year)
				return []client.Object{newSecret(ns, caSecret, withTLS(ca.CertPEM, other.KeyPEM))}, nil
			},
			want: wantCondition{"False", string(signer.ReasonKeyMismatch), []string{"ML-DSA-44", "ML-DSA-65"}},
		},
		{
			name: "PQIssuer certificate is not a CA",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				certPEM, keyPEM := newMLDSALeafCertPEM(t, now)
				return []client.Object{newSecret(ns, caSecret, withTLS(certPEM, keyPEM))}, nil
			},
			want: wantCondition{"False", string(signer.ReasonNotACA), []string{"Not A CA", "is not a CA certificate"}},
		},
		{
			name: "PQIssuer classical ECDSA CA",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				certPEM, keyPEM := newECDSACAPEM(t, now)
				return []client.Object{newSecret(ns, caSecret, withTLS(certPEM, keyPEM))}, nil
			},
			want: wantCondition{"False", string(signer.ReasonUnsupportedAlgorithm), []string{"ECDSA key", "only with ML-DSA keys"}},
		},
		{
			name: "PQIssuer tls.crt is not PEM",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(ns, caSecret, withTLS([]byte("not a certificate"), ca.KeyPEM))}, nil
			},
			want: wantCondition{"False", string(signer.ReasonInvalidCertificate), []string{"not PEM"}},
		},
		{
			name: "PQIssuer CA not valid yet is looked at again in a minute",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now.Add(time.Hour), year)
				return []client.Object{newSecret(ns, caSecret, withCAData(ca))}, nil
			},
			want:        wantCondition{"False", string(signer.ReasonNotYetValid), []string{"is not valid until"}},
			wantRequeue: notYetValidRecheck,
		},
		{
			name: "PQIssuer CA already expired",
			kind: PQIssuerKind,
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now.Add(-2*year), year)
				return []client.Object{newSecret(ns, caSecret, withCAData(ca))}, nil
			},
			want: wantCondition{"False", string(signer.ReasonExpired), []string{"expired at", "renew the CA"}},
		},
		{
			name:    "PQIssuer maxDuration 0 is an invalid spec",
			kind:    PQIssuerKind,
			opts:    []issuerOption{withMaxDuration(0)},
			secrets: caIn(signer.MLDSA65),
			want:    wantCondition{"False", v1alpha1.ReasonInvalidSpec, []string{"spec.maxDuration 0s is not positive"}},
		},
		{
			name:    "PQClusterIssuer negative maxDuration is an invalid spec",
			kind:    PQClusterIssuerKind,
			opts:    []issuerOption{withMaxDuration(-time.Hour)},
			secrets: caIn(signer.MLDSA65),
			want:    wantCondition{"False", v1alpha1.ReasonInvalidSpec, []string{"spec.maxDuration -1h0m0s is not positive"}},
		},
		{
			name: "PQIssuer invalid spec is reported before a missing Secret",
			kind: PQIssuerKind,
			opts: []issuerOption{withMaxDuration(0)},
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				return nil, nil
			},
			want: wantCondition{"False", v1alpha1.ReasonInvalidSpec, nil},
		},
		{
			name: "PQIssuer at a later generation records it",
			kind: PQIssuerKind,
			opts: []issuerOption{withGeneration(7), withCASecretName("rotated-ca")},
			secrets: func(t *testing.T, now time.Time, ns string) ([]client.Object, *testCA) {
				ca := newRootCA(t, signer.MLDSA65, now, year)
				return []client.Object{newSecret(ns, "rotated-ca", withCAData(ca))}, &ca
			},
			want:          wantCondition{"True", v1alpha1.ReasonVerified, nil},
			wantAlgorithm: signer.MLDSA65,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			now := clk.Now()
			key := testIssuerKey(tc.kind)
			secrets, ca := tc.secrets(t, now, issuerSecretNamespace(tc.kind, testNamespace))
			issuer := newIssuer(tc.kind, key, tc.opts...)
			env := newTestEnv(t, clk, withObjects(append(secrets, issuer)...))

			wantEventType := corev1.EventTypeWarning
			if tc.want.Status == "True" {
				wantEventType = corev1.EventTypeNormal
			}
			wantResult := ctrl.Result{RequeueAfter: tc.wantRequeue}
			if tc.wantAlgorithm != "" {
				if ca == nil {
					t.Fatal("a verified case must return its CA")
				}
				wantResult.RequeueAfter = ca.NotAfter.Sub(now) + time.Second
			}

			for i, wantEvents := range [][]wantEvent{
				{{wantEventType, tc.want.Reason, tc.want.Contains}},
				nil, // the same state again: no event
			} {
				result, err := env.reconcileIssuer(t, tc.kind, key)
				if err != nil {
					t.Fatalf("reconcile %d: %v", i+1, err)
				}
				if result != wantResult {
					t.Errorf("reconcile %d: result %+v, want %+v", i+1, result, wantResult)
				}
				got := env.getIssuer(t, tc.kind, key)
				checkIssuerReady(t, got, tc.want)
				env.expectEvents(t, wantEvents...)

				checkReadyMetric(t, env.Registry, tc.kind, key, tc.wantAlgorithm != "")
				status := got.GetStatus()
				_, hasExpiry := metricValue(t, env.Registry, caExpiryMetric, expiryLabels(tc.kind, key, tc.wantAlgorithm))
				if tc.wantAlgorithm == "" {
					if status.Algorithm != "" || status.CANotAfter != nil {
						t.Errorf("not ready, yet status.algorithm %q and caNotAfter %v", status.Algorithm, status.CANotAfter)
					}
					if n := seriesCount(t, env.Registry, caExpiryMetric); n != 0 {
						t.Errorf("%d %s series for an issuer that is not ready, want none", n, caExpiryMetric)
					}
					continue
				}
				wantNames := tc.wantNames
				if wantNames == "" {
					wantNames = v1alpha1.NamesUnrestricted
				}
				if status.Names != wantNames {
					t.Errorf("status.names %q, want %q", status.Names, wantNames)
				}
				if status.Algorithm != string(tc.wantAlgorithm) {
					t.Errorf("status.algorithm %q, want %s", status.Algorithm, tc.wantAlgorithm)
				}
				if status.CANotAfter == nil || !status.CANotAfter.Time.Equal(ca.NotAfter) {
					t.Errorf("status.caNotAfter %v, want %s", status.CANotAfter, ca.NotAfter)
				}
				if !hasExpiry {
					t.Errorf("no %s series for the verified issuer", caExpiryMetric)
				}
			}
		})
	}
}

// TestIssuerExpiry lets a verified CA expire on the fake clock: Ready turns False with one Warning
// event, exactly when the reconciler asked to be called again.
func TestIssuerExpiry(t *testing.T) {
	tests := []struct {
		name string
		kind IssuerKind
		// ca makes the CA; its NotAfter is when the issuer must stop being ready.
		ca func(t *testing.T, now time.Time) testCA
	}{
		{
			name: "PQIssuer root CA",
			kind: PQIssuerKind,
			ca: func(t *testing.T, now time.Time) testCA {
				return newRootCA(t, signer.MLDSA65, now, 30*24*time.Hour)
			},
		},
		{
			name: "PQClusterIssuer root CA",
			kind: PQClusterIssuerKind,
			ca: func(t *testing.T, now time.Time) testCA {
				return newRootCA(t, signer.MLDSA87, now, 30*24*time.Hour)
			},
		},
		{
			name: "PQIssuer intermediate CA expiring before its root",
			kind: PQIssuerKind,
			ca: func(t *testing.T, now time.Time) testCA {
				root := newRootCA(t, signer.MLDSA87, now, 365*24*time.Hour)
				return newIntermediateCA(t, root, signer.MLDSA44, now, 7*24*time.Hour)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			ca := tc.ca(t, clk.Now())
			key := testIssuerKey(tc.kind)
			env := newTestEnv(t, clk, withObjects(
				newIssuer(tc.kind, key),
				newSecret(issuerSecretNamespace(tc.kind, testNamespace), caSecret, withCAData(ca)),
			))

			result, err := env.reconcileIssuer(t, tc.kind, key)
			if err != nil {
				t.Fatal(err)
			}
			checkIssuerReady(t, env.getIssuer(t, tc.kind, key), wantCondition{"True", v1alpha1.ReasonVerified, nil})
			env.expectEvents(t, wantEvent{corev1.EventTypeNormal, v1alpha1.ReasonVerified, nil})

			// Just before the requeue the CA is still valid and nothing changes.
			clk.Step(result.RequeueAfter - 2*time.Second)
			if _, err := env.reconcileIssuer(t, tc.kind, key); err != nil {
				t.Fatal(err)
			}
			checkIssuerReady(t, env.getIssuer(t, tc.kind, key), wantCondition{"True", v1alpha1.ReasonVerified, nil})
			env.expectEvents(t)

			// At the requeue the CA has expired.
			clk.Step(2 * time.Second)
			if !clk.Now().After(ca.NotAfter) {
				t.Fatalf("the requeue %s is not after the CA's expiry %s", clk.Now(), ca.NotAfter)
			}
			want := wantCondition{"False", string(signer.ReasonExpired), []string{"expired at " + ca.NotAfter.UTC().Format(time.RFC3339), "renew the CA"}}
			for i := range 2 {
				result, err = env.reconcileIssuer(t, tc.kind, key)
				if err != nil {
					t.Fatal(err)
				}
				if result != (ctrl.Result{}) {
					t.Errorf("an expired CA asks to be requeued: %+v", result)
				}
				issuer := env.getIssuer(t, tc.kind, key)
				checkIssuerReady(t, issuer, want)
				if s := issuer.GetStatus(); s.Algorithm != "" || s.CANotAfter != nil {
					t.Errorf("expired, yet status.algorithm %q and caNotAfter %v", s.Algorithm, s.CANotAfter)
				}
				if n := seriesCount(t, env.Registry, caExpiryMetric); n != 0 {
					t.Errorf("%d %s series after expiry, want none", n, caExpiryMetric)
				}
				checkReadyMetric(t, env.Registry, tc.kind, key, false)
				if i == 0 {
					env.expectEvents(t, wantEvent{corev1.EventTypeWarning, string(signer.ReasonExpired), want.Contains})
				} else {
					env.expectEvents(t)
				}
			}
		})
	}
}

// TestIssuerLifecycle walks one issuer through the changes an operator makes, checking that each
// change of the Ready condition emits exactly one event and nothing else does.
func TestIssuerLifecycle(t *testing.T) {
	for _, kind := range issuerKinds {
		t.Run(kind.Name, func(t *testing.T) {
			clk := newTestClock(t)
			key := testIssuerKey(kind)
			ns := issuerSecretNamespace(kind, testNamespace)
			env := newTestEnv(t, clk, withObjects(newIssuer(kind, key)))
			ctx := context.Background()
			first := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			second := newRootCA(t, signer.MLDSA87, clk.Now(), 365*24*time.Hour)

			putSecret := func(t *testing.T, opts ...secretOption) {
				t.Helper()
				s := newSecret(ns, caSecret, opts...)
				old := &corev1.Secret{}
				switch err := env.Client.Get(ctx, client.ObjectKeyFromObject(s), old); {
				case apierrors.IsNotFound(err):
					err = env.Client.Create(ctx, s)
					if err != nil {
						t.Fatal(err)
					}
				case err != nil:
					t.Fatal(err)
				default:
					s.ResourceVersion = old.ResourceVersion
					if err := env.Client.Update(ctx, s); err != nil {
						t.Fatal(err)
					}
				}
			}
			updateSpec := func(t *testing.T, f func(*v1alpha1.IssuerSpec)) {
				t.Helper()
				issuer := env.getIssuer(t, kind, key)
				f(issuer.GetSpec())
				issuer.SetGeneration(issuer.GetGeneration() + 1)
				if err := env.Client.Update(ctx, issuer); err != nil {
					t.Fatal(err)
				}
			}

			steps := []struct {
				name   string
				change func(t *testing.T)
				want   wantCondition
				// wantEvent is false when the condition must not change.
				wantEvent bool
				// trustEvent is the event about the trust anchors that follows, if any.
				trustEvent *wantEvent
			}{
				{
					name:      "no Secret yet",
					want:      wantCondition{"False", v1alpha1.ReasonSecretNotFound, []string{"not found"}},
					wantEvent: true,
				},
				{
					name:   "nothing changed",
					change: func(t *testing.T) {},
					want:   wantCondition{"False", v1alpha1.ReasonSecretNotFound, nil},
				},
				{
					name:      "Secret created without tls.key",
					change:    func(t *testing.T) { putSecret(t, withTLS(first.CertPEM, nil)) },
					want:      wantCondition{"False", string(signer.ReasonKeyMissing), []string{"no tls.key"}},
					wantEvent: true,
				},
				{
					name:      "tls.key added",
					change:    func(t *testing.T) { putSecret(t, withCAData(first)) },
					want:      wantCondition{"True", v1alpha1.ReasonVerified, []string{"ML-DSA-65"}},
					wantEvent: true,
				},
				{
					name:   "an hour later",
					change: func(t *testing.T) { clk.Step(time.Hour) },
					want:   wantCondition{"True", v1alpha1.ReasonVerified, []string{"ML-DSA-65"}},
				},
				{
					name:      "CA Secret label removed",
					change:    func(t *testing.T) { putSecret(t, withCAData(first), withLabel("")) },
					want:      wantCondition{"False", v1alpha1.ReasonSecretNotMarked, []string{"not marked as a CA Secret", "kubectl label secret"}},
					wantEvent: true,
				},
				{
					name:   "still not marked",
					change: func(t *testing.T) {},
					want:   wantCondition{"False", v1alpha1.ReasonSecretNotMarked, nil},
				},
				{
					name:      "CA Secret label back",
					change:    func(t *testing.T) { putSecret(t, withCAData(first)) },
					want:      wantCondition{"True", v1alpha1.ReasonVerified, []string{"ML-DSA-65"}},
					wantEvent: true,
				},
				{
					name:       "Secret rotated to another CA",
					change:     func(t *testing.T) { putSecret(t, withCAData(second)) },
					want:       wantCondition{"True", v1alpha1.ReasonVerified, []string{"ML-DSA-87"}},
					wantEvent:  true,
					trustEvent: &wantEvent{corev1.EventTypeNormal, reasonTrustAnchorRetiring, []string{"the previous root CN=Test Root ML-DSA-65"}},
				},
				{
					name:      "maxDuration set to zero",
					change:    func(t *testing.T) { updateSpec(t, func(s *v1alpha1.IssuerSpec) { s.MaxDuration = &metav1.Duration{} }) },
					want:      wantCondition{"False", v1alpha1.ReasonInvalidSpec, []string{"not positive"}},
					wantEvent: true,
				},
				{
					name: "maxDuration fixed",
					change: func(t *testing.T) {
						updateSpec(t, func(s *v1alpha1.IssuerSpec) { s.MaxDuration = &metav1.Duration{Duration: 24 * time.Hour} })
					},
					want:      wantCondition{"True", v1alpha1.ReasonVerified, []string{"ML-DSA-87"}},
					wantEvent: true,
				},
				{
					// The status is written (observedGeneration) but Ready says the same: no event.
					name: "maxDuration changed again",
					change: func(t *testing.T) {
						updateSpec(t, func(s *v1alpha1.IssuerSpec) { s.MaxDuration = &metav1.Duration{Duration: 48 * time.Hour} })
					},
					want: wantCondition{"True", v1alpha1.ReasonVerified, []string{"ML-DSA-87"}},
				},
				{
					name:      "tls.key replaced by another CA's",
					change:    func(t *testing.T) { putSecret(t, withTLS(second.CertPEM, first.KeyPEM)) },
					want:      wantCondition{"False", string(signer.ReasonKeyMismatch), nil},
					wantEvent: true,
				},
				{
					name: "Secret deleted",
					change: func(t *testing.T) {
						if err := env.Client.Delete(ctx, newSecret(ns, caSecret)); err != nil {
							t.Fatal(err)
						}
					},
					want:      wantCondition{"False", v1alpha1.ReasonSecretNotFound, nil},
					wantEvent: true,
				},
			}
			for _, step := range steps {
				if step.change != nil {
					step.change(t)
				}
				if _, err := env.reconcileIssuer(t, kind, key); err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				issuer := env.getIssuer(t, kind, key)
				checkIssuerReady(t, issuer, step.want)
				eventType := corev1.EventTypeWarning
				if step.want.Status == "True" {
					eventType = corev1.EventTypeNormal
				}
				switch {
				case step.trustEvent != nil:
					env.expectEvents(t, wantEvent{eventType, step.want.Reason, step.want.Contains}, *step.trustEvent)
				case step.wantEvent:
					env.expectEvents(t, wantEvent{eventType, step.want.Reason, step.want.Contains})
				default:
					env.expectEvents(t)
				}
				if t.Failed() {
					t.Fatalf("step %q failed", step.name)
				}
			}
		})
	}
}

func TestIssuerDeleted(t *testing.T) {
	tests := []struct {
		name string
		kind IssuerKind
		// verifyFirst has the issuer verified, then deleted, before the last reconcile.
		verifyFirst bool
	}{
		{name: "PQIssuer that never existed", kind: PQIssuerKind},
		{name: "PQClusterIssuer that never existed", kind: PQClusterIssuerKind},
		{name: "PQIssuer deleted after it was verified", kind: PQIssuerKind, verifyFirst: true},
		{name: "PQClusterIssuer deleted after it was verified", kind: PQClusterIssuerKind, verifyFirst: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			key := testIssuerKey(tc.kind)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			objs := []client.Object{newSecret(issuerSecretNamespace(tc.kind, testNamespace), caSecret, withCAData(ca))}
			if tc.verifyFirst {
				objs = append(objs, newIssuer(tc.kind, key))
			}
			env := newTestEnv(t, clk, withObjects(objs...))
			if tc.verifyFirst {
				if _, err := env.reconcileIssuer(t, tc.kind, key); err != nil {
					t.Fatal(err)
				}
				env.drainEvents()
				if n := seriesCount(t, env.Registry, caExpiryMetric); n != 1 {
					t.Fatalf("%d %s series for the verified issuer, want 1", n, caExpiryMetric)
				}
				checkReadyMetric(t, env.Registry, tc.kind, key, true)
				if err := env.Client.Delete(context.Background(), env.getIssuer(t, tc.kind, key)); err != nil {
					t.Fatal(err)
				}
			}

			result, err := env.reconcileIssuer(t, tc.kind, key)
			if err != nil {
				t.Fatalf("reconciling a deleted issuer: %v", err)
			}
			if result != (ctrl.Result{}) {
				t.Errorf("result %+v, want none", result)
			}
			env.expectEvents(t)
			for _, metric := range []string{caExpiryMetric, readyMetric} {
				if n := seriesCount(t, env.Registry, metric); n != 0 {
					t.Errorf("%d %s series after the issuer was deleted, want none", n, metric)
				}
			}
		})
	}
}

// TestIssuerTransientError: when the API server cannot be asked, Reconcile returns the error for a
// retry and leaves the status and events alone.
func TestIssuerTransientError(t *testing.T) {
	errUnavailable := apierrors.NewServiceUnavailable("etcd is down")
	tests := []struct {
		name string
		// failGet fails the Get of objects it matches.
		failGet func(obj client.Object) bool
	}{
		{
			name: "Secret metadata cannot be read",
			failGet: func(obj client.Object) bool {
				_, ok := obj.(*metav1.PartialObjectMetadata)
				return ok
			},
		},
		{
			name: "Secret data cannot be read",
			failGet: func(obj client.Object) bool {
				_, ok := obj.(*corev1.Secret)
				return ok
			},
		},
		{
			name: "issuer cannot be read",
			failGet: func(obj client.Object) bool {
				_, ok := obj.(*v1alpha1.PQIssuer)
				return ok
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			key := testIssuerKey(PQIssuerKind)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			env := newTestEnv(t, clk,
				withObjects(newIssuer(PQIssuerKind, key), newSecret(testNamespace, caSecret, withCAData(ca))),
				withInterceptor(interceptor.Funcs{
					Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
						if tc.failGet(obj) {
							return errUnavailable
						}
						return c.Get(ctx, key, obj, opts...)
					},
				}))
			_, err := env.reconcileIssuer(t, PQIssuerKind, key)
			if !errors.Is(err, errUnavailable) {
				t.Fatalf("got error %v, want %v", err, errUnavailable)
			}
			issuer := &v1alpha1.PQIssuer{}
			if err := env.Client.(interface{ Unwrap() client.WithWatch }).Unwrap().Get(context.Background(), key, issuer); err != nil {
				t.Fatal(err)
			}
			if len(issuer.Status.Conditions) != 0 {
				t.Errorf("status changed on a transient error: %+v", issuer.Status)
			}
			env.expectEvents(t)
		})
	}
}

func TestIssuersForSecret(t *testing.T) {
	objs := []client.Object{
		newPQIssuer(testNamespace, "a"),
		newPQIssuer(testNamespace, "b"),
		newPQIssuer(testNamespace, "other-secret", withCASecretName("other")),
		newPQIssuer("elsewhere", "c"),
		newPQClusterIssuer("x"),
		newPQClusterIssuer("y"),
		newPQClusterIssuer("other-secret", withCASecretName("other")),
	}
	tests := []struct {
		name   string
		kind   IssuerKind
		secret types.NamespacedName
		want   []string // issuer keys
	}{
		{"PQIssuers naming the Secret in its namespace", PQIssuerKind, types.NamespacedName{Namespace: testNamespace, Name: caSecret}, []string{"demo/a", "demo/b"}},
		{"PQIssuers of another namespace", PQIssuerKind, types.NamespacedName{Namespace: "elsewhere", Name: caSecret}, []string{"elsewhere/c"}},
		{"PQIssuer naming another Secret", PQIssuerKind, types.NamespacedName{Namespace: testNamespace, Name: "other"}, []string{"demo/other-secret"}},
		{"no PQIssuer names the Secret", PQIssuerKind, types.NamespacedName{Namespace: testNamespace, Name: "unused"}, nil},
		{"PQIssuers ignore the cluster resource namespace", PQIssuerKind, types.NamespacedName{Namespace: clusterResourceNamespace, Name: caSecret}, nil},
		{"PQClusterIssuers naming a Secret of the cluster resource namespace", PQClusterIssuerKind, types.NamespacedName{Namespace: clusterResourceNamespace, Name: caSecret}, []string{"/x", "/y"}},
		{"PQClusterIssuer naming another Secret", PQClusterIssuerKind, types.NamespacedName{Namespace: clusterResourceNamespace, Name: "other"}, []string{"/other-secret"}},
		{"PQClusterIssuers ignore other namespaces", PQClusterIssuerKind, types.NamespacedName{Namespace: testNamespace, Name: caSecret}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t, newTestClock(t), withObjects(objs...))
			reqs := env.issuerReconciler(tc.kind).issuersForSecret(context.Background(), newSecret(tc.secret.Namespace, tc.secret.Name))
			var got []string
			for _, r := range reqs {
				got = append(got, r.Namespace+"/"+r.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIssuerIsReady(t *testing.T) {
	tests := []struct {
		name        string
		issuer      v1alpha1.Issuer
		wantReady   bool
		wantMessage string
	}{
		{"no condition", newPQIssuer(testNamespace, "a"), false, "it has not been checked yet"},
		{"ready at an older generation", newPQIssuer(testNamespace, "a", withGeneration(2), withIssuerReady(metav1.ConditionTrue, v1alpha1.ReasonVerified, "ok", 1)), false, "it has not been checked yet"},
		{"not ready", newPQClusterIssuer("a", withIssuerReady(metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound, "no Secret", 1)), false, "no Secret"},
		{"unknown", newPQClusterIssuer("a", withIssuerReady(metav1.ConditionUnknown, "Checking", "checking", 1)), false, "checking"},
		{"ready", newPQIssuer(testNamespace, "a", withIssuerReady(metav1.ConditionTrue, v1alpha1.ReasonVerified, "Signing with X", 1)), true, "Signing with X"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready, message := issuerIsReady(tc.issuer)
			if ready != tc.wantReady || message != tc.wantMessage {
				t.Errorf("issuerIsReady = %v, %q; want %v, %q", ready, message, tc.wantReady, tc.wantMessage)
			}
		})
	}
}

func TestIssuerKindSecretKey(t *testing.T) {
	tests := []struct {
		name   string
		kind   IssuerKind
		issuer v1alpha1.Issuer
		want   types.NamespacedName
	}{
		{"PQIssuer reads its own namespace", PQIssuerKind, newPQIssuer("team-a", "i", withCASecretName("s")), types.NamespacedName{Namespace: "team-a", Name: "s"}},
		{"PQClusterIssuer reads the cluster resource namespace", PQClusterIssuerKind, newPQClusterIssuer("i", withCASecretName("s")), types.NamespacedName{Namespace: clusterResourceNamespace, Name: "s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.kind.secretKey(tc.issuer, clusterResourceNamespace); got != tc.want {
				t.Errorf("secretKey = %s, want %s", got, tc.want)
			}
		})
	}
}

// Compile-time check that the reconcilers are reconcile.Reconcilers.
var (
	_ reconcile.Reconciler = &IssuerReconciler{}
	_ reconcile.Reconciler = &CertificateRequestReconciler{}
)

// TestIssuerClusterIssuersOnly: with Secret read granted only in the cluster resource namespace, a
// PQIssuer elsewhere says so (one Warning event) without trying to read its Secret; issuers whose
// Secret lies in that namespace are verified as usual.
func TestIssuerClusterIssuersOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind IssuerKind
		ns   string // the issuer's namespace
		want wantCondition
	}{
		{
			name: "PQIssuer in another namespace is restricted",
			kind: PQIssuerKind, ns: testNamespace,
			want: wantCondition{"False", v1alpha1.ReasonSecretsRestricted, []string{"--cluster-issuers-only", "namespace " + clusterResourceNamespace, "secrets.clusterWide=true"}},
		},
		{
			name: "PQIssuer in the cluster resource namespace is verified",
			kind: PQIssuerKind, ns: clusterResourceNamespace,
			want: wantCondition{"True", v1alpha1.ReasonVerified, []string{"ML-DSA-65"}},
		},
		{
			name: "PQClusterIssuer is verified",
			kind: PQClusterIssuerKind,
			want: wantCondition{"True", v1alpha1.ReasonVerified, []string{"ML-DSA-65"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			key := types.NamespacedName{Namespace: tc.ns, Name: issuerName}
			var reads int
			env := newTestEnv(t, clk,
				withObjects(newIssuer(tc.kind, key),
					newSecret(testNamespace, caSecret, withCAData(ca)),
					newSecret(clusterResourceNamespace, caSecret, withCAData(ca))),
				withInterceptor(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
					if _, ok := obj.(*corev1.Secret); ok && k.Namespace != clusterResourceNamespace {
						reads++
					}
					return c.Get(ctx, k, obj, opts...)
				}}))
			r := env.issuerReconciler(tc.kind)
			r.ClusterIssuersOnly = true
			wantType := corev1.EventTypeNormal
			if tc.want.Status == "False" {
				wantType = corev1.EventTypeWarning
			}
			for i, wantEvents := range [][]wantEvent{{{wantType, tc.want.Reason, tc.want.Contains}}, nil} {
				if _, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: key}); err != nil {
					t.Fatalf("reconcile %d: %v", i+1, err)
				}
				checkIssuerReady(t, env.getIssuer(t, tc.kind, key), tc.want)
				env.expectEvents(t, wantEvents...)
			}
			if reads != 0 {
				t.Errorf("%d reads of Secrets outside %s, want none", reads, clusterResourceNamespace)
			}
		})
	}
}

package controllers

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// ---------------------------------------------------------------------------
// A test environment whose client, like the manager's cache, sees only labelled ConfigMaps and
// ClusterTrustBundles, while the API reader and the checks see all.

type trustEnv struct {
	*testEnv
	API client.WithWatch // the fake API server, unfiltered
}

func newTrustEnv(t *testing.T, clk *clocktesting.FakeClock, objs ...client.Object) *trustEnv {
	t.Helper()
	published := func(obj client.Object) bool {
		switch obj.(type) {
		case *corev1.ConfigMap, *certificatesv1.ClusterTrustBundle:
			return true
		}
		return false
	}
	env := newTestEnv(t, clk, withObjects(objs...), withInterceptor(interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := c.Get(ctx, key, obj, opts...); err != nil {
				return err
			}
			if published(obj) && !trustAnchorSelector().Matches(labels.Set(obj.GetLabels())) {
				return apierrors.NewNotFound(certificatesv1.Resource("test"), key.Name)
			}
			return nil
		},
	}))
	return &trustEnv{testEnv: env, API: env.Client.(interface{ Unwrap() client.WithWatch }).Unwrap()}
}

func (e *trustEnv) reconcile(t *testing.T, kind IssuerKind, key types.NamespacedName, opts ...func(*IssuerReconciler)) ctrl.Result {
	t.Helper()
	r := e.issuerReconciler(kind)
	r.APIReader = e.API
	for _, o := range opts {
		o(r)
	}
	result, err := r.Reconcile(context.Background(), reconcile.Request{NamespacedName: key})
	if err != nil {
		t.Fatalf("reconciling %s %s: %v", kind.Name, key, err)
	}
	return result
}

// putSecret writes the CA Secret of an issuer of kind with ca's data, or deletes it when ca is nil.
func (e *trustEnv) putSecret(t *testing.T, kind IssuerKind, ca *testCA) {
	t.Helper()
	ctx := context.Background()
	s := newSecret(issuerSecretNamespace(kind, testNamespace), caSecret)
	old := &corev1.Secret{}
	err := e.API.Get(ctx, client.ObjectKeyFromObject(s), old)
	switch {
	case ca == nil:
		err = e.API.Delete(ctx, old)
	case apierrors.IsNotFound(err):
		withCAData(*ca)(s)
		err = e.API.Create(ctx, s)
	case err == nil:
		withCAData(*ca)(s)
		s.ResourceVersion = old.ResourceVersion
		err = e.API.Update(ctx, s)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// publishedNames are the names pq-issuer publishes the trust anchors of the test issuer of kind
// under, spelled out.
func publishedNames(kind IssuerKind) (ctb string, cm types.NamespacedName, signerName string, lbls map[string]string) {
	if kind.ClusterScoped {
		return "pqclusterissuers.pq-issuer.dev:mesh:bundle",
			types.NamespacedName{Namespace: clusterResourceNamespace, Name: "pqclusterissuer-mesh-trust-anchors"},
			"pqclusterissuers.pq-issuer.dev/mesh",
			map[string]string{v1alpha1.IssuerKindLabel: "PQClusterIssuer", v1alpha1.IssuerNameLabel: "mesh"}
	}
	return "pqissuers.pq-issuer.dev:demo.mesh:bundle",
		types.NamespacedName{Namespace: clusterResourceNamespace, Name: "pqissuer-demo.mesh-trust-anchors"},
		"pqissuers.pq-issuer.dev/demo.mesh",
		map[string]string{v1alpha1.IssuerKindLabel: "PQIssuer", v1alpha1.IssuerNamespaceLabel: "demo", v1alpha1.IssuerNameLabel: "mesh"}
}

// getPublished reads the test issuer's ClusterTrustBundle and ConfigMap from the API server; nil
// when absent.
func (e *trustEnv) getPublished(t *testing.T, kind IssuerKind) (*certificatesv1.ClusterTrustBundle, *corev1.ConfigMap) {
	t.Helper()
	ctbName, cmKey, _, _ := publishedNames(kind)
	ctb, cm := &certificatesv1.ClusterTrustBundle{}, &corev1.ConfigMap{}
	if err := e.API.Get(context.Background(), types.NamespacedName{Name: ctbName}, ctb); apierrors.IsNotFound(err) {
		ctb = nil
	} else if err != nil {
		t.Fatal(err)
	}
	if err := e.API.Get(context.Background(), cmKey, cm); apierrors.IsNotFound(err) {
		cm = nil
	} else if err != nil {
		t.Fatal(err)
	}
	return ctb, cm
}

// hasLabels reports whether got has every label of want (others are whoever added them's).
func hasLabels(got, want map[string]string) bool {
	for k, v := range want {
		if cur, ok := got[k]; !ok || cur != v {
			return false
		}
	}
	return true
}

// checkPublished checks that the test issuer's ClusterTrustBundle and ConfigMap hold exactly the
// roots of cas, in order, with the issuer's labels; or that neither exists when cas is empty.
func (e *trustEnv) checkPublished(t *testing.T, kind IssuerKind, cas ...testCA) {
	t.Helper()
	ctb, cm := e.getPublished(t, kind)
	if len(cas) == 0 {
		if ctb != nil || cm != nil {
			t.Errorf("ClusterTrustBundle %v and ConfigMap %v exist, want neither", ctb != nil, cm != nil)
		}
		return
	}
	var want strings.Builder
	for _, ca := range cas {
		want.Write(ca.TrustAnchorPEM())
	}
	_, _, signerName, lbls := publishedNames(kind)
	switch {
	case ctb == nil:
		t.Error("no ClusterTrustBundle")
	case ctb.Spec.SignerName != signerName || ctb.Spec.TrustBundle != want.String() || !hasLabels(ctb.Labels, lbls):
		t.Errorf("ClusterTrustBundle signer %q, labels %v, %d certificates; want signer %q, labels %v, the roots of %d CAs",
			ctb.Spec.SignerName, ctb.Labels, strings.Count(ctb.Spec.TrustBundle, "BEGIN"), signerName, lbls, len(cas))
	}
	switch {
	case cm == nil:
		t.Error("no ConfigMap")
	case !maps.Equal(cm.Data, map[string]string{"ca.crt": want.String()}) || len(cm.BinaryData) > 0 || !hasLabels(cm.Labels, lbls):
		t.Errorf("ConfigMap data keys %v, labels %v, %d certificates; want ca.crt, labels %v, the roots of %d CAs",
			slices.Collect(maps.Keys(cm.Data)), cm.Labels, strings.Count(cm.Data["ca.crt"], "BEGIN"), lbls, len(cas))
	}
	if ctb != nil {
		if certs := parseCertsPEM(t, []byte(ctb.Spec.TrustBundle)); len(certs) != len(cas) {
			t.Errorf("the ClusterTrustBundle holds %d certificates, want %d", len(certs), len(cas))
		}
	}
}

// checkAnchors checks status.trustAnchors: the roots of cas in order, each retiring at the time
// given in removeAfter (zero: not retiring).
func checkAnchors(t *testing.T, issuer v1alpha1.Issuer, cas []testCA, removeAfter []time.Time) {
	t.Helper()
	got := issuer.GetStatus().TrustAnchors
	if len(got) != len(cas) {
		t.Fatalf("%d trust anchors, want %d: %+v", len(got), len(cas), got)
	}
	for i, ca := range cas {
		root := ca.Chain[len(ca.Chain)-1]
		if got[i].Certificate != string(ca.TrustAnchorPEM()) || got[i].Subject != root.Subject.String() {
			t.Errorf("trust anchor %d is %s, want %s", i, got[i].Subject, root.Subject)
		}
		switch want := removeAfter[i]; {
		case want.IsZero() && got[i].RemoveAfter != nil:
			t.Errorf("trust anchor %d (%s) retires at %s, want it current", i, got[i].Subject, got[i].RemoveAfter)
		case !want.IsZero() && (got[i].RemoveAfter == nil || !got[i].RemoveAfter.Equal(&metav1.Time{Time: want.Truncate(time.Second)})):
			t.Errorf("trust anchor %d (%s) removeAfter %v, want %s", i, got[i].Subject, got[i].RemoveAfter, want.Truncate(time.Second))
		}
	}
}

func withPodMaxDuration(d time.Duration) issuerOption {
	return func(i v1alpha1.Issuer) {
		i.GetSpec().PodCertificates = &v1alpha1.PodCertificates{MaxDuration: &metav1.Duration{Duration: d}}
	}
}

// ---------------------------------------------------------------------------

// TestTrustAnchorRotation changes an issuer's CA: the new root is published at once, the previous
// one stays until the longest certificate the issuer may have signed with it has expired, then
// leaves, with one event each time.
func TestTrustAnchorRotation(t *testing.T) {
	const year = 365 * 24 * time.Hour
	tests := []struct {
		name          string
		opts          []issuerOption
		firstLifetime time.Duration
		// removeAfter is when the first root must leave, given it and the time of the change.
		removeAfter func(first testCA, changed time.Time) time.Time
	}{
		{
			name: "overlap is maxDuration", opts: []issuerOption{withMaxDuration(720 * time.Hour)}, firstLifetime: year,
			removeAfter: func(_ testCA, changed time.Time) time.Time { return changed.Add(720 * time.Hour) },
		},
		{
			name: "overlap is the pod certificates' maxDuration", opts: []issuerOption{withMaxDuration(2 * time.Hour), withPodMaxDuration(48 * time.Hour)}, firstLifetime: year,
			removeAfter: func(_ testCA, changed time.Time) time.Time { return changed.Add(48 * time.Hour) },
		},
		{
			name: "the default overlap ends at the first root's expiry", firstLifetime: 30 * 24 * time.Hour,
			removeAfter: func(first testCA, _ time.Time) time.Time { return first.Chain[0].NotAfter },
		},
	}
	for _, kind := range issuerKinds {
		for _, tc := range tests {
			t.Run(kind.Name+" "+tc.name, func(t *testing.T) {
				clk := newTestClock(t)
				key := testIssuerKey(kind)
				first := newRootCA(t, signer.MLDSA65, clk.Now(), tc.firstLifetime)
				second := newRootCA(t, signer.MLDSA87, clk.Now(), year)
				env := newTrustEnv(t, clk, newIssuer(kind, key, tc.opts...))
				env.putSecret(t, kind, &first)

				// First Ready: the root is published.
				env.reconcile(t, kind, key)
				env.expectEvents(t, wantEvent{corev1.EventTypeNormal, v1alpha1.ReasonVerified, nil})
				checkAnchors(t, env.getIssuer(t, kind, key), []testCA{first}, []time.Time{{}})
				env.checkPublished(t, kind, first)

				// Nothing changed: nothing is written.
				ctb, cm := env.getPublished(t, kind)
				env.reconcile(t, kind, key)
				env.expectEvents(t)
				if ctb2, cm2 := env.getPublished(t, kind); ctb2.ResourceVersion != ctb.ResourceVersion || cm2.ResourceVersion != cm.ResourceVersion {
					t.Errorf("an unchanged bundle was written again")
				}

				// The CA changes an hour later: both roots are published, the new one first.
				clk.Step(time.Hour)
				changed := clk.Now()
				removeAfter := tc.removeAfter(first, changed)
				env.putSecret(t, kind, &second)
				result := env.reconcile(t, kind, key)
				if want := removeAfter.Sub(changed); result.RequeueAfter != want {
					t.Errorf("requeue after %s, want %s, when the first root leaves", result.RequeueAfter, want)
				}
				env.expectEvents(t,
					wantEvent{corev1.EventTypeNormal, v1alpha1.ReasonVerified, []string{"ML-DSA-87"}},
					wantEvent{corev1.EventTypeNormal, reasonTrustAnchorRetiring, []string{
						"CA changed: the previous root CN=Test Root ML-DSA-65,O=pq-issuer tests stays in the trust bundle until " + removeAfter.UTC().Format(time.RFC3339)}})
				issuer := env.getIssuer(t, kind, key)
				checkAnchors(t, issuer, []testCA{second, first}, []time.Time{{}, removeAfter})
				env.checkPublished(t, kind, second, first)
				leaves := issuer.GetStatus().TrustAnchors[1].RemoveAfter.Time

				// A second before it leaves, nothing changes.
				clk.SetTime(leaves.Add(-time.Second))
				if result := env.reconcile(t, kind, key); result.RequeueAfter != time.Second {
					t.Errorf("requeue after %s, want 1s", result.RequeueAfter)
				}
				env.expectEvents(t)
				env.checkPublished(t, kind, second, first)

				// When it leaves, the bundles hold the new root alone.
				clk.SetTime(leaves)
				result = env.reconcile(t, kind, key)
				if want := second.NotAfter.Sub(leaves) + time.Second; result.RequeueAfter != want {
					t.Errorf("requeue after %s, want %s (the CA's expiry)", result.RequeueAfter, want)
				}
				env.expectEvents(t, wantEvent{corev1.EventTypeNormal, reasonTrustAnchorRemoved, []string{"The previous root CN=Test Root ML-DSA-65,O=pq-issuer tests left the trust bundle"}})
				checkAnchors(t, env.getIssuer(t, kind, key), []testCA{second}, []time.Time{{}})
				env.checkPublished(t, kind, second)

				env.reconcile(t, kind, key)
				env.expectEvents(t)
			})
		}
	}
}

// TestTrustAnchorsOutage: while the issuer is not Ready its trust anchors stay published, and a
// previous root still leaves on time.
func TestTrustAnchorsOutage(t *testing.T) {
	for _, kind := range issuerKinds {
		t.Run(kind.Name, func(t *testing.T) {
			clk := newTestClock(t)
			key := testIssuerKey(kind)
			first := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			second := newRootCA(t, signer.MLDSA44, clk.Now(), 365*24*time.Hour)
			env := newTrustEnv(t, clk, newIssuer(kind, key))
			env.putSecret(t, kind, &first)
			env.reconcile(t, kind, key)
			env.putSecret(t, kind, &second)
			env.reconcile(t, kind, key)
			env.drainEvents()
			removeAfter := clk.Now().Add(signer.DefaultMaxDuration)

			// The Secret is deleted: not Ready, both roots stay, and the first still leaves on time.
			env.putSecret(t, kind, nil)
			result := env.reconcile(t, kind, key)
			env.expectEvents(t, wantEvent{corev1.EventTypeWarning, v1alpha1.ReasonSecretNotFound, nil})
			issuer := env.getIssuer(t, kind, key)
			checkIssuerReady(t, issuer, wantCondition{"False", v1alpha1.ReasonSecretNotFound, nil})
			checkAnchors(t, issuer, []testCA{second, first}, []time.Time{{}, removeAfter})
			env.checkPublished(t, kind, second, first)
			leaves := issuer.GetStatus().TrustAnchors[1].RemoveAfter.Time
			if want := leaves.Sub(clk.Now()); result.RequeueAfter != want {
				t.Errorf("requeue after %s, want %s, when the first root leaves", result.RequeueAfter, want)
			}

			clk.SetTime(leaves)
			env.reconcile(t, kind, key)
			env.expectEvents(t, wantEvent{corev1.EventTypeNormal, reasonTrustAnchorRemoved, []string{"ML-DSA-65"}})
			checkAnchors(t, env.getIssuer(t, kind, key), []testCA{second}, []time.Time{{}})
			env.checkPublished(t, kind, second)

			// Long after, still not Ready: the last root stays.
			clk.Step(2 * 365 * 24 * time.Hour)
			if result := env.reconcile(t, kind, key); result != (ctrl.Result{}) {
				t.Errorf("result %+v, want none", result)
			}
			env.expectEvents(t)
			checkAnchors(t, env.getIssuer(t, kind, key), []testCA{second}, []time.Time{{}})
			env.checkPublished(t, kind, second)

			// A new CA then: the last root has expired meanwhile, so it leaves at once.
			third := newRootCA(t, signer.MLDSA87, clk.Now(), 365*24*time.Hour)
			env.putSecret(t, kind, &third)
			env.reconcile(t, kind, key)
			env.expectEvents(t,
				wantEvent{corev1.EventTypeNormal, v1alpha1.ReasonVerified, []string{"ML-DSA-87"}},
				wantEvent{corev1.EventTypeNormal, reasonTrustAnchorRemoved, []string{"ML-DSA-44"}})
			checkAnchors(t, env.getIssuer(t, kind, key), []testCA{third}, []time.Time{{}})
			env.checkPublished(t, kind, third)
		})
	}
}

// TestTrustAnchorsRepaired: a published bundle that someone edited or deleted is written again,
// without an event, and without touching the status.
func TestTrustAnchorsRepaired(t *testing.T) {
	ctx := context.Background()
	type objects struct {
		ctb *certificatesv1.ClusterTrustBundle
		cm  *corev1.ConfigMap
	}
	tests := []struct {
		name string
		// edit changes the published objects through the API server.
		edit func(t *testing.T, env *trustEnv, o objects, other testCA)
	}{
		{name: "ClusterTrustBundle deleted", edit: func(t *testing.T, env *trustEnv, o objects, _ testCA) {
			if err := env.API.Delete(ctx, o.ctb); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ConfigMap deleted", edit: func(t *testing.T, env *trustEnv, o objects, _ testCA) {
			if err := env.API.Delete(ctx, o.cm); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ClusterTrustBundle holds another root", edit: func(t *testing.T, env *trustEnv, o objects, other testCA) {
			o.ctb.Spec.TrustBundle = string(other.TrustAnchorPEM())
			if err := env.API.Update(ctx, o.ctb); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ConfigMap ca.crt edited and a key added", edit: func(t *testing.T, env *trustEnv, o objects, other testCA) {
			o.cm.Data = map[string]string{"ca.crt": string(other.TrustAnchorPEM()), "extra": "x"}
			if err := env.API.Update(ctx, o.cm); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ConfigMap labels replaced (out of the cache)", edit: func(t *testing.T, env *trustEnv, o objects, other testCA) {
			o.cm.Labels = map[string]string{"app": "mine"}
			o.cm.Data["ca.crt"] = string(other.TrustAnchorPEM())
			if err := env.API.Update(ctx, o.cm); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ClusterTrustBundle name label changed", edit: func(t *testing.T, env *trustEnv, o objects, _ testCA) {
			o.ctb.Labels[v1alpha1.IssuerNameLabel] = "other"
			if err := env.API.Update(ctx, o.ctb); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ClusterTrustBundle labels removed (out of the cache)", edit: func(t *testing.T, env *trustEnv, o objects, _ testCA) {
			o.ctb.Labels = nil
			if err := env.API.Update(ctx, o.ctb); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, kind := range issuerKinds {
		for _, tc := range tests {
			t.Run(kind.Name+" "+tc.name, func(t *testing.T) {
				clk := newTestClock(t)
				key := testIssuerKey(kind)
				ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
				other := newRootCA(t, signer.MLDSA44, clk.Now(), 365*24*time.Hour)
				env := newTrustEnv(t, clk, newIssuer(kind, key))
				env.putSecret(t, kind, &ca)
				env.reconcile(t, kind, key)
				env.drainEvents()
				before := env.getIssuer(t, kind, key)

				ctb, cm := env.getPublished(t, kind)
				tc.edit(t, env, objects{ctb, cm}, other)
				// The watch maps the edited object back to the issuer.
				r := env.issuerReconciler(kind)
				if got := append(r.issuerOfClusterTrustBundle(ctx, ctb), r.issuerOfConfigMap(ctx, cm)...); !slices.Equal(got, []reconcile.Request{{NamespacedName: key}, {NamespacedName: key}}) {
					t.Errorf("the published objects map to %v, want the issuer %s twice", got, key)
				}

				env.reconcile(t, kind, key)
				env.expectEvents(t)
				env.checkPublished(t, kind, ca)
				if after := env.getIssuer(t, kind, key); after.GetResourceVersion() != before.GetResourceVersion() {
					t.Error("the issuer was written")
				}
			})
		}
	}
}

// TestTrustAnchorsDeleted: the bundles of an issuer that is gone are deleted, also when they were
// left over while pq-issuer was down; an unlabelled ConfigMap of the same name is not pq-issuer's.
func TestTrustAnchorsDeleted(t *testing.T) {
	ctx := context.Background()
	for _, kind := range issuerKinds {
		ctbName, cmKey, signerName, lbls := publishedNames(kind)
		tests := []struct {
			name string
			// setUp leaves the cluster as the issuer's deletion does.
			setUp func(t *testing.T, env *trustEnv, ca testCA)
			// keepConfigMap: the ConfigMap must outlive the issuer.
			keepConfigMap bool
		}{
			{name: "issuer deleted", setUp: func(t *testing.T, env *trustEnv, ca testCA) {
				env.reconcile(t, kind, testIssuerKey(kind))
				env.checkPublished(t, kind, ca)
				env.drainEvents()
				if err := env.API.Delete(ctx, env.getIssuer(t, kind, testIssuerKey(kind))); err != nil {
					t.Fatal(err)
				}
			}},
			{name: "left over while pq-issuer was down", setUp: func(t *testing.T, env *trustEnv, ca testCA) {
				if err := env.API.Delete(ctx, env.getIssuer(t, kind, testIssuerKey(kind))); err != nil {
					t.Fatal(err)
				}
				for _, obj := range []client.Object{
					&certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: ctbName, Labels: lbls},
						Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: signerName, TrustBundle: string(ca.TrustAnchorPEM())}},
					&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: cmKey.Namespace, Name: cmKey.Name, Labels: lbls},
						Data: map[string]string{"ca.crt": string(ca.TrustAnchorPEM())}},
				} {
					if err := env.API.Create(ctx, obj); err != nil {
						t.Fatal(err)
					}
				}
			}},
			{name: "never published, an unlabelled ConfigMap of the name is kept", keepConfigMap: true, setUp: func(t *testing.T, env *trustEnv, _ testCA) {
				if err := env.API.Delete(ctx, env.getIssuer(t, kind, testIssuerKey(kind))); err != nil {
					t.Fatal(err)
				}
				if err := env.API.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: cmKey.Namespace, Name: cmKey.Name}}); err != nil {
					t.Fatal(err)
				}
			}},
		}
		for _, tc := range tests {
			t.Run(kind.Name+" "+tc.name, func(t *testing.T) {
				clk := newTestClock(t)
				key := testIssuerKey(kind)
				ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
				env := newTrustEnv(t, clk, newIssuer(kind, key))
				env.putSecret(t, kind, &ca)
				tc.setUp(t, env, ca)

				if result := env.reconcile(t, kind, key); result != (ctrl.Result{}) {
					t.Errorf("result %+v, want none", result)
				}
				env.expectEvents(t)
				ctb, cm := env.getPublished(t, kind)
				if ctb != nil {
					t.Error("the ClusterTrustBundle is still there")
				}
				if (cm != nil) != tc.keepConfigMap {
					t.Errorf("the ConfigMap exists: %v, want %v", cm != nil, tc.keepConfigMap)
				}
			})
		}
	}
}

// TestTrustAnchorsPublishedWhere: which of the two bundles an issuer gets, by what the API server
// serves, what pq-issuer may write, and how long the issuer's name is.
func TestTrustAnchorsPublishedWhere(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat(strings.Repeat("a", 62)+".", 3) + strings.Repeat("b", 42) // 231 characters
	tests := []struct {
		name string
		kind IssuerKind
		key  types.NamespacedName
		// published: the status holds the CA's root from before.
		published bool
		config    func(*IssuerReconciler)
		// wantCTB and wantCM are the bundles that must exist, "" for none.
		wantCTB string
		wantCM  types.NamespacedName
		// wantLabels are the bundles' labels.
		wantLabels map[string]string
	}{
		{
			name: "no ClusterTrustBundles before Kubernetes 1.37", kind: PQClusterIssuerKind, key: types.NamespacedName{Name: "mesh"},
			config:     func(r *IssuerReconciler) { r.ClusterTrustBundles = false },
			wantCM:     types.NamespacedName{Namespace: clusterResourceNamespace, Name: "pqclusterissuer-mesh-trust-anchors"},
			wantLabels: map[string]string{v1alpha1.IssuerKindLabel: "PQClusterIssuer", v1alpha1.IssuerNameLabel: "mesh"},
		},
		{
			name: "--cluster-issuers-only: a PQIssuer elsewhere, not Ready, keeps its roots published", kind: PQIssuerKind, key: types.NamespacedName{Namespace: testNamespace, Name: "mesh"},
			published:  true,
			config:     func(r *IssuerReconciler) { r.ClusterIssuersOnly = true },
			wantCTB:    "pqissuers.pq-issuer.dev:demo.mesh:bundle",
			wantCM:     types.NamespacedName{Namespace: clusterResourceNamespace, Name: "pqissuer-demo.mesh-trust-anchors"},
			wantLabels: map[string]string{v1alpha1.IssuerKindLabel: "PQIssuer", v1alpha1.IssuerNamespaceLabel: testNamespace, v1alpha1.IssuerNameLabel: "mesh"},
		},
		{
			name: "--cluster-issuers-only: a PQIssuer in the cluster resource namespace", kind: PQIssuerKind, key: types.NamespacedName{Namespace: clusterResourceNamespace, Name: "mesh"},
			config:     func(r *IssuerReconciler) { r.ClusterIssuersOnly = true },
			wantCTB:    "pqissuers.pq-issuer.dev:cert-manager.mesh:bundle",
			wantCM:     types.NamespacedName{Namespace: clusterResourceNamespace, Name: "pqissuer-cert-manager.mesh-trust-anchors"},
			wantLabels: map[string]string{v1alpha1.IssuerKindLabel: "PQIssuer", v1alpha1.IssuerNamespaceLabel: clusterResourceNamespace, v1alpha1.IssuerNameLabel: "mesh"},
		},
		{
			name: "a name too long for a ConfigMap's and a label's", kind: PQIssuerKind, key: types.NamespacedName{Namespace: testNamespace, Name: long},
			wantCTB:    "pqissuers.pq-issuer.dev:demo." + long + ":bundle",
			wantLabels: map[string]string{v1alpha1.IssuerKindLabel: "PQIssuer", v1alpha1.IssuerNamespaceLabel: testNamespace},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			issuer := newIssuer(tc.kind, tc.key)
			if tc.published {
				issuer.GetStatus().TrustAnchors = []v1alpha1.TrustAnchor{{Certificate: string(ca.TrustAnchorPEM())}}
			}
			secret := newSecret(issuerSecretNamespace(tc.kind, tc.key.Namespace), caSecret, withCAData(ca))
			env := newTrustEnv(t, clk, issuer, secret)
			config := func(*IssuerReconciler) {}
			if tc.config != nil {
				config = tc.config
			}
			env.reconcile(t, tc.kind, tc.key, config)

			ctbs, cms := &certificatesv1.ClusterTrustBundleList{}, &corev1.ConfigMapList{}
			if err := env.API.List(ctx, ctbs); err != nil {
				t.Fatal(err)
			}
			if err := env.API.List(ctx, cms); err != nil {
				t.Fatal(err)
			}
			var gotCTB string
			var gotCM types.NamespacedName
			for _, b := range ctbs.Items {
				gotCTB = b.Name
				if !maps.Equal(b.Labels, tc.wantLabels) {
					t.Errorf("ClusterTrustBundle labels %v, want %v", b.Labels, tc.wantLabels)
				}
			}
			for _, c := range cms.Items {
				gotCM = client.ObjectKeyFromObject(&c)
				if !maps.Equal(c.Labels, tc.wantLabels) {
					t.Errorf("ConfigMap labels %v, want %v", c.Labels, tc.wantLabels)
				}
			}
			if len(ctbs.Items) > 1 || len(cms.Items) > 1 || gotCTB != tc.wantCTB || gotCM != tc.wantCM {
				t.Errorf("published ClusterTrustBundle %q and ConfigMap %q (%d, %d), want %q and %q", gotCTB, gotCM, len(ctbs.Items), len(cms.Items), tc.wantCTB, tc.wantCM)
			}
		})
	}
}

// TestTrustConfigMapName: every trust ConfigMap lives in the cluster resource namespace, named after
// its issuer's kind, namespace and name, and maps back to that issuer alone.
func TestTrustConfigMapName(t *testing.T) {
	crn := func(name string) types.NamespacedName {
		return types.NamespacedName{Namespace: clusterResourceNamespace, Name: name}
	}
	tests := []struct {
		name   string
		kind   IssuerKind
		issuer types.NamespacedName
		want   types.NamespacedName
		wantOK bool
	}{
		{"PQIssuer", PQIssuerKind, types.NamespacedName{Namespace: "demo", Name: "mesh"}, crn("pqissuer-demo.mesh-trust-anchors"), true},
		{"PQIssuer in the cluster resource namespace", PQIssuerKind, types.NamespacedName{Namespace: clusterResourceNamespace, Name: "mesh"}, crn("pqissuer-cert-manager.mesh-trust-anchors"), true},
		{"PQIssuer with dots in its name", PQIssuerKind, types.NamespacedName{Namespace: "demo", Name: "a.b"}, crn("pqissuer-demo.a.b-trust-anchors"), true},
		{"PQClusterIssuer", PQClusterIssuerKind, types.NamespacedName{Name: "mesh"}, crn("pqclusterissuer-mesh-trust-anchors"), true},
		{"PQClusterIssuer with a dot in its name", PQClusterIssuerKind, types.NamespacedName{Name: "demo.mesh"}, crn("pqclusterissuer-demo.mesh-trust-anchors"), true},
		{"a name ending like the suffix", PQIssuerKind, types.NamespacedName{Namespace: "demo", Name: "x-trust-anchors"}, crn("pqissuer-demo.x-trust-anchors-trust-anchors"), true},
		{"PQIssuer namespace and name of 229 characters", PQIssuerKind, types.NamespacedName{Namespace: "demo", Name: strings.Repeat("a", 225)}, crn("pqissuer-demo." + strings.Repeat("a", 225) + "-trust-anchors"), true},
		{"PQIssuer namespace and name of 230 characters", PQIssuerKind, types.NamespacedName{Namespace: "demo", Name: strings.Repeat("a", 226)}, types.NamespacedName{}, false},
		{"PQClusterIssuer name of 223 characters", PQClusterIssuerKind, types.NamespacedName{Name: strings.Repeat("a", 223)}, crn("pqclusterissuer-" + strings.Repeat("a", 223) + "-trust-anchors"), true},
		{"PQClusterIssuer name of 224 characters", PQClusterIssuerKind, types.NamespacedName{Name: strings.Repeat("a", 224)}, types.NamespacedName{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.kind.trustConfigMap(tc.issuer, clusterResourceNamespace)
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Fatalf("got %s, %v; want %s, %v", got, ok, tc.want, tc.wantOK)
			}
			if !ok {
				return
			}
			for _, kind := range issuerKinds {
				back, ok := kind.issuerOfTrustConfigMap(got, clusterResourceNamespace)
				if wantBack := kind.Name == tc.kind.Name; ok != wantBack || (ok && back != tc.issuer) {
					t.Errorf("the ConfigMap maps back to %s %s, %v; want %s only as a %s", kind.Name, back, ok, tc.issuer, tc.kind.Name)
				}
			}
		})
	}
}

// TestIssuerOfPublished: the watches map pq-issuer's bundles, and nothing else, to their issuer.
func TestIssuerOfPublished(t *testing.T) {
	ctb := func(name, signerName string) client.Object {
		return &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: signerName}}
	}
	cm := func(ns, name string) client.Object {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	tests := []struct {
		name string
		obj  client.Object
		// want is the issuer each kind's watch maps obj to, by kind name.
		want map[string]types.NamespacedName
	}{
		{"PQClusterIssuer's ClusterTrustBundle", ctb("pqclusterissuers.pq-issuer.dev:mesh:bundle", "pqclusterissuers.pq-issuer.dev/mesh"),
			map[string]types.NamespacedName{"PQClusterIssuer": {Name: "mesh"}}},
		{"PQIssuer's ClusterTrustBundle", ctb("pqissuers.pq-issuer.dev:demo.mesh:bundle", "pqissuers.pq-issuer.dev/demo.mesh"),
			map[string]types.NamespacedName{"PQIssuer": {Namespace: "demo", Name: "mesh"}}},
		{"another ClusterTrustBundle of our signer", ctb("pqclusterissuers.pq-issuer.dev:mesh:extra", "pqclusterissuers.pq-issuer.dev/mesh"), nil},
		{"another signer's ClusterTrustBundle", ctb("example.com:mesh:bundle", "example.com/mesh"), nil},
		{"a ClusterTrustBundle without a signer", ctb("roots", ""), nil},
		{"PQIssuer's ConfigMap", cm(clusterResourceNamespace, "pqissuer-demo.mesh-trust-anchors"), map[string]types.NamespacedName{"PQIssuer": {Namespace: "demo", Name: "mesh"}}},
		{"PQClusterIssuer's ConfigMap", cm(clusterResourceNamespace, "pqclusterissuer-mesh-trust-anchors"), map[string]types.NamespacedName{"PQClusterIssuer": {Name: "mesh"}}},
		{"PQIssuer's ConfigMap name in another namespace", cm("demo", "pqissuer-demo.mesh-trust-anchors"), nil},
		{"PQClusterIssuer's ConfigMap name in another namespace", cm("demo", "pqclusterissuer-mesh-trust-anchors"), nil},
		{"PQIssuer's ConfigMap name without a namespace", cm(clusterResourceNamespace, "pqissuer-mesh-trust-anchors"), nil},
		{"PQIssuer's ConfigMap name with an invalid namespace", cm(clusterResourceNamespace, "pqissuer-Demo.mesh-trust-anchors"), nil},
		{"PQIssuer's ConfigMap name without an issuer name", cm(clusterResourceNamespace, "pqissuer-demo.-trust-anchors"), nil},
		{"a ConfigMap without an issuer name", cm(clusterResourceNamespace, "pqclusterissuer--trust-anchors"), nil},
		{"another ConfigMap", cm("demo", "kube-root-ca.crt"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, kind := range issuerKinds {
				r := &IssuerReconciler{Kind: kind, ClusterResourceNamespace: clusterResourceNamespace}
				var got []reconcile.Request
				if _, ok := tc.obj.(*corev1.ConfigMap); ok {
					got = r.issuerOfConfigMap(context.Background(), tc.obj)
				} else {
					got = r.issuerOfClusterTrustBundle(context.Background(), tc.obj)
				}
				var want []reconcile.Request
				if key, ok := tc.want[kind.Name]; ok {
					want = []reconcile.Request{{NamespacedName: key}}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s watch: got %v, want %v", kind.Name, got, want)
				}
			}
		})
	}
}

// TestTrustAnchorCaches checks what the manager's cache holds of ConfigMaps and
// ClusterTrustBundles: only labelled ones, ConfigMaps in the cluster resource namespace alone (the
// only one where the chart grants them), ClusterTrustBundles only where the API server serves them.
func TestTrustAnchorCaches(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{name: "ClusterTrustBundles served", opts: Options{ClusterResourceNamespace: clusterResourceNamespace, clusterTrustBundles: true}},
		{name: "ClusterTrustBundles not served", opts: Options{ClusterResourceNamespace: clusterResourceNamespace}},
		{name: "cluster issuers only", opts: Options{ClusterResourceNamespace: clusterResourceNamespace, ClusterIssuersOnly: true, clusterTrustBundles: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caches := trustAnchorCaches(tc.opts)
			wantKinds := 1
			if tc.opts.clusterTrustBundles {
				wantKinds = 2
			}
			if len(caches) != wantKinds {
				t.Fatalf("%d cache settings, want %d", len(caches), wantKinds)
			}
			for obj, c := range caches {
				if c.Label == nil {
					t.Fatalf("%T: no label selector: every one of the cluster would be cached", obj)
				}
				for _, s := range []struct {
					labels map[string]string
					want   bool
				}{
					{map[string]string{v1alpha1.IssuerKindLabel: "PQIssuer", v1alpha1.IssuerNamespaceLabel: "demo"}, true},
					{map[string]string{v1alpha1.IssuerKindLabel: "PQClusterIssuer"}, true},
					{map[string]string{v1alpha1.IssuerKindLabel: "ClusterIssuer"}, false},
					{map[string]string{v1alpha1.IssuerNameLabel: "mesh"}, false},
					{nil, false},
				} {
					if got := c.Label.Matches(labels.Set(s.labels)); got != s.want {
						t.Errorf("%T labelled %v cached: %v, want %v (selector %q)", obj, s.labels, got, s.want, c.Label)
					}
				}
				if _, ok := obj.(*certificatesv1.ClusterTrustBundle); ok {
					if c.Namespaces != nil {
						t.Errorf("ClusterTrustBundles are cluster-scoped, yet namespaces %v", c.Namespaces)
					}
					continue
				}
				namespaces := slices.Collect(maps.Keys(c.Namespaces))
				if want := []string{clusterResourceNamespace}; !slices.Equal(namespaces, want) {
					t.Errorf("ConfigMap namespaces %v, want %v", namespaces, want)
				}
			}
		})
	}
}

// TestTrustAnchorRBAC ties the generated ClusterRole (config/rbac/role.yaml, which the Helm chart
// renders) to the signer names: attest for both signer domains, written by controller-gen with the
// "/" and "*" RBAC matches literally.
func TestTrustAnchorRBAC(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules []rbacv1.PolicyRule
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var role rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		if role.Kind == "ClusterRole" {
			rules = role.Rules
		}
	}
	allows := func(group, resource, verb, name string) bool {
		return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) &&
				(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name))
		})
	}
	for _, domain := range []string{pqIssuerSignerDomain, pqClusterIssuerSignerDomain} {
		if !allows("certificates.k8s.io", "signers", "attest", domain+"/*") {
			t.Errorf("the ClusterRole does not allow attest for signer %s/* (make manifests?)", domain)
		}
	}
	if allows("certificates.k8s.io", "signers", "attest", "example.com/*") {
		t.Error("the ClusterRole allows attest for any signer")
	}
	for _, r := range []struct{ group, resource string }{{"certificates.k8s.io", "clustertrustbundles"}, {"", "configmaps"}} {
		for _, verb := range []string{"get", "list", "watch", "create", "update", "delete"} {
			if !allows(r.group, r.resource, verb, "") {
				t.Errorf("the ClusterRole does not allow %s on %s (make manifests?)", verb, r.resource)
			}
		}
	}
}

// TestTrustAnchorsPublishFailure: when the ClusterTrustBundle cannot be written (no attest
// permission), the ConfigMap still is, and the error says which object failed.
func TestTrustAnchorsPublishFailure(t *testing.T) {
	for _, kind := range issuerKinds {
		t.Run(kind.Name, func(t *testing.T) {
			clk := newTestClock(t)
			key := testIssuerKey(kind)
			ca := newRootCA(t, signer.MLDSA65, clk.Now(), 365*24*time.Hour)
			forbidden := apierrors.NewForbidden(certificatesv1.Resource("clustertrustbundles"), "", nil)
			env := newTestEnv(t, clk,
				withObjects(newIssuer(kind, key), newSecret(issuerSecretNamespace(kind, testNamespace), caSecret, withCAData(ca))),
				withInterceptor(interceptor.Funcs{
					Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
						if _, ok := obj.(*certificatesv1.ClusterTrustBundle); ok {
							return forbidden
						}
						return c.Create(ctx, obj, opts...)
					},
				}))
			tenv := &trustEnv{testEnv: env, API: env.Client.(interface{ Unwrap() client.WithWatch }).Unwrap()}

			_, err := env.reconcileIssuer(t, kind, key)
			ctbName, _, _, _ := publishedNames(kind)
			if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "in ClusterTrustBundle "+ctbName) {
				t.Fatalf("got error %v, want the Forbidden error about ClusterTrustBundle %s", err, ctbName)
			}
			checkIssuerReady(t, env.getIssuer(t, kind, key), wantCondition{"True", v1alpha1.ReasonVerified, nil})
			checkAnchors(t, env.getIssuer(t, kind, key), []testCA{ca}, []time.Time{{}})
			ctb, cm := tenv.getPublished(t, kind)
			if ctb != nil || cm == nil || cm.Data["ca.crt"] != string(ca.TrustAnchorPEM()) {
				t.Errorf("ClusterTrustBundle %v, ConfigMap %v; want only the ConfigMap, with the root", ctb != nil, cm != nil)
			}
		})
	}
}

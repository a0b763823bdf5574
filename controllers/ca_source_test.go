package controllers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// countingReader counts the Gets that reach the API server: of whole Secrets (gets), and of metadata
// only (metaGets).
type countingReader struct {
	client.Reader
	gets, metaGets int
}

func (r *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*metav1.PartialObjectMetadata); ok {
		r.metaGets++
	} else {
		r.gets++
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// caSecretCache reads like the manager's cache: it holds only the Secrets secretCache selects.
type caSecretCache struct{ client.Reader }

func (r caSecretCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := r.Reader.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if !secretCache(Options{}).Label.Matches(labels.Set(obj.GetLabels())) {
		return apierrors.NewNotFound(corev1.Resource("secrets"), key.Name)
	}
	return nil
}

// failingReader fails every read.
type failingReader struct{ err error }

func (r failingReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return r.err
}

func (r failingReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return r.err
}

func TestCASourceLoad(t *testing.T) {
	secretKey := types.NamespacedName{Namespace: testNamespace, Name: caSecret}
	errUnavailable := apierrors.NewServiceUnavailable("etcd is down")
	tests := []struct {
		name string
		// objs are the objects of the fake API server; source, if set, builds the CASource from it.
		objs   func(t *testing.T, now time.Time) []client.Object
		source func(t *testing.T, c client.Client) *CASource
		// check looks at Load's result.
		check func(t *testing.T, ca *signer.CA, err error)
	}{
		{
			name: "valid CA",
			objs: func(t *testing.T, now time.Time) []client.Object {
				return []client.Object{newSecret(testNamespace, caSecret, withCAData(newRootCA(t, signer.MLDSA65, now, time.Hour)))}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				if err != nil || ca == nil || ca.Algorithm() != signer.MLDSA65 {
					t.Fatalf("Load = %v, %v; want the ML-DSA-65 CA", ca, err)
				}
			},
		},
		{
			name: "marked Secret the cache does not hold yet: read from the API server",
			objs: func(t *testing.T, now time.Time) []client.Object {
				return []client.Object{newSecret(testNamespace, caSecret, withCAData(newRootCA(t, signer.MLDSA44, now, time.Hour)))}
			},
			source: func(t *testing.T, c client.Client) *CASource {
				return &CASource{Metadata: newFakeClientBuilder(t).Build(), API: c}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				if err != nil || ca == nil || ca.Algorithm() != signer.MLDSA44 {
					t.Fatalf("Load = %v, %v; want the ML-DSA-44 CA", ca, err)
				}
			},
		},
		{
			name: "Secret without the label: SecretNotMarked, saying how to mark it",
			objs: func(t *testing.T, now time.Time) []client.Object {
				return []client.Object{newSecret(testNamespace, caSecret, withCAData(newRootCA(t, signer.MLDSA65, now, time.Hour)), withLabel(""))}
			},
			source: func(t *testing.T, c client.Client) *CASource {
				return &CASource{Metadata: caSecretCache{c}, API: c}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				var caErr *CAError
				if !errors.As(err, &caErr) || caErr.Reason != v1alpha1.ReasonSecretNotMarked || caErr.Secret != secretKey || ca != nil {
					t.Fatalf("Load = %v, %v; want a CAError SecretNotMarked for %s", ca, err, secretKey)
				}
				for _, want := range []string{"Secret demo/ca: not marked as a CA Secret", "`kubectl label secret -n demo ca pq-issuer.dev/ca-secret=true`", "`kubectl pq ca secret` writes the label"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("message %q lacks %q", err, want)
					}
				}
			},
		},
		{
			name: "label with another value: SecretNotMarked",
			objs: func(t *testing.T, now time.Time) []client.Object {
				return []client.Object{newSecret(testNamespace, caSecret, withCAData(newRootCA(t, signer.MLDSA65, now, time.Hour)), withLabel("yes"))}
			},
			source: func(t *testing.T, c client.Client) *CASource {
				return &CASource{Metadata: caSecretCache{c}, API: c}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				var caErr *CAError
				if !errors.As(err, &caErr) || caErr.Reason != v1alpha1.ReasonSecretNotMarked {
					t.Fatalf("Load error %v, want a CAError SecretNotMarked", err)
				}
			},
		},
		{
			name: "label removed between the metadata and the data reads: SecretNotMarked",
			objs: func(t *testing.T, now time.Time) []client.Object {
				return []client.Object{newSecret(testNamespace, caSecret, withCAData(newRootCA(t, signer.MLDSA65, now, time.Hour)))}
			},
			source: func(t *testing.T, c client.Client) *CASource {
				ca := newRootCA(t, signer.MLDSA65, time.Now(), time.Hour)
				return &CASource{Metadata: c, API: newFakeClientBuilder(t).WithObjects(newSecret(testNamespace, caSecret, withCAData(ca), withLabel(""))).Build()}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				var caErr *CAError
				if !errors.As(err, &caErr) || caErr.Reason != v1alpha1.ReasonSecretNotMarked || ca != nil {
					t.Fatalf("Load = %v, %v; want a CAError SecretNotMarked", ca, err)
				}
			},
		},
		{
			name: "Secret missing",
			objs: func(t *testing.T, now time.Time) []client.Object { return nil },
			check: func(t *testing.T, ca *signer.CA, err error) {
				var nf *SecretNotFoundError
				if !errors.As(err, &nf) || nf.Secret != secretKey {
					t.Fatalf("Load error %v, want a SecretNotFoundError for %s", err, secretKey)
				}
				if !strings.Contains(err.Error(), "kubectl pq ca secret") {
					t.Errorf("message %q does not tell how to create the Secret", err)
				}
			},
		},
		{
			name: "Secret deleted between the metadata and the data reads",
			objs: func(t *testing.T, now time.Time) []client.Object {
				return []client.Object{newSecret(testNamespace, caSecret, withCAData(newRootCA(t, signer.MLDSA65, now, time.Hour)))}
			},
			source: func(t *testing.T, c client.Client) *CASource {
				return &CASource{Metadata: c, API: newFakeClientBuilder(t).Build()}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				var nf *SecretNotFoundError
				if !errors.As(err, &nf) {
					t.Fatalf("Load error %v, want a SecretNotFoundError", err)
				}
			},
		},
		{
			name: "metadata cannot be read",
			objs: func(t *testing.T, now time.Time) []client.Object { return nil },
			source: func(t *testing.T, c client.Client) *CASource {
				return &CASource{Metadata: failingReader{errUnavailable}, API: c}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				var nf *SecretNotFoundError
				var caErr *CAError
				if !errors.Is(err, errUnavailable) || errors.As(err, &nf) || errors.As(err, &caErr) {
					t.Fatalf("Load error %v, want the API error, transient", err)
				}
			},
		},
		{
			name: "data cannot be read",
			objs: func(t *testing.T, now time.Time) []client.Object {
				return []client.Object{newSecret(testNamespace, caSecret)}
			},
			source: func(t *testing.T, c client.Client) *CASource {
				return &CASource{Metadata: c, API: failingReader{errUnavailable}}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				if !errors.Is(err, errUnavailable) || !strings.Contains(err.Error(), "reading Secret demo/ca") {
					t.Fatalf("Load error %v, want the API error", err)
				}
			},
		},
		{
			name: "empty Secret names tls.crt first",
			objs: func(t *testing.T, now time.Time) []client.Object {
				return []client.Object{newSecret(testNamespace, caSecret)}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				var caErr *CAError
				if !errors.As(err, &caErr) || caErr.Reason != signer.ReasonCertificateMissing || caErr.Secret != secretKey {
					t.Fatalf("Load error %v, want a CAError CertificateMissing for %s", err, secretKey)
				}
			},
		},
		{
			name: "signer reason passed on",
			objs: func(t *testing.T, now time.Time) []client.Object {
				a, b := newRootCA(t, signer.MLDSA44, now, time.Hour), newRootCA(t, signer.MLDSA44, now, time.Hour)
				return []client.Object{newSecret(testNamespace, caSecret, withTLS(a.CertPEM, b.KeyPEM))}
			},
			check: func(t *testing.T, ca *signer.CA, err error) {
				var caErr *CAError
				if !errors.As(err, &caErr) || caErr.Reason != signer.ReasonKeyMismatch || signer.ReasonOf(err) != signer.ReasonKeyMismatch {
					t.Fatalf("Load error %v, want a CAError KeyMismatch wrapping the signer's error", err)
				}
				if !strings.HasPrefix(err.Error(), "Secret demo/ca: ") {
					t.Errorf("message %q does not name the Secret first", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(t)
			c := newFakeClientBuilder(t).WithObjects(tc.objs(t, clk.Now())...).Build()
			src := &CASource{Metadata: c, API: c}
			if tc.source != nil {
				src = tc.source(t, c)
			}
			ca, err := src.Load(context.Background(), secretKey, clk.Now())
			tc.check(t, ca, err)
		})
	}
}

// TestCASourceCache checks that a CA is read and parsed once per resourceVersion of its Secret.
func TestCASourceCache(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock(t)
	first := newRootCA(t, signer.MLDSA65, clk.Now(), 30*24*time.Hour)
	second := newRootCA(t, signer.MLDSA87, clk.Now(), 365*24*time.Hour)
	key := types.NamespacedName{Namespace: testNamespace, Name: caSecret}
	c := newFakeClientBuilder(t).WithObjects(newSecret(testNamespace, caSecret, withCAData(first))).Build()
	api := &countingReader{Reader: c}
	src := &CASource{Metadata: caSecretCache{c}, API: api}

	put := func(t *testing.T, opts ...secretOption) {
		t.Helper()
		s := &corev1.Secret{}
		if err := c.Get(ctx, key, s); err != nil {
			t.Fatal(err)
		}
		fresh := newSecret(testNamespace, caSecret, opts...)
		s.Data, s.Labels = fresh.Data, fresh.Labels
		if err := c.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		name     string
		change   func(t *testing.T)
		wantAlg  signer.Algorithm // "" when Load must fail
		wantErr  string
		wantGets int // API reads of the Secret so far
		// wantMetaGets counts the API reads of metadata so far: only of Secrets the cache lacks.
		wantMetaGets int
	}{
		{name: "first load reads the Secret", wantAlg: signer.MLDSA65, wantGets: 1},
		{name: "unchanged Secret comes from the cache", wantAlg: signer.MLDSA65, wantGets: 1},
		{name: "later, still cached", change: func(t *testing.T) { clk.Step(24 * time.Hour) }, wantAlg: signer.MLDSA65, wantGets: 1},
		{name: "rotated Secret is read again", change: func(t *testing.T) { put(t, withCAData(second)) }, wantAlg: signer.MLDSA87, wantGets: 2},
		{name: "rotation cached in turn", wantAlg: signer.MLDSA87, wantGets: 2},
		{
			name:   "label removed: not marked, data not read",
			change: func(t *testing.T) { put(t, withCAData(second), withLabel("")) },
			// The cache drops the Secret; its metadata comes from the API server.
			wantErr: "not marked as a CA Secret", wantGets: 2, wantMetaGets: 1,
		},
		{name: "label back: read again", change: func(t *testing.T) { put(t, withCAData(second)) }, wantAlg: signer.MLDSA87, wantGets: 3, wantMetaGets: 1},
		{name: "broken Secret is read and refused", change: func(t *testing.T) { put(t, withTLS(second.CertPEM, nil)) }, wantErr: "no tls.key", wantGets: 4, wantMetaGets: 1},
		{name: "fixed Secret is read again", change: func(t *testing.T) { put(t, withCAData(first)) }, wantAlg: signer.MLDSA65, wantGets: 5, wantMetaGets: 1},
		{
			name:   "cached CA checked at the new time",
			change: func(t *testing.T) { clk.SetTime(first.NotAfter.Add(time.Second)) },
			// The cached CA is not read again but is found expired.
			wantErr: "expired at", wantGets: 5, wantMetaGets: 1,
		},
		{
			name: "deleted Secret is forgotten",
			change: func(t *testing.T) {
				if err := c.Delete(ctx, newSecret(testNamespace, caSecret)); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not found", wantGets: 5, wantMetaGets: 2,
		},
		{
			name: "recreated Secret is read again",
			change: func(t *testing.T) {
				if err := c.Create(ctx, newSecret(testNamespace, caSecret, withCAData(second))); err != nil {
					t.Fatal(err)
				}
			},
			wantAlg: signer.MLDSA87, wantGets: 6, wantMetaGets: 2,
		},
	}
	for _, step := range steps {
		if step.change != nil {
			step.change(t)
		}
		ca, err := src.Load(ctx, key, clk.Now())
		switch {
		case step.wantAlg != "" && err != nil:
			t.Fatalf("%s: %v", step.name, err)
		case step.wantAlg != "" && ca.Algorithm() != step.wantAlg:
			t.Errorf("%s: loaded %s, want %s", step.name, ca.Algorithm(), step.wantAlg)
		case step.wantAlg == "" && (err == nil || !strings.Contains(err.Error(), step.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", step.name, err, step.wantErr)
		}
		if api.gets != step.wantGets || api.metaGets != step.wantMetaGets {
			t.Errorf("%s: %d reads of the Secret and %d of its metadata from the API server, want %d and %d",
				step.name, api.gets, api.metaGets, step.wantGets, step.wantMetaGets)
		}
	}
}

func TestErrors(t *testing.T) {
	cause := fs.ErrNotExist
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
		wantReason    string
		wantMessage   string
	}{
		{"permanent", permanent("PolicyViolation", "bad %s", "request"), true, "PolicyViolation", "bad request"},
		{"permanent, wrapped", fmt.Errorf("signing: %w", permanent("InvalidCSR", "no")), true, "InvalidCSR", "signing: no"},
		{"pending", pending("waiting for %s", "issuer"), false, "", "waiting for issuer"},
		{"issuer error", &IssuerError{Err: cause}, false, "", cause.Error()},
		{"plain error", cause, false, "", cause.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p *PermanentError
			ok := errors.As(tc.err, &p)
			if ok != tc.wantPermanent {
				t.Fatalf("errors.As(*PermanentError) = %v, want %v", ok, tc.wantPermanent)
			}
			if ok && p.Reason != tc.wantReason {
				t.Errorf("reason %q, want %q", p.Reason, tc.wantReason)
			}
			if tc.err.Error() != tc.wantMessage {
				t.Errorf("message %q, want %q", tc.err.Error(), tc.wantMessage)
			}
		})
	}
	if err := (&IssuerError{Err: cause}); !errors.Is(err, cause) {
		t.Error("IssuerError does not unwrap to its cause")
	}
	if err := (&PendingError{Err: cause}); !errors.Is(err, cause) {
		t.Error("PendingError does not unwrap to its cause")
	}
	if err := (&PermanentError{Reason: "r", Err: cause}); !errors.Is(err, cause) {
		t.Error("PermanentError does not unwrap to its cause")
	}
}

func TestNewMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice with one registry succeeded")
	}
}

// TestCAEviction follows the CA keys held in memory while issuers come, move to another Secret and
// go: a CA stays while an issuer names it, and not a moment longer.
func TestCAEviction(t *testing.T) {
	clk := newTestClock(t)
	ca := newRootCA(t, signer.MLDSA44, clk.Now(), 24*time.Hour)
	first, second := types.NamespacedName{Namespace: testNamespace, Name: "first"}, types.NamespacedName{Namespace: testNamespace, Name: "second"}
	env := newTestEnv(t, clk, withObjects(
		newSecret(testNamespace, "ca-a", withCAData(ca)), newSecret(testNamespace, "ca-b", withCAData(ca)),
		newPQIssuer(testNamespace, first.Name, withCASecretName("ca-a")), newPQIssuer(testNamespace, second.Name, withCASecretName("ca-a")),
	))
	loaded := func() []string {
		env.CAs.mu.Lock()
		defer env.CAs.mu.Unlock()
		var names []string
		for key := range env.CAs.loaded {
			names = append(names, key.Name)
		}
		slices.Sort(names)
		return names
	}
	reconcile := func(key types.NamespacedName) {
		t.Helper()
		if _, err := env.reconcileIssuer(t, PQIssuerKind, key); err != nil {
			t.Fatal(err)
		}
	}
	moveTo := func(key types.NamespacedName, secret string) {
		t.Helper()
		issuer := env.getIssuer(t, PQIssuerKind, key)
		issuer.GetSpec().CASecretName = secret
		if err := env.Client.Update(t.Context(), issuer); err != nil {
			t.Fatal(err)
		}
		reconcile(key)
	}
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"both issuers name ca-a", func() { reconcile(first); reconcile(second) }, []string{"ca-a"}},
		{"the first moves to ca-b; the second still names ca-a", func() { moveTo(first, "ca-b") }, []string{"ca-a", "ca-b"}},
		{"the second moves to ca-b: nobody names ca-a", func() { moveTo(second, "ca-b") }, []string{"ca-b"}},
		{"the second is deleted: the first still names ca-b", func() {
			if err := env.Client.Delete(t.Context(), env.getIssuer(t, PQIssuerKind, second)); err != nil {
				t.Fatal(err)
			}
			reconcile(second)
		}, []string{"ca-b"}},
		{"the first is deleted: no CA is held", func() {
			if err := env.Client.Delete(t.Context(), env.getIssuer(t, PQIssuerKind, first)); err != nil {
				t.Fatal(err)
			}
			reconcile(first)
		}, nil},
	}
	for _, step := range steps {
		step.do()
		if got := loaded(); !slices.Equal(got, step.want) {
			t.Fatalf("%s: CAs in memory %v, want %v", step.name, got, step.want)
		}
	}
}

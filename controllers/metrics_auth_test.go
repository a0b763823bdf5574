package controllers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
)

// fakeReviews answers TokenReviews and SubjectAccessReviews as an API server would, and counts them.
type fakeReviews struct {
	users   map[string]string // token -> user name
	allowed []string          // user names RBAC lets get /metrics
	err     error             // the API server is unreachable
	asked   int
	lastSAR authorizationv1.SubjectAccessReviewSpec
}

func (f *fakeReviews) tokenReviews() authenticationclient.TokenReviewInterface {
	return fakeTokenReviews{f}
}
func (f *fakeReviews) accessReviews() authorizationclient.SubjectAccessReviewInterface {
	return fakeAccessReviews{f}
}

type fakeTokenReviews struct{ *fakeReviews }

func (f fakeTokenReviews) Create(_ context.Context, r *authenticationv1.TokenReview, _ metav1.CreateOptions) (*authenticationv1.TokenReview, error) {
	f.asked++
	if f.err != nil {
		return nil, f.err
	}
	name, ok := f.users[r.Spec.Token]
	r.Status = authenticationv1.TokenReviewStatus{Authenticated: ok, User: authenticationv1.UserInfo{Username: name, Groups: []string{"system:serviceaccounts"}}}
	return r, nil
}

type fakeAccessReviews struct{ *fakeReviews }

func (f fakeAccessReviews) Create(_ context.Context, r *authorizationv1.SubjectAccessReview, _ metav1.CreateOptions) (*authorizationv1.SubjectAccessReview, error) {
	f.asked++
	f.lastSAR = r.Spec
	r.Status.Allowed = slices.Contains(f.allowed, r.Spec.User) && r.Spec.NonResourceAttributes.Path == "/metrics" && r.Spec.NonResourceAttributes.Verb == "get"
	return r, nil
}

func TestMetricsAuth(t *testing.T) {
	clk := newTestClock(t)
	api := &fakeReviews{users: map[string]string{"prom-token": "system:serviceaccount:monitoring:prometheus", "other-token": "system:serviceaccount:apps:web"},
		allowed: []string{"system:serviceaccount:monitoring:prometheus"}}
	a := &metricsAuth{tokens: api.tokenReviews(), access: api.accessReviews(), now: clk.Now, answers: map[[32]byte]metricsAnswer{}}
	served := 0
	h, err := a.filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { served++ }))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name       string
		auth       string
		advance    time.Duration
		apiDown    bool
		wantStatus int
		wantAsked  int // API requests made by this step
	}{
		{name: "no token", wantStatus: http.StatusUnauthorized},
		{name: "not a bearer token", auth: "Basic cHJvbQ==", wantStatus: http.StatusUnauthorized},
		{name: "a token the API server does not know", auth: "Bearer stolen", wantStatus: http.StatusUnauthorized, wantAsked: 1},
		{name: "a ServiceAccount RBAC does not let read /metrics", auth: "Bearer other-token", wantStatus: http.StatusForbidden, wantAsked: 2},
		{name: "Prometheus", auth: "Bearer prom-token", wantStatus: http.StatusOK, wantAsked: 2},
		{name: "Prometheus again, within the minute: the answer is reused", auth: "Bearer prom-token", advance: 30 * time.Second, wantStatus: http.StatusOK},
		{name: "the API server unreachable after the minute: 500, not cached", auth: "Bearer prom-token", advance: 31 * time.Second, apiDown: true, wantStatus: http.StatusInternalServerError, wantAsked: 1},
		{name: "back: asked again", auth: "Bearer prom-token", wantStatus: http.StatusOK, wantAsked: 2},
	}
	for _, step := range steps {
		clk.Step(step.advance)
		api.err, api.asked = nil, 0
		if step.apiDown {
			api.err = errors.New("connection refused")
		}
		before := served
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if step.auth != "" {
			req.Header.Set("Authorization", step.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != step.wantStatus || api.asked != step.wantAsked || (served > before) != (step.wantStatus == http.StatusOK) {
			t.Fatalf("%s: status %d, %d API requests, served %v; want %d, %d", step.name, rec.Code, api.asked, served > before, step.wantStatus, step.wantAsked)
		}
	}
	if got := api.lastSAR; got.User != "system:serviceaccount:monitoring:prometheus" || !slices.Equal(got.Groups, []string{"system:serviceaccounts"}) ||
		got.NonResourceAttributes == nil || got.NonResourceAttributes.Path != "/metrics" || got.NonResourceAttributes.Verb != "get" {
		t.Fatalf("SubjectAccessReview %+v, want Prometheus's user and groups asking get /metrics", got)
	}
}

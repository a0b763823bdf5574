package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

func TestNextTrustAnchors(t *testing.T) {
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	const overlap = 100 * time.Hour
	const year = 365 * 24 * time.Hour
	// The function compares certificates as strings and never parses them.
	root := func(name string, notAfter time.Time) signer.TrustAnchor {
		return signer.TrustAnchor{PEM: "PEM " + name, Subject: "CN=" + name, NotAfter: notAfter}
	}
	a, b, c := root("A", now.Add(year)), root("B", now.Add(year)), root("C", now.Add(year))
	// anchor is root r as published, retiring at removeAfter unless that is zero.
	anchor := func(r signer.TrustAnchor, removeAfter time.Time) v1alpha1.TrustAnchor {
		ta := v1alpha1.TrustAnchor{Certificate: r.PEM, Subject: r.Subject}
		if !removeAfter.IsZero() {
			ta.RemoveAfter = &metav1.Time{Time: removeAfter}
		}
		return ta
	}
	known := func(r signer.TrustAnchor, removeAfter time.Time) knownAnchor {
		return knownAnchor{TrustAnchor: anchor(r, removeAfter), NotAfter: r.NotAfter}
	}
	var current time.Time // no removeAfter

	tests := []struct {
		name    string
		prev    []knownAnchor
		current *signer.TrustAnchor // nil: the issuer is not Ready
		want    []v1alpha1.TrustAnchor
	}{
		{name: "never ready", want: nil},
		{name: "first root", current: &a, want: []v1alpha1.TrustAnchor{anchor(a, current)}},
		{name: "same root again", prev: []knownAnchor{known(a, current)}, current: &a, want: []v1alpha1.TrustAnchor{anchor(a, current)}},
		{
			name: "CA changed: the previous root retires for the overlap",
			prev: []knownAnchor{known(a, current)}, current: &b,
			want: []v1alpha1.TrustAnchor{anchor(b, current), anchor(a, now.Add(overlap))},
		},
		{
			name: "retirement ends at the previous root's expiry when that comes first",
			prev: []knownAnchor{known(root("A", now.Add(10*time.Hour)), current)}, current: &b,
			want: []v1alpha1.TrustAnchor{anchor(b, current), anchor(a, now.Add(10*time.Hour))},
		},
		{
			name: "an expired previous root leaves at once",
			prev: []knownAnchor{known(root("A", now.Add(-time.Hour)), current)}, current: &b,
			want: []v1alpha1.TrustAnchor{anchor(b, current)},
		},
		{
			name: "a retiring root stays until its removeAfter",
			prev: []knownAnchor{known(b, current), known(a, now.Add(time.Second))}, current: &b,
			want: []v1alpha1.TrustAnchor{anchor(b, current), anchor(a, now.Add(time.Second))},
		},
		{
			name: "a retiring root leaves at its removeAfter",
			prev: []knownAnchor{known(b, current), known(a, now)}, current: &b,
			want: []v1alpha1.TrustAnchor{anchor(b, current)},
		},
		{
			name: "second change: the newest previous root comes first, each keeps its own removeAfter",
			prev: []knownAnchor{known(b, current), known(a, now.Add(time.Hour))}, current: &c,
			want: []v1alpha1.TrustAnchor{anchor(c, current), anchor(b, now.Add(overlap)), anchor(a, now.Add(time.Hour))},
		},
		{
			name: "rotated back: the retiring root is current again",
			prev: []knownAnchor{known(b, current), known(a, now.Add(time.Hour))}, current: &a,
			want: []v1alpha1.TrustAnchor{anchor(a, current), anchor(b, now.Add(overlap))},
		},
		{
			name: "not ready: the current root stays, without removeAfter",
			prev: []knownAnchor{known(a, current)},
			want: []v1alpha1.TrustAnchor{anchor(a, current)},
		},
		{
			name: "not ready: anchors stay as they are",
			prev: []knownAnchor{known(b, current), known(a, now.Add(time.Hour))},
			want: []v1alpha1.TrustAnchor{anchor(b, current), anchor(a, now.Add(time.Hour))},
		},
		{
			name: "not ready: a root whose removeAfter came still leaves",
			prev: []knownAnchor{known(b, current), known(a, now.Add(-time.Second))},
			want: []v1alpha1.TrustAnchor{anchor(b, current)},
		},
		{
			name: "a duplicate leaves",
			prev: []knownAnchor{known(a, current), known(a, now.Add(time.Hour))},
			want: []v1alpha1.TrustAnchor{anchor(a, current)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := nextTrustAnchors(tc.prev, tc.current, now, overlap)
			if !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestAnchorOverlap(t *testing.T) {
	d := func(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
	tests := []struct {
		name string
		spec v1alpha1.IssuerSpec
		want time.Duration
	}{
		{name: "defaults: cert-manager's 2160h", want: signer.DefaultMaxDuration},
		{name: "maxDuration", spec: v1alpha1.IssuerSpec{MaxDuration: d(720 * time.Hour)}, want: 720 * time.Hour},
		{name: "maxDuration under the pod default of 24h", spec: v1alpha1.IssuerSpec{MaxDuration: d(2 * time.Hour)}, want: 24 * time.Hour},
		{
			name: "pod certificates longer than maxDuration",
			spec: v1alpha1.IssuerSpec{MaxDuration: d(2 * time.Hour), PodCertificates: &v1alpha1.PodCertificates{MaxDuration: d(48 * time.Hour)}},
			want: 48 * time.Hour,
		},
		{
			name: "pod certificates of 91 days, longer than the default maxDuration",
			spec: v1alpha1.IssuerSpec{PodCertificates: &v1alpha1.PodCertificates{MaxDuration: d(v1alpha1.MaxPodCertificateDuration)}},
			want: v1alpha1.MaxPodCertificateDuration,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := anchorOverlap(&tc.spec); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestUntilNextRemoval(t *testing.T) {
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: now.Add(d)} }
	tests := []struct {
		name    string
		anchors []v1alpha1.TrustAnchor
		want    time.Duration
	}{
		{name: "none", want: 0},
		{name: "current root only", anchors: []v1alpha1.TrustAnchor{{Certificate: "a"}}, want: 0},
		{
			name:    "the earliest of two",
			anchors: []v1alpha1.TrustAnchor{{Certificate: "a"}, {Certificate: "b", RemoveAfter: at(5 * time.Hour)}, {Certificate: "c", RemoveAfter: at(2 * time.Hour)}},
			want:    2 * time.Hour,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := untilNextRemoval(tc.anchors, now); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/pq-issuer/pq-issuer/api/v1alpha1"
	"github.com/pq-issuer/pq-issuer/signer"
)

// An issuer's trust anchors (status.trustAnchors, published by trust_bundle.go) let its CA change
// without an outage: relying parties trust the new root as soon as the issuer signs with it, and
// keep trusting each previous root until every certificate it may have signed has expired.

// Reasons of the events about trust anchors.
const (
	reasonTrustAnchorRetiring = "TrustAnchorRetiring"
	reasonTrustAnchorRemoved  = "TrustAnchorRemoved"
)

// knownAnchor is a published root with its own expiry, which the status does not keep.
type knownAnchor struct {
	v1alpha1.TrustAnchor
	NotAfter time.Time
}

// nextTrustAnchors is the trust anchors after prev when the issuer signs under the root current
// (nil while it is not Ready) at now:
//   - current comes first, without removeAfter, also when it comes back from retirement;
//   - a previous root without removeAfter (the last current one) retires when there is a current
//     root: it stays until now+overlap, or its own expiry if sooner, as certificates it signed may
//     live that long; while there is none, it stays as it is, since an outage of the issuer is no
//     reason for relying parties to stop trusting what it signed;
//   - a root leaves once its removeAfter has come, and a duplicate leaves at once.
func nextTrustAnchors(prev []knownAnchor, current *signer.TrustAnchor, now time.Time, overlap time.Duration) []v1alpha1.TrustAnchor {
	var next []v1alpha1.TrustAnchor
	seen := map[string]bool{}
	if current != nil {
		next = append(next, v1alpha1.TrustAnchor{Certificate: current.PEM, Subject: current.Subject})
		seen[current.PEM] = true
	}
	for _, a := range prev {
		if seen[a.Certificate] {
			continue
		}
		seen[a.Certificate] = true
		anchor := a.TrustAnchor
		if anchor.RemoveAfter == nil && current != nil {
			removeAfter := now.Add(overlap)
			if a.NotAfter.Before(removeAfter) {
				removeAfter = a.NotAfter
			}
			anchor.RemoveAfter = &metav1.Time{Time: removeAfter}
		}
		if anchor.RemoveAfter != nil && !now.Before(anchor.RemoveAfter.Time) {
			continue
		}
		next = append(next, anchor)
	}
	return next
}

// anchorOverlap is how long a previous root stays published after the CA changed: the longest
// lifetime a certificate of the issuer may have, cert-manager's (spec.maxDuration) or a pod's
// (spec.podCertificates.maxDuration).
func anchorOverlap(spec *v1alpha1.IssuerSpec) time.Duration {
	d := signer.DefaultMaxDuration
	if spec.MaxDuration != nil {
		d = spec.MaxDuration.Duration
	}
	return max(d, spec.PodCertificateMaxDuration())
}

// untilNextRemoval is how long until the first of anchors leaves; zero when none is retiring.
func untilNextRemoval(anchors []v1alpha1.TrustAnchor, now time.Time) time.Duration {
	var d time.Duration
	for _, a := range anchors {
		if a.RemoveAfter == nil {
			continue
		}
		if left := a.RemoveAfter.Sub(now); d == 0 || left < d {
			d = left
		}
	}
	return d
}

// knownAnchors parses the published anchors, leaving out (and logging) any that is no CA
// certificate, which a ClusterTrustBundle would refuse: only the status subresource holds them,
// and pq-issuer wrote them, but a status can be edited.
func knownAnchors(ctx context.Context, anchors []v1alpha1.TrustAnchor) []knownAnchor {
	known := make([]knownAnchor, 0, len(anchors))
	for _, a := range anchors {
		root, err := signer.ParseTrustAnchor([]byte(a.Certificate))
		if err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Dropping a trust anchor that is not a CA certificate from the status", "subject", a.Subject)
			continue
		}
		a.Certificate, a.Subject = root.PEM, root.Subject
		known = append(known, knownAnchor{TrustAnchor: a, NotAfter: root.NotAfter})
	}
	return known
}

// recordTrustAnchorChanges emits an event for each root of before that started retiring or left.
func (r *IssuerReconciler) recordTrustAnchorChanges(ctx context.Context, issuer v1alpha1.Issuer, before []v1alpha1.TrustAnchor) {
	after := map[string]v1alpha1.TrustAnchor{}
	for _, a := range issuer.GetStatus().TrustAnchors {
		after[a.Certificate] = a
	}
	log := ctrl.LoggerFrom(ctx)
	for _, old := range before {
		cur, kept := after[old.Certificate]
		switch {
		case !kept:
			r.Recorder.Eventf(issuer, nil, corev1.EventTypeNormal, reasonTrustAnchorRemoved, "PublishTrustAnchors",
				"The previous root %s left the trust bundle: the certificates it may have signed for this issuer have expired", old.Subject)
			log.Info("Trust anchor removed", "subject", old.Subject)
		case old.RemoveAfter == nil && cur.RemoveAfter != nil:
			until := cur.RemoveAfter.UTC().Format(time.RFC3339)
			r.Recorder.Eventf(issuer, nil, corev1.EventTypeNormal, reasonTrustAnchorRetiring, "PublishTrustAnchors",
				"CA changed: the previous root %s stays in the trust bundle until %s", old.Subject, until)
			log.Info("Trust anchor retiring", "subject", old.Subject, "removeAfter", until)
		}
	}
}

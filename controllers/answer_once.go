package controllers

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// answerOnce writes the one status the certificates API lets a signer give a request (a
// PodCertificateRequest or a CertificateSigningRequest): apply sets the answer on a copy of req,
// written with req's resourceVersion. After a conflict the request is read afresh from the API
// server, into a new object from newObj (decoding into the one that holds the answer would keep
// fields the response lacks); if finished says another writer answered it meanwhile, the answer is
// dropped. It reports whether the answer was written; a request deleted meanwhile is no error.
func answerOnce[T client.Object](ctx context.Context, c client.Client, api client.Reader, req T, newObj func() T, finished func(T) bool, apply func(T)) (bool, error) {
	latest, stale, written := req, false, false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if stale {
			latest = newObj()
			if err := api.Get(ctx, client.ObjectKeyFromObject(req), latest); err != nil {
				return err
			}
			if finished(latest) {
				return nil
			}
		}
		update := latest.DeepCopyObject().(T)
		apply(update)
		err := c.Status().Update(ctx, update)
		stale, written = apierrors.IsConflict(err), err == nil
		return err
	})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return written, err
}

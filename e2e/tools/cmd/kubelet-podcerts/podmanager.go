package main

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

const podUIDIndex = "uid"

// podManager stands in for the kubelet's pod manager, which is all the PodCertificateRequest
// manager needs from the kubelet: the pods bound to this node, read from the informer. It
// indexes them by UID because the manager looks pods up by UID on every PodCertificateRequest
// event.
type podManager struct {
	indexer cache.Indexer
}

// newPodManager must be called before the informer starts, so the index is in place.
func newPodManager(informer cache.SharedIndexInformer) (*podManager, error) {
	err := informer.AddIndexers(cache.Indexers{podUIDIndex: func(obj any) ([]string, error) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, fmt.Errorf("indexing pods by UID: got a %T", obj)
		}
		return []string{string(pod.UID)}, nil
	}})
	if err != nil {
		return nil, fmt.Errorf("adding the pod UID index: %w", err)
	}
	return &podManager{indexer: informer.GetIndexer()}, nil
}

// GetPodByUID returns the pod with this UID, if it is bound to this node.
func (m *podManager) GetPodByUID(uid types.UID) (*corev1.Pod, bool) {
	objs, err := m.indexer.ByIndex(podUIDIndex, string(uid))
	if err != nil || len(objs) == 0 {
		return nil, false
	}
	return objs[0].(*corev1.Pod), true
}

// GetPods returns the pods bound to this node.
func (m *podManager) GetPods() []*corev1.Pod {
	objs := m.indexer.List()
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, obj := range objs {
		pods = append(pods, obj.(*corev1.Pod))
	}
	return pods
}

// finishPodDeletion completes the deletion of a pod being deleted gracefully, as the kubelet's
// status manager does once the pod's containers have stopped and its volumes are torn down. This
// node runs no containers, so it can finish as soon as the volumes are gone. Until the node
// deletes it, a pod bound to a node stays with its deletionTimestamp set.
func finishPodDeletion(ctx context.Context, kc kubernetes.Interface, pod *corev1.Pod) error {
	err := kc.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/kubelet/clustertrustbundle"
	"k8s.io/kubernetes/pkg/kubelet/podcertificate"
	volumeutil "k8s.io/kubernetes/pkg/volume/util"
	"k8s.io/utils/ptr"
)

// volumeWriter writes the projected volumes that have podCertificate or clusterTrustBundle
// sources, as the kubelet's projected volume plugin (k8s.io/kubernetes/pkg/volume/projected,
// collectData and SetUpAt) does. It collects the same data from the same managers and writes it
// with the kubelet's AtomicWriter (the ..data symlink swap). It does not copy everything:
//   - Other source types (secret, configMap, downwardAPI, serviceAccountToken) are left out.
//     The kubelet fills those from managers this program does not run.
//   - The volume is a plain directory rather than a tmpfs mount.
//   - Files keep this process's owner and the volume's defaultMode. The kubelet applies fsGroup
//     and the alpha user fields on top of that.
type volumeWriter struct {
	dir     string
	pods    *podManager
	certs   podcertificate.Manager
	bundles clustertrustbundle.Manager
	// finishDeletion deletes a terminating pod for good once its volumes are torn down.
	finishDeletion func(context.Context, *corev1.Pod) error
	// volumes holds what sync last did for each pod and volume. Only sync uses it.
	volumes map[types.UID]map[string]*volumeState
}

type volumeState struct {
	// written is the digest of the payload last written. An unchanged payload is not written
	// again.
	written [sha256.Size]byte
	// failure is why the volume was last left unwritten. Each reason is logged once.
	failure string
}

func newVolumeWriter(dir string, pods *podManager, certs podcertificate.Manager, bundles clustertrustbundle.Manager,
	finishDeletion func(context.Context, *corev1.Pod) error,
) *volumeWriter {
	return &volumeWriter{
		dir: dir, pods: pods, certs: certs, bundles: bundles, finishDeletion: finishDeletion,
		volumes: map[types.UID]map[string]*volumeState{},
	}
}

// volumeDir is where the kubelet puts a pod's projected volume under its root directory.
func volumeDir(root string, podUID types.UID, volume string) string {
	return filepath.Join(root, "pods", string(podUID), "volumes", "kubernetes.io~projected", volume)
}

// sync brings every volume up to date. It tears down the volumes of pods that are gone or being
// deleted, and then finishes the deletion of the latter. The kubelet remounts projected volumes on
// its pod sync, about once a minute. This runs every --sync-interval (1s), so issued and refreshed
// certificates show up without that wait.
func (w *volumeWriter) sync(ctx context.Context) {
	log := klog.FromContext(ctx)
	present := map[types.UID]bool{}
	for _, pod := range w.pods.GetPods() {
		if pod.DeletionTimestamp != nil {
			if w.tearDown(ctx, pod.UID) {
				if err := w.finishDeletion(ctx, pod); err != nil {
					log.Error(err, "Finishing the deletion of a pod failed", "pod", klog.KObj(pod), "podUID", pod.UID)
				}
			}
			continue
		}
		present[pod.UID] = true
		for _, volume := range pod.Spec.Volumes {
			if projectsCredentials(volume) {
				w.syncVolume(ctx, pod, volume)
			}
		}
	}
	for uid := range w.volumes {
		if !present[uid] {
			w.tearDown(ctx, uid)
		}
	}
}

// tearDown removes the volumes of a pod, and reports whether they are gone.
func (w *volumeWriter) tearDown(ctx context.Context, uid types.UID) bool {
	dir := filepath.Join(w.dir, "pods", string(uid))
	if err := os.RemoveAll(dir); err != nil {
		klog.FromContext(ctx).Error(err, "Removing the volumes of a pod failed", "podUID", uid, "dir", dir)
		return false
	}
	if _, known := w.volumes[uid]; known {
		delete(w.volumes, uid)
		klog.FromContext(ctx).Info("Removed the volumes of a pod", "podUID", uid, "dir", dir)
	}
	return true
}

// projectsCredentials reports whether volume is a projected volume with a podCertificate or
// clusterTrustBundle source.
func projectsCredentials(volume corev1.Volume) bool {
	return volume.Projected != nil && slices.ContainsFunc(volume.Projected.Sources, func(s corev1.VolumeProjection) bool {
		return s.PodCertificate != nil || s.ClusterTrustBundle != nil
	})
}

func (w *volumeWriter) syncVolume(ctx context.Context, pod *corev1.Pod, volume corev1.Volume) {
	log := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "podUID", pod.UID, "volume", volume.Name)
	byVolume := w.volumes[pod.UID]
	if byVolume == nil {
		byVolume = map[string]*volumeState{}
		w.volumes[pod.UID] = byVolume
	}
	state := byVolume[volume.Name]
	if state == nil {
		state = &volumeState{}
		byVolume[volume.Name] = state
	}

	files, err := w.write(ctx, pod, volume, state)
	if err != nil {
		// Like the kubelet, this writes a volume whole or not at all. A volume that was never
		// written keeps the pod from starting. One already written keeps its old content.
		if reason := err.Error(); reason != state.failure {
			log.Info("Projected volume not written", "reason", reason)
			state.failure = reason
		}
		return
	}
	state.failure = ""
	if files != nil {
		log.Info("Wrote projected volume", "dir", volumeDir(w.dir, pod.UID, volume.Name), "files", files)
	}
}

// write writes the volume if its content changed, and returns the files it wrote (nil when it
// wrote nothing).
func (w *volumeWriter) write(ctx context.Context, pod *corev1.Pod, volume corev1.Volume, state *volumeState) ([]string, error) {
	payload, err := w.collect(ctx, pod, volume)
	if err != nil {
		return nil, err
	}
	digest := payloadDigest(payload)
	if digest == state.written {
		return nil, nil
	}
	dir := volumeDir(w.dir, pod.UID, volume.Name)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the volume directory: %w", err)
	}
	writer, err := volumeutil.NewAtomicWriter(dir, fmt.Sprintf("pod %s/%s volume %s", pod.Namespace, pod.Name, volume.Name))
	if err != nil {
		return nil, fmt.Errorf("creating the atomic writer for %s: %w", dir, err)
	}
	if err := writer.Write(payload, nil); err != nil {
		return nil, fmt.Errorf("writing %s: %w", dir, err)
	}
	state.written = digest
	return slices.Sorted(maps.Keys(payload)), nil
}

// collect is the projected volume plugin's collectData for clusterTrustBundle and podCertificate
// sources.
func (w *volumeWriter) collect(ctx context.Context, pod *corev1.Pod, volume corev1.Volume) (map[string]volumeutil.FileProjection, error) {
	mode := ptr.Deref(volume.Projected.DefaultMode, corev1.ProjectedVolumeSourceDefaultMode)
	payload := map[string]volumeutil.FileProjection{}
	var errs []error
	for sourceIndex, source := range volume.Projected.Sources {
		switch {
		case source.ClusterTrustBundle != nil:
			bundle := source.ClusterTrustBundle
			allowMissing := ptr.Deref(bundle.Optional, false)
			var anchors []byte
			var err error
			switch {
			case bundle.Name != nil:
				anchors, err = w.bundles.GetTrustAnchorsByName(ctx, *bundle.Name, allowMissing)
			case bundle.SignerName != nil:
				anchors, err = w.bundles.GetTrustAnchorsBySigner(ctx, *bundle.SignerName, bundle.LabelSelector, allowMissing)
			default:
				err = errors.New("ClusterTrustBundle projection requires either name or signerName to be set")
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("clusterTrustBundle source %d: %w", sourceIndex, err))
				continue
			}
			payload[bundle.Path] = volumeutil.FileProjection{Data: anchors, Mode: mode}

		case source.PodCertificate != nil:
			cert := source.PodCertificate
			key, chain, err := w.certs.GetPodCertificateCredentialBundle(ctx, pod.Namespace, pod.Name, string(pod.UID), volume.Name, sourceIndex)
			if err != nil {
				errs = append(errs, fmt.Errorf("podCertificate source %d (signer %s): %w", sourceIndex, cert.SignerName, err))
				continue
			}
			if cert.CredentialBundlePath != "" {
				payload[cert.CredentialBundlePath] = volumeutil.FileProjection{Data: slices.Concat(key, chain), Mode: mode}
			}
			if cert.KeyPath != "" {
				payload[cert.KeyPath] = volumeutil.FileProjection{Data: key, Mode: mode}
			}
			if cert.CertificateChainPath != "" {
				payload[cert.CertificateChainPath] = volumeutil.FileProjection{Data: chain, Mode: mode}
			}
		}
	}
	return payload, errors.Join(errs...)
}

// payloadDigest identifies a payload: its paths, modes and contents.
func payloadDigest(payload map[string]volumeutil.FileProjection) [sha256.Size]byte {
	h := sha256.New()
	for _, path := range slices.Sorted(maps.Keys(payload)) {
		file := payload[path]
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(path))))
		h.Write([]byte(path))
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(file.Mode)))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(file.Data))))
		h.Write(file.Data)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

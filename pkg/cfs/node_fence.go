package cfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// fuseConnections is where the kernel's fusectl filesystem, when mounted,
// lists FUSE connections by device minor.
const fuseConnections = "/sys/fs/fuse/connections"

// fence stops this node's use of a volume whose single-node lease it lost:
// ChubaoFS has no blocklist, so the node cuts itself off. In order: abort
// the FUSE connection (through fusectl, when mounted: every request fails
// at once, even with the client stuck), SIGKILL the client (no flush of
// buffered writes), and lazily unmount the publish targets and the staging
// mount. Pods' own views of the mount (their containers' bind mounts) stay
// but answer ENOTCONN from then on. The stage record stays: NodeUnstage
// cleans up as usual, and a new NodeStage must claim the lease again.
//
// It runs from a renewer, without the volume's in-flight lock: losing the
// lease must not wait behind a slow RPC. It reads only the mount table,
// never the dead mount itself.
func (ns *NodeServer) fence(volumeID, reason string) {
	logger := klog.Background().WithValues("volumeID", volumeID)
	rec, err := ns.loadRecord(volumeID)
	if err != nil || rec == nil {
		logger.Error(err, "Fence: no stage record; nothing to cut off")
		return
	}
	all, err := ns.mounter.List()
	if err != nil {
		logger.Error(err, "Fence: cannot read the mount table")
	}
	staging := mountAt(all, rec.StagingPath, rec.VolName)
	if staging != nil {
		abortConnection(logger, staging)
	}

	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := ns.client.Stop(ctx, rec.ConfigFile, 0); err != nil {
		logger.Error(err, "Fence: cfs-client did not end")
	}

	for _, target := range fencedTargets(all, rec, staging) {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			logger.Error(err, "Fence: cannot unmount", "targetPath", target)
		}
	}
	if staging != nil {
		if err := unix.Unmount(rec.StagingPath, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			logger.Error(err, "Fence: cannot unmount", "stagingPath", rec.StagingPath)
		}
	}
	logger.Info("Fenced: the volume's client is ended and its mounts are gone", "reason", reason,
		"stagingPath", rec.StagingPath)
}

// mountAt finds the top mount of the volume at path in a mount table.
func mountAt(all []mount.Entry, path, volName string) *mount.Entry {
	var found *mount.Entry
	for i := range all {
		if all[i].Target == filepath.Clean(path) {
			found = &all[i]
		}
	}
	if found == nil || !isVolumeMount(found, volName) {
		return nil
	}
	return found
}

// fencedTargets lists the mount points to cut: every bind of the staging
// mount (same source and device) and every recorded target that is a
// mount of the volume.
func fencedTargets(all []mount.Entry, rec *stageRecord, staging *mount.Entry) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range all {
		if e.Target == filepath.Clean(rec.StagingPath) || seen[e.Target] {
			continue
		}
		bind := staging != nil && e.Source == staging.Source && e.Major == staging.Major &&
			e.Minor == staging.Minor
		if bind || (rec.Targets != nil && hasKey(rec.Targets, e.Target) && isVolumeMount(&e, rec.VolName)) {
			seen[e.Target] = true
			out = append(out, e.Target)
		}
	}
	return out
}

// abortConnection aborts the FUSE connection of a mount through fusectl.
// Without fusectl mounted (a container's fresh /sys, for one) the SIGKILL
// that follows is the fence.
func abortConnection(logger klog.Logger, e *mount.Entry) {
	if e.Major != 0 {
		return
	}
	path := filepath.Join(fuseConnections, strconv.Itoa(e.Minor), "abort")
	if _, err := os.Stat(path); err != nil {
		logger.V(2).Info("Fence: fusectl not available, relying on SIGKILL", "path", path)
		return
	}
	if err := os.WriteFile(path, []byte("1"), 0); err != nil {
		logger.Error(err, "Fence: cannot abort the FUSE connection", "path", path)
		return
	}
	logger.V(2).Info("Fence: FUSE connection aborted", "connection", e.Minor)
}

func hasKey(m map[string]bool, k string) bool {
	_, ok := m[k]
	return ok
}

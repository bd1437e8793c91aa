package rbd

import (
	"fmt"
	"syscall"

	"github.com/ceph/go-ceph/rados"
	librbd "github.com/ceph/go-ceph/rbd"
	"k8s.io/klog/v2"
)

// Removal and the trash: snapshots are clone-v2 children of their source
// volume, restored volumes clone-v2 children of a snapshot image. An image
// that still has children when it is deleted cannot be removed; it moves
// to the RBD trash instead (its own snapshots already sit in the trash
// namespace). When its last child goes (removed or flattened), librbd
// removes the trashed snapshot, and reapParents purges the trashed parent,
// walking up the chain. sweepTrash catches a parent whose reaping was cut
// short by a crash.

// maxCloneDepth is the longest chain of clone parents a new image may
// have; a deeper one is flattened before it is committed. krbd maps chains
// of up to 16; 4 keeps I/O through the chain short.
const maxCloneDepth = 4

// parentLink is where an image's clone parent lives.
type parentLink struct {
	pool    string
	imageID string
	name    string
	trash   bool
}

// imageParent returns the parent of an open image, or nil.
func imageParent(img *librbd.Image) (*parentLink, error) {
	info, err := img.GetParent()
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("parent of image %s: %w", img.GetName(), err)
	}
	return &parentLink{
		pool: info.Image.PoolName, imageID: info.Image.ImageID, name: info.Image.ImageName, trash: info.Image.Trash,
	}, nil
}

// cloneDepth counts the ancestors of ref.
func cloneDepth(s *session, ref imageRef) (int, error) {
	img, err := librbd.OpenImageReadOnly(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		return 0, fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	parent, err := imageParent(img)
	img.Close()
	depth := 0
	for ; err == nil && parent != nil && depth <= maxCloneDepth+16; depth++ {
		parent, err = parentOfID(s, parent)
	}
	return depth, err
}

// parentOfID returns the parent of the image link points to.
func parentOfID(s *session, link *parentLink) (*parentLink, error) {
	io, err := s.ioctx(link.pool)
	if err != nil {
		return nil, err
	}
	img, err := librbd.OpenImageByIdReadOnly(io, link.imageID, librbd.NoSnapshot)
	if err != nil {
		return nil, fmt.Errorf("open image id %s in pool %s: %w", link.imageID, link.pool, err)
	}
	defer img.Close()
	return imageParent(img)
}

// flattenImage copies the parent's data into ref and detaches it, then
// reaps the old parent if it was waiting in the trash for this child.
func flattenImage(s *session, ref imageRef) error {
	img, err := librbd.OpenImage(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		return fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	parent, err := imageParent(img)
	if err == nil && parent != nil {
		err = img.Flatten()
	}
	img.Close()
	if err != nil {
		return fmt.Errorf("flatten image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	reapParents(s, parent)
	return nil
}

// removeImage deletes ref: its own driver-made user snapshots first (left
// by a crashed clone or snapshot), then the image, or, if clone children
// still hang off its trashed snapshots, moves it to the trash. Missing is
// success. Afterwards trashed parents without children are purged. o, when
// not nil, marks the step boundaries with the delete failpoints.
func removeImage(s *session, ref imageRef, o *op) error {
	img, err := librbd.OpenImage(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	parent, err := imageParent(img)
	if err == nil {
		err = removeOwnSnaps(img, ref)
	}
	img.Close()
	if err != nil {
		return err
	}
	if err := o.step(FPDeleteAfterSnapsRm); err != nil {
		return err
	}

	err = librbd.RemoveImage(ref.io, ref.id.Image)
	switch {
	case err == nil:
		klog.V(2).InfoS("Removed image", "pool", ref.pool, "image", ref.id.Image)
	case isNotFound(err):
	case isErrno(err, syscall.ENOTEMPTY):
		if err := setMetadata(ref, metaTrashed, ref.id.Image); err != nil {
			return err
		}
		if err := librbd.GetImage(ref.io, ref.id.Image).Trash(0); err != nil && !isNotFound(err) {
			return fmt.Errorf("move image %s/%s to trash: %w", ref.pool, ref.id.Image, err)
		}
		klog.V(2).InfoS("Moved image with clone children to trash", "pool", ref.pool, "image", ref.id.Image)
	default:
		return fmt.Errorf("remove image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	if err := o.step(FPDeleteAfterRemove); err != nil {
		return err
	}
	reapParents(s, parent)
	return nil
}

// removeOwnSnaps removes the image's user-namespace snapshots, which must
// all be the driver's (named after the image they were cut for). A
// snapshot with children moves to the trash namespace.
func removeOwnSnaps(img *librbd.Image, ref imageRef) error {
	snaps, err := img.GetSnapshotNames()
	if err != nil {
		return fmt.Errorf("snapshots of %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	for _, sn := range snaps {
		ns, err := img.GetSnapNamespaceType(sn.Id)
		if err != nil {
			return fmt.Errorf("snapshot %d of %s/%s: %w", sn.Id, ref.pool, ref.id.Image, err)
		}
		if ns != librbd.SnapNamespaceTypeUser {
			continue
		}
		if !isDriverName(sn.Name) {
			return fmt.Errorf("%w: %s/%s has snapshot %q; remove it first",
				ErrHasSnapshots, ref.pool, ref.id.Image, sn.Name)
		}
		if err := img.GetSnapshot(sn.Name).Remove(); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove snapshot %s/%s@%s: %w", ref.pool, ref.id.Image, sn.Name, err)
		}
	}
	return nil
}

func isDriverName(name string) bool {
	_, vol := imageNameOK(KindVolume, name)
	_, snap := imageNameOK(KindSnapshot, name)
	return vol || snap
}

// reapParents purges trashed ancestors that no longer have children.
// Best effort: a failure leaves the parent in the trash for sweepTrash.
func reapParents(s *session, link *parentLink) {
	for depth := 0; link != nil && link.trash && depth < maxCloneDepth+16; depth++ {
		grand, err := parentOfID(s, link)
		if err != nil {
			klog.V(4).InfoS("Cannot read parent of trashed image",
				"pool", link.pool, "imageID", link.imageID, "err", err)
			return
		}
		if !purgeTrashed(s, link.pool, link.imageID, link.name) {
			return
		}
		link = grand
	}
}

// purgeTrashed removes a trashed image if the driver trashed it (an
// admin's "rbd trash mv" is left alone) and nothing hangs off it any more.
func purgeTrashed(s *session, pool, imageID, name string) bool {
	io, err := s.ioctx(pool)
	if err != nil {
		return false
	}
	if !trashedByDriver(io, imageID, name) {
		return false
	}
	err = librbd.TrashRemove(io, imageID, false)
	switch {
	case err == nil:
		klog.V(2).InfoS("Purged trashed image", "pool", pool, "imageID", imageID)
		return true
	case isNotFound(err):
		return true
	}
	klog.V(4).InfoS("Trashed image still in use", "pool", pool, "imageID", imageID, "err", err)
	return false
}

// trashedByDriver reports whether the image carries our trash marker.
func trashedByDriver(io *rados.IOContext, imageID, name string) bool {
	if !isDriverName(name) {
		return false
	}
	img, err := librbd.OpenImageByIdReadOnly(io, imageID, librbd.NoSnapshot)
	if err != nil {
		return false
	}
	defer img.Close()
	value, err := img.GetMetadata(metaTrashed)
	return err == nil && value == name
}

// sweepTrash purges the pool's trashed driver images that no longer have
// children, repeating while that frees more (a chain frees bottom up).
func sweepTrash(s *session, pool string) {
	io, err := s.ioctx(pool)
	if err != nil {
		return
	}
	for pass := 0; pass < maxCloneDepth+2; pass++ {
		entries, err := librbd.GetTrashList(io)
		if err != nil {
			klog.V(4).InfoS("Cannot list trash", "pool", pool, "err", err)
			return
		}
		purged := 0
		for _, e := range entries {
			if isDriverName(e.Name) && purgeTrashed(s, pool, e.Id, e.Name) {
				purged++
			}
		}
		if purged == 0 {
			return
		}
	}
}

// otherWatchers lists the watchers of ref other than this client: a
// mapped image has one per mapping client.
func otherWatchers(s *session, ref imageRef) ([]librbd.ImageWatcher, error) {
	img, err := librbd.OpenImageReadOnly(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		return nil, fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	defer img.Close()
	watchers, err := img.ListWatchers()
	if err != nil {
		return nil, fmt.Errorf("watchers of %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	self := int64(s.conn.GetInstanceID())
	var out []librbd.ImageWatcher
	for _, w := range watchers {
		if w.Id != self {
			out = append(out, w)
		}
	}
	return out, nil
}

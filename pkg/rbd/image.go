package rbd

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"time"

	librbd "github.com/ceph/go-ceph/rbd"
)

// Image metadata written by the controller. librbd copies an image's
// metadata into its clones, so every record names the image it belongs to
// and a clone's inherited keys (everything under metaPrefix) are scrubbed
// before its own record is written.
const (
	// metaPrefix: keys under it belong to this driver (controller and node);
	// inherited ones are removed from new clones.
	metaPrefix = "tkestor."
	// metaRecord holds the JSON imageRecord: the back-pointer to the CSI
	// name and the content source. Written right after the image exists.
	metaRecord = "tkestor.csi/record"
	// metaCommitted holds the image's own name once the operation that made
	// it finished; it is the last write of every create.
	metaCommitted = "tkestor.csi/committed"
	// metaTrashed holds the image's name when the driver moves it to the
	// trash; only images with it are purged from there.
	metaTrashed = "tkestor.csi/trashed"
	// metaAttachedPrefix + nodeID records a ControllerPublish.
	metaAttachedPrefix = "tkestor.csi/attached."
)

// imageRecord is the back-pointer stored on every image the driver makes.
type imageRecord struct {
	// Image is the name of the image the record belongs to.
	Image string `json:"image"`
	// Name is the CSI request name (volume or snapshot name).
	Name string `json:"name"`
	// Source is "", "volume:<volume ID>" or "snapshot:<snapshot ID>".
	Source string `json:"source,omitempty"`
	// Created is when the record was first written (RFC 3339, UTC).
	Created string `json:"created"`
}

func (r imageRecord) createdTime() time.Time {
	t, err := time.Parse(time.RFC3339Nano, r.Created)
	if err != nil {
		return time.Time{}
	}
	return t
}

// imageState is how far the making of an image got.
type imageState int

const (
	// stateMissing: no image of that name.
	stateMissing imageState = iota
	// stateUnrecorded: the image exists but has no record of its own (a
	// crash between creating it and writing the record, or a clone that
	// still carries its parent's metadata). Nothing can use it yet.
	stateUnrecorded
	// stateRecorded: the record is written, the commit marker is not.
	stateRecorded
	// stateCommitted: finished; its ID may have been handed out.
	stateCommitted
)

// imageInfo is what inspect learns about an image.
type imageInfo struct {
	state    imageState
	record   imageRecord
	size     uint64
	metadata map[string]string
}

// inspect reads an image's state without changing it.
func inspect(ref imageRef) (imageInfo, error) {
	img, err := librbd.OpenImageReadOnly(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		if isNotFound(err) {
			return imageInfo{state: stateMissing}, nil
		}
		return imageInfo{}, fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	defer img.Close()
	size, err := img.GetSize()
	if err != nil {
		return imageInfo{}, fmt.Errorf("size of image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	meta, err := img.ListMetadata()
	if err != nil {
		return imageInfo{}, fmt.Errorf("metadata of image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	info := imageInfo{state: stateUnrecorded, size: size, metadata: meta}
	var rec imageRecord
	if json.Unmarshal([]byte(meta[metaRecord]), &rec) != nil || rec.Image != ref.id.Image {
		return info, nil
	}
	info.record, info.state = rec, stateRecorded
	if meta[metaCommitted] == ref.id.Image {
		info.state = stateCommitted
	}
	return info, nil
}

// writeRecord scrubs inherited driver metadata and writes the record.
func writeRecord(ref imageRef, rec imageRecord) error {
	img, err := librbd.OpenImage(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		return fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	defer img.Close()
	meta, err := img.ListMetadata()
	if err != nil {
		return fmt.Errorf("metadata of image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	for key := range meta {
		if strings.HasPrefix(key, metaPrefix) {
			if err := img.RemoveMetadata(key); err != nil && !isNotFound(err) {
				return fmt.Errorf("scrub metadata %q of %s/%s: %w", key, ref.pool, ref.id.Image, err)
			}
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := img.SetMetadata(metaRecord, string(data)); err != nil {
		return fmt.Errorf("write record of %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	return nil
}

// commit writes the commit marker, the last step of every create.
func commit(ref imageRef) error {
	return setMetadata(ref, metaCommitted, ref.id.Image)
}

func setMetadata(ref imageRef, key, value string) error {
	img, err := librbd.OpenImage(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		return fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	defer img.Close()
	if err := img.SetMetadata(key, value); err != nil {
		return fmt.Errorf("set metadata %q of %s/%s: %w", key, ref.pool, ref.id.Image, err)
	}
	return nil
}

// createImage creates an empty image with the class's features.
func createImage(ref imageRef, size uint64, p *VolumeParameters) error {
	opts := librbd.NewRbdImageOptions()
	defer opts.Destroy()
	if err := imageOptions(opts, p); err != nil {
		return err
	}
	if err := librbd.CreateImage(ref.io, ref.id.Image, size, opts); err != nil {
		return fmt.Errorf("create image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	return nil
}

func imageOptions(opts *librbd.ImageOptions, p *VolumeParameters) error {
	if err := opts.SetUint64(librbd.ImageOptionFormat, 2); err != nil {
		return err
	}
	if err := opts.SetUint64(librbd.ImageOptionFeatures, p.Features); err != nil {
		return err
	}
	if p.DataPool != "" {
		if err := opts.SetString(librbd.ImageOptionDataPool, p.DataPool); err != nil {
			return err
		}
	}
	return nil
}

// cloneImage clones parent@snap into ref with clone format 2, so the
// parent snapshot may be removed (it moves to the trash namespace) while
// the clone lives.
func cloneImage(parent imageRef, snap string, ref imageRef, p *VolumeParameters) error {
	opts := librbd.NewRbdImageOptions()
	defer opts.Destroy()
	if err := imageOptions(opts, p); err != nil {
		return err
	}
	if err := opts.SetUint64(librbd.ImageOptionCloneFormat, 2); err != nil {
		return err
	}
	err := librbd.CloneImage(parent.io, parent.id.Image, snap, ref.io, ref.id.Image, opts)
	if err != nil {
		return fmt.Errorf("clone %s/%s@%s to %s/%s: %w",
			parent.pool, parent.id.Image, snap, ref.pool, ref.id.Image, err)
	}
	return nil
}

// resizeImage grows an image to at least size; it never shrinks.
func resizeImage(ref imageRef, size uint64) (uint64, error) {
	img, err := librbd.OpenImage(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		return 0, fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	defer img.Close()
	cur, err := img.GetSize()
	if err != nil {
		return 0, fmt.Errorf("size of image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	if cur >= size {
		return cur, nil
	}
	if err := img.Resize(size); err != nil {
		return 0, fmt.Errorf("resize image %s/%s to %d: %w", ref.pool, ref.id.Image, size, err)
	}
	return size, nil
}

// ensureSnap creates snapshot snap of ref unless it exists.
func ensureSnap(ref imageRef, snap string) error {
	img, err := librbd.OpenImage(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		return fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	defer img.Close()
	if _, err := img.GetSnapID(snap); err == nil {
		return nil
	}
	if _, err := img.CreateSnapshot(snap); err != nil && !isErrnoExist(err) {
		return fmt.Errorf("snapshot %s/%s@%s: %w", ref.pool, ref.id.Image, snap, err)
	}
	return nil
}

// removeSnap removes snapshot snap of ref if it exists. A snapshot with
// clone-v2 children moves to the trash namespace and is removed by librbd
// when its last child goes.
func removeSnap(ref imageRef, snap string) error {
	img, err := librbd.OpenImage(ref.io, ref.id.Image, librbd.NoSnapshot)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("open image %s/%s: %w", ref.pool, ref.id.Image, err)
	}
	defer img.Close()
	if _, err := img.GetSnapID(snap); err != nil {
		return nil //nolint:nilerr // no such snapshot: done
	}
	if err := img.GetSnapshot(snap).Remove(); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove snapshot %s/%s@%s: %w", ref.pool, ref.id.Image, snap, err)
	}
	return nil
}

func isErrnoExist(err error) bool { return isErrno(err, syscall.EEXIST) }

package rbd

import (
	"fmt"
	"time"

	"k8s.io/klog/v2"
)

// createPlan is how one CreateVolume makes its image. Empty volume:
//
//	create image → record → resize (no-op) → commit
//
// Clone from a volume V (target T):
//
//	snapshot V@T → clone V@T to T → record → remove V@T (clone v2 moves it
//	to V's trash namespace while T lives) → resize → flatten if deep → commit
//
// Restore from a snapshot S (an image with its snapshot S@S):
//
//	clone S@S to T → record → resize → flatten if deep → commit
//
// make runs the steps up to the record only when the image is missing;
// finish runs the rest, each step idempotent, so a retry after a crash
// anywhere completes the image. An image found without its own record is
// removed first (ensureVolume), and V@T, if left, is reused.
type createPlan struct {
	s      *session
	cr     *createRequest
	target imageRef
	src    *imageRef
	// parentSnap is the snapshot of src to clone; tempSnap says it is a
	// temporary one cut for this clone (clone from volume).
	parentSnap string
	tempSnap   bool
	size       uint64
}

func (cs *ControllerServer) planCreate(
	s *session, cr *createRequest, target imageRef, src *imageRef,
) (*createPlan, error) {
	p := &createPlan{s: s, cr: cr, target: target, src: src}
	if src == nil {
		var err error
		p.size, err = cr.size(0)
		return p, err
	}
	info, err := inspect(*src)
	if err != nil {
		return nil, err
	}
	if info.state != stateCommitted {
		return nil, fmt.Errorf("%w: source %s %s does not exist", src.id.notFound(), src.id.Kind.noun(), src.id)
	}
	if p.size, err = cr.size(info.size); err != nil {
		return nil, err
	}
	if src.id.Kind == KindSnapshot {
		p.parentSnap = src.id.Image
	} else {
		p.parentSnap, p.tempSnap = target.id.Image, true
	}
	return p, nil
}

// make creates or clones the image and writes its record.
func (p *createPlan) make(o *op) error {
	if p.src == nil {
		if err := createImage(p.target, p.size, p.cr.params); err != nil {
			return err
		}
	} else {
		if p.tempSnap {
			if err := ensureSnap(*p.src, p.parentSnap); err != nil {
				return err
			}
			if err := o.step(FPCreateAfterTempSnap); err != nil {
				return err
			}
		}
		if err := cloneImage(*p.src, p.parentSnap, p.target, p.cr.params); err != nil {
			return err
		}
	}
	klog.V(2).InfoS("Created image", "pool", p.target.pool, "image", p.target.id.Image, "source", p.cr.source.String())
	if err := o.step(FPCreateAfterImage); err != nil {
		return err
	}

	rec := imageRecord{
		Image:   p.target.id.Image,
		Name:    p.cr.name,
		Source:  p.cr.source.String(),
		Created: time.Now().UTC().Format(time.RFC3339Nano),
	}
	if err := writeRecord(p.target, rec); err != nil {
		return err
	}
	return o.step(FPCreateAfterRecord)
}

// finish completes a recorded image and commits it; every step is safe to
// repeat.
func (p *createPlan) finish(o *op) (uint64, error) {
	if p.tempSnap {
		if err := removeSnap(*p.src, p.parentSnap); err != nil {
			return 0, err
		}
		if err := o.step(FPCreateAfterTempSnapRm); err != nil {
			return 0, err
		}
	}
	size, err := resizeImage(p.target, p.size)
	if err != nil {
		return 0, err
	}
	if err := o.step(FPCreateAfterResize); err != nil {
		return 0, err
	}
	if p.src != nil {
		if err := flattenIfDeep(p.s, p.target); err != nil {
			return 0, err
		}
		if err := o.step(FPCreateAfterFlatten); err != nil {
			return 0, err
		}
	}
	if err := commit(p.target); err != nil {
		return 0, err
	}
	return size, o.step(FPCreateAfterCommit)
}

// flattenIfDeep flattens an image whose clone chain is longer than
// maxCloneDepth. A flatten cut short resumes where it stopped (objects
// already copied up stay).
func flattenIfDeep(s *session, ref imageRef) error {
	depth, err := cloneDepth(s, ref)
	if err != nil {
		return err
	}
	if depth <= maxCloneDepth {
		return nil
	}
	klog.V(2).InfoS("Flattening deep clone", "pool", ref.pool, "image", ref.id.Image, "depth", depth)
	return flattenImage(s, ref)
}

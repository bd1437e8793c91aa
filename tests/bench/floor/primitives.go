package floor

import (
	"errors"
	"fmt"
	"time"

	"github.com/ceph/go-ceph/rbd"
)

// Primitive is one go-ceph building block a driver's call is made of, run
// against an existing image. Timing each on its own shows what a CSI call
// costs in these units (how many image opens, metadata writes, locks).
type Primitive struct {
	Name string
	Run  func(c *Ceph, image string) error
}

// Primitives are the building blocks of an RBD driver's controller calls.
func Primitives() []Primitive {
	return []Primitive{
		{Name: "open+close rw", Run: func(c *Ceph, image string) error {
			return c.withImage(image, false, func(*rbd.Image) error { return nil })
		}},
		{Name: "open+close ro", Run: func(c *Ceph, image string) error {
			return c.withImage(image, true, func(*rbd.Image) error { return nil })
		}},
		{Name: "open missing", Run: func(c *Ceph, image string) error {
			img, err := rbd.OpenImageReadOnly(c.ioctx, image+"-missing", rbd.NoSnapshot)
			if errors.Is(err, rbd.ErrNotFound) {
				return nil
			}
			if err == nil {
				_ = img.Close()
				return fmt.Errorf("%s-missing exists", image)
			}
			return err
		}},
		{Name: "ro size+listmeta", Run: func(c *Ceph, image string) error {
			return c.withImage(image, true, func(img *rbd.Image) error {
				if _, err := img.GetSize(); err != nil {
					return err
				}
				_, err := img.ListMetadata()
				return err
			})
		}},
		{Name: "rw setmeta", Run: func(c *Ceph, image string) error {
			return c.withImage(image, false, func(img *rbd.Image) error {
				return img.SetMetadata("bench.key", time.Now().String())
			})
		}},
		{Name: "rw setmeta x2", Run: func(c *Ceph, image string) error {
			return c.withImage(image, false, func(img *rbd.Image) error {
				if err := img.SetMetadata("bench.key", time.Now().String()); err != nil {
					return err
				}
				return img.SetMetadata("bench.key2", time.Now().String())
			})
		}},
		{Name: "ro watchers", Run: func(c *Ceph, image string) error {
			return c.withImage(image, true, func(img *rbd.Image) error {
				_, err := img.ListWatchers()
				return err
			})
		}},
		{Name: "lock+renew+delete", Run: func(c *Ceph, image string) error {
			return c.lease("bench.lock." + image)
		}},
		{Name: "trash list", Run: func(c *Ceph, _ string) error {
			_, err := rbd.GetTrashList(c.ioctx)
			return err
		}},
		// Last: these two take the image away. A deferred delete is the
		// first in the foreground and the second in the background.
		{Name: "trash mv", Run: func(c *Ceph, image string) error {
			return rbd.GetImage(c.ioctx, image).Trash(0)
		}},
		{Name: "trash ls+rm", Run: func(c *Ceph, image string) error {
			entries, err := rbd.GetTrashList(c.ioctx)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if e.Name == image {
					return rbd.TrashRemove(c.ioctx, e.Id, false)
				}
			}
			return fmt.Errorf("%s not in the trash", image)
		}},
	}
}

// withImage opens image (read-only or read-write), runs f and closes it.
func (c *Ceph) withImage(image string, readOnly bool, f func(*rbd.Image) error) error {
	open := rbd.OpenImage
	if readOnly {
		open = rbd.OpenImageReadOnly
	}
	img, err := open(c.ioctx, image, rbd.NoSnapshot)
	if err != nil {
		return fmt.Errorf("open image %s: %w", image, err)
	}
	ferr := f(img)
	if err := img.Close(); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
}

// lease takes an exclusive RADOS lock on a new object through its own I/O
// context, renews it once and deletes the object: a per-operation backend
// lock's whole life.
func (c *Ceph) lease(oid string) error {
	io, err := c.conn.OpenIOContext(c.pool)
	if err != nil {
		return err
	}
	defer io.Destroy()
	if ret, err := io.LockExclusive(oid, "bench", "cookie", "bench", 30*time.Second, nil); err != nil || ret != 0 {
		return fmt.Errorf("lock %s: %d %w", oid, ret, err)
	}
	mustRenew := byte(1 << 1)
	if ret, err := io.LockExclusive(oid, "bench", "cookie", "", 30*time.Second, &mustRenew); err != nil || ret != 0 {
		return fmt.Errorf("renew %s: %d %w", oid, ret, err)
	}
	return io.Delete(oid)
}

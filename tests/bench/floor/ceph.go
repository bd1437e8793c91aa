// Package floor does by hand what a CSI driver does, so the benchmark can
// print every figure beside the cost of the bare work: RBD images created
// and deleted directly through go-ceph on one connection, and the
// userspace mount path (rbd-fuse, loop device, mkfs, mount) run as plain
// commands.
package floor

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ceph/go-ceph/rados"
	"github.com/ceph/go-ceph/rbd"
)

// CephOptions say where and as whom the floor connects.
type CephOptions struct {
	Monitors []string
	User     string
	// Key is the cephx key; it goes to librados as the "key" option,
	// never through argv or a file.
	Key  string
	Pool string
	// OpTimeout bounds every monitor and OSD operation.
	OpTimeout time.Duration
}

// Ceph is one RADOS connection and one I/O context on the pool, shared by
// every goroutine of the floor.
type Ceph struct {
	conn  *rados.Conn
	ioctx *rados.IOContext
	pool  string
}

// Connect opens the connection with the settings a driver would use.
func Connect(o CephOptions) (*Ceph, error) {
	conn, err := rados.NewConnWithUser(o.User)
	if err != nil {
		return nil, fmt.Errorf("create rados client: %w", err)
	}
	timeout := strconv.Itoa(max(1, int(o.OpTimeout.Seconds())))
	settings := [][2]string{
		{"mon_host", strings.Join(o.Monitors, ",")},
		{"key", o.Key},
		{"keyring", ""},
		{"rados_mon_op_timeout", timeout},
		{"rados_osd_op_timeout", timeout},
		{"client_mount_timeout", timeout},
		{"log_to_stderr", "false"},
		{"err_to_stderr", "false"},
	}
	for _, kv := range settings {
		if err := conn.SetConfigOption(kv[0], kv[1]); err != nil {
			conn.Shutdown()
			return nil, fmt.Errorf("set rados option %s: %w", kv[0], err)
		}
	}
	if err := conn.Connect(); err != nil {
		conn.Shutdown()
		return nil, fmt.Errorf("connect to %v as %s: %w", o.Monitors, o.User, err)
	}
	ioctx, err := conn.OpenIOContext(o.Pool)
	if err != nil {
		conn.Shutdown()
		return nil, fmt.Errorf("open pool %s: %w", o.Pool, err)
	}
	return &Ceph{conn: conn, ioctx: ioctx, pool: o.Pool}, nil
}

// Close ends the connection.
func (c *Ceph) Close() {
	c.ioctx.Destroy()
	c.conn.Shutdown()
}

// CreateImage creates a format 2 image with the layering feature only.
func (c *Ceph) CreateImage(name string, size uint64) error {
	opts := rbd.NewRbdImageOptions()
	defer opts.Destroy()
	if err := opts.SetUint64(rbd.ImageOptionFormat, 2); err != nil {
		return err
	}
	if err := opts.SetUint64(rbd.ImageOptionFeatures, rbd.FeatureLayering); err != nil {
		return err
	}
	if err := rbd.CreateImage(c.ioctx, name, size, opts); err != nil {
		return fmt.Errorf("create image %s: %w", name, err)
	}
	return nil
}

// RemoveImage deletes an image.
func (c *Ceph) RemoveImage(name string) error {
	if err := rbd.RemoveImage(c.ioctx, name); err != nil {
		return fmt.Errorf("remove image %s: %w", name, err)
	}
	return nil
}

// CreateSnapshot takes a snapshot of an image (open, snap create, close).
func (c *Ceph) CreateSnapshot(image, snap string) error {
	img, err := rbd.OpenImage(c.ioctx, image, rbd.NoSnapshot)
	if err != nil {
		return fmt.Errorf("open image %s: %w", image, err)
	}
	defer img.Close() //nolint:errcheck // nothing to do about a failed close here
	if _, err := img.CreateSnapshot(snap); err != nil {
		return fmt.Errorf("snapshot %s@%s: %w", image, snap, err)
	}
	return nil
}

// RemoveSnapshot deletes a snapshot (open, snap remove, close).
func (c *Ceph) RemoveSnapshot(image, snap string) error {
	img, err := rbd.OpenImage(c.ioctx, image, rbd.NoSnapshot)
	if err != nil {
		return fmt.Errorf("open image %s: %w", image, err)
	}
	defer img.Close() //nolint:errcheck // nothing to do about a failed close here
	if err := img.GetSnapshot(snap).Remove(); err != nil {
		return fmt.Errorf("remove snapshot %s@%s: %w", image, snap, err)
	}
	return nil
}

// ListImages names every image in the pool.
func (c *Ceph) ListImages() ([]string, error) {
	return rbd.GetImageNames(c.ioctx)
}

// PurgeTrash removes trashed images whose name starts with prefix and
// returns the names it could not remove.
func (c *Ceph) PurgeTrash(prefix string) ([]string, error) {
	entries, err := rbd.GetTrashList(c.ioctx)
	if err != nil {
		return nil, err
	}
	var left []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name, prefix) {
			continue
		}
		if err := rbd.TrashRemove(c.ioctx, e.Id, false); err != nil {
			left = append(left, e.Name)
		}
	}
	return left, nil
}

package cfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The operator's view of a volume's lease (`tkestor-csi holder show|release
// --driver=cfs`). The lease lives in the volume, so the command mounts it
// with the ChubaoFS client into a temporary directory (read-only to show,
// read-write to release), reads or writes .tkestor-csi/, and unmounts.

// HolderQuery names a volume for the holder command.
type HolderQuery struct {
	// VolumeID is the CSI volume ID (cfs1-...).
	VolumeID string
	// Masters (comma-separated) are needed for an ID that names its
	// masters by hash; for an ID with inline masters they must match.
	Masters string
	// Secrets may carry "owner" (then it must be the volume's) and
	// "masterAddr", as the node-stage secret does; without an owner it is
	// looked up on the master.
	Secrets map[string]string
	// ClientPath is the cfs-client binary.
	ClientPath string
	// WorkDir holds the temporary mount; "" is the system's temp dir.
	WorkDir string
	// Node, for a release, is the holder to release ("" any).
	Node string
	// Progress, when set, hears about long steps (watching a lease).
	Progress func(msg string)
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// clientEnv replaces the client's environment (tests).
	clientEnv []string
}

// HolderStatus is the current lease generation of a volume.
type HolderStatus struct {
	Volume     string
	Generation uint64
	// Node holds the volume; "" when it is free.
	Node         string
	Mode         string
	Since        time.Time
	RenewedAt    time.Time
	LeaseSeconds int64
	Renewals     uint64
	ReleasedBy   string
	// Unreadable: the current generation is not a record.
	Unreadable bool
	// Age is the time since RenewedAt by this machine's clock, and
	// Expired says it exceeds the lease: an estimate, as clocks differ.
	Age     time.Duration
	Expired bool
	// released: ReleaseHolder wrote a released generation on top.
	released bool
}

// liveLeaseError refuses to release a lease that looks live; it is an
// ErrWrongState.
type liveLeaseError struct{ detail string }

func (e *liveLeaseError) Error() string        { return "the lease looks live: " + e.detail }
func (e *liveLeaseError) Is(target error) bool { return target == ErrWrongState }

// ShowHolder reads the lease of a volume.
func ShowHolder(ctx context.Context, q HolderQuery) (*HolderStatus, error) {
	var st *HolderStatus
	err := withVolumeMount(ctx, q, true, func(root string) error {
		v, err := readLease(root)
		st = q.status(v)
		return err
	})
	return st, err
}

// ReleaseHolder frees a volume by writing a released generation on top of
// the current one. Without force it refuses a lease that is live: one
// renewed within its lease by this machine's clock, or one that changes
// while it is watched for a whole lease. The holder, if it still runs,
// sees the released generation at its next renewal and fences itself.
func ReleaseHolder(ctx context.Context, q HolderQuery, force bool) (*HolderStatus, error) {
	var st *HolderStatus
	err := withVolumeMount(ctx, q, false, func(root string) error {
		v, err := readLease(root)
		if err != nil {
			return err
		}
		st = q.status(v)
		if st.Generation == 0 || (st.Node == "" && !st.Unreadable) {
			return nil // free already
		}
		if q.Node != "" && st.Node != q.Node {
			return fmt.Errorf("%w: the volume is held by node %q, not %q", ErrWrongState, st.Node, q.Node)
		}
		if !force {
			if err := q.confirmExpired(ctx, root, v, st); err != nil {
				return err
			}
			*st = *q.status(v) // its age after the watch
		}
		if err := writeRelease(root, v.gen+1, q.now()); err != nil {
			return err
		}
		st.released = true
		return nil
	})
	return st, err
}

// confirmExpired refuses a live lease: renewed recently by this machine's
// clock, or renewed while watched for its whole lease.
func (q HolderQuery) confirmExpired(ctx context.Context, root string, v leaseView, st *HolderStatus) error {
	lease := time.Duration(max(st.LeaseSeconds, 1)) * time.Second
	if !st.Unreadable && !st.Expired {
		return &liveLeaseError{fmt.Sprintf("node %q renewed it %s ago (lease %s): make sure that node is down, "+
			"then use --force", st.Node, st.Age.Round(time.Second), lease)}
	}
	if q.Progress != nil {
		q.Progress(fmt.Sprintf("watching lease generation %d for %s: released only if nobody renews it",
			v.gen, lease+time.Second))
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(lease + time.Second):
	}
	again, err := readLease(root)
	if err != nil {
		return err
	}
	if again.gen != v.gen || !bytes.Equal(again.raw, v.raw) {
		return &liveLeaseError{fmt.Sprintf("it was renewed or changed hands while watched for %s",
			lease+time.Second)}
	}
	return nil
}

// status describes a view.
func (q HolderQuery) status(v leaseView) *HolderStatus {
	st := &HolderStatus{Volume: q.VolumeID, Generation: v.gen}
	if v.gen == 0 {
		return st
	}
	if v.rec == nil {
		st.Unreadable = true
		return st
	}
	r := v.rec
	st.Node, st.Mode, st.Since, st.RenewedAt, st.LeaseSeconds = r.Node, r.Mode, r.Since, r.RenewedAt, r.LeaseSeconds
	st.Renewals, st.ReleasedBy = r.Renewals, r.ReleasedBy
	st.Age = q.now().Sub(r.RenewedAt)
	st.Expired = r.Node != "" && st.Age > time.Duration(r.LeaseSeconds)*time.Second
	return st
}

func (q HolderQuery) now() time.Time {
	if q.Now != nil {
		return q.Now()
	}
	return time.Now()
}

// readLease reads the current generation under root.
func readLease(root string) (leaseView, error) {
	dir, err := openLeaseDir(root, false)
	if err != nil || dir == nil {
		return leaseView{}, err
	}
	defer dir.close()
	return dir.current()
}

// writeRelease creates the released generation gen.
func writeRelease(root string, gen uint64, now time.Time) error {
	dir, err := openLeaseDir(root, false)
	if err != nil {
		return err
	}
	if dir == nil {
		return fmt.Errorf("%w: the lease directory is gone", ErrWrongState)
	}
	defer dir.close()
	err = dir.create(&leaseRecord{Since: now.UTC(), RenewedAt: now.UTC(), Generation: gen, ReleasedBy: "operator"})
	if errors.Is(err, errGenerationTaken) {
		return fmt.Errorf("%w: the lease changed hands while releasing it", ErrWrongState)
	}
	if err == nil {
		dir.gc(gen)
	}
	return err
}

// withVolumeMount mounts the volume's root with the client in a fresh
// 0700 directory, runs fn on it, and unmounts, ending the client.
func withVolumeMount(ctx context.Context, q HolderQuery, readOnly bool, fn func(root string) error) error {
	id, err := parseVolumeID(q.VolumeID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrVolumeNotFound, err)
	}
	var fromFlag []string
	if q.Masters != "" {
		if fromFlag, err = parseMasters(q.Masters); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
	}
	masters, err := stageMasters(id, fromFlag, q.Secrets)
	if err != nil {
		return err
	}
	pool := newClusterPool(nil, masterCallTimeout)
	defer pool.close()
	c, err := pool.client(masters)
	if err != nil {
		return err
	}
	vol, err := c.GetVol(ctx, id.Name)
	if err != nil {
		return err
	}
	owner, err := volumeOwner(vol, q.Secrets)
	if err != nil {
		return err
	}

	work, err := os.MkdirTemp(q.WorkDir, "tkestor-csi-holder-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	root, config := filepath.Join(work, "mnt"), filepath.Join(work, "client.json")
	if err := os.MkdirAll(filepath.Join(work, "log"), 0o700); err != nil {
		return err
	}
	err = writeClientConfig(config, clientConfig{
		MountPoint: root, VolName: id.Name, Owner: owner, Masters: masters,
		LogDir: filepath.Join(work, "log"), LogLevel: "error", ReadOnly: readOnly,
	})
	if err != nil {
		return err
	}
	client := &execClient{path: q.ClientPath, env: q.clientEnv}
	if err := client.Mount(ctx, config); err != nil {
		return err
	}
	defer unmountTool(root, config, client)
	return fn(root)
}

// unmountTool undoes the command's mount, even when the command failed.
func unmountTool(root, config string, client *execClient) {
	if err := unix.Unmount(root, 0); err != nil {
		_ = unix.Unmount(root, unix.MNT_DETACH)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_ = client.Stop(ctx, config, clientExitGrace)
}

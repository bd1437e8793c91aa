package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ceph/go-ceph/rbd"

	"github.com/tkestack/tkestor-csi/tests/bench/floor"
)

// floorSide does the driver's work directly: go-ceph on one connection for
// the controller phases, plain commands for the mount path.
type floorSide struct {
	ceph    *floor.Ceph
	mounter *floor.Mounter
	size    uint64
	workDir string
}

// clusterEntry is one element of a ceph-csi style cluster list.
type clusterEntry struct {
	ClusterID string   `json:"clusterID"`
	Monitors  []string `json:"monitors"`
}

func monitorsOf(path, clusterID string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var list []clusterEntry
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, c := range list {
		if c.ClusterID == clusterID && len(c.Monitors) > 0 {
			return c.Monitors, nil
		}
	}
	return nil, fmt.Errorf("%s: no monitors for cluster %q", path, clusterID)
}

func newFloor(o *Options) (*floorSide, error) {
	mons, err := monitorsOf(o.ClusterConfig, o.ClusterID)
	if err != nil {
		return nil, err
	}
	ceph, err := floor.Connect(floor.CephOptions{
		Monitors:  mons,
		User:      floorUser(o.Secrets),
		Key:       floorKey(o.Secrets),
		Pool:      o.Pool,
		OpTimeout: o.Timeout,
	})
	if err != nil {
		return nil, err
	}
	f := &floorSide{ceph: ceph, size: uint64(o.Size), workDir: filepath.Join(o.WorkDir, "floor")}
	if !o.FloorMount || !o.Phases[phaseNode] {
		return f, nil
	}
	if err := os.MkdirAll(f.workDir, 0o700); err != nil {
		ceph.Close()
		return nil, err
	}
	f.mounter, err = floor.NewMounter(floor.MountOptions{
		Dir:      filepath.Join(f.workDir, "fuse"),
		Monitors: mons,
		User:     floorUser(o.Secrets),
		Key:      floorKey(o.Secrets),
		Pool:     o.Pool,
		RbdFuse:  o.RbdFuse,
	})
	if err != nil {
		ceph.Close()
		return nil, err
	}
	return f, nil
}

func (f *floorSide) close() { f.ceph.Close() }

func (f *floorSide) name() string { return sideFloor }

func (f *floorSide) createVolume(_ context.Context, name string) (*volume, error) {
	if err := f.ceph.CreateImage(name, f.size); err != nil {
		return nil, err
	}
	return &volume{name: name, id: name}, nil
}

// deleteVolume removes the image. A missing image is success, as for
// DeleteVolume; a busy one (rbd-fuse still closing it) is retried.
func (f *floorSide) deleteVolume(ctx context.Context, v *volume) error {
	for {
		err := f.ceph.RemoveImage(v.id)
		switch {
		case err == nil, errors.Is(err, rbd.ErrNotFound):
			return nil
		case !isErrno(err, -int(syscall.EBUSY)):
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func isErrno(err error, code int) bool {
	var en interface{ ErrorCode() int }
	return errors.As(err, &en) && en.ErrorCode() == code
}

func (f *floorSide) createSnapshot(_ context.Context, v *volume, name string) (*snapshot, error) {
	if err := f.ceph.CreateSnapshot(v.id, name); err != nil {
		return nil, err
	}
	return &snapshot{name: name, id: name, source: v}, nil
}

func (f *floorSide) deleteSnapshot(_ context.Context, s *snapshot) error {
	return f.ceph.RemoveSnapshot(s.source.id, s.id)
}

func (f *floorSide) attachTimed() bool { return false }

func (f *floorSide) attach(_ context.Context, v *volume) (*staged, error) {
	return &staged{
		vol:         v,
		stagingPath: filepath.Join(f.workDir, "mnt", v.name, "globalmount"),
		targetPath:  filepath.Join(f.workDir, "mnt", v.name, "pod", "mount"),
	}, nil
}

func (f *floorSide) detach(_ context.Context, st *staged) error {
	return os.RemoveAll(filepath.Join(f.workDir, "mnt", st.vol.name))
}

func (f *floorSide) stagePublish(ctx context.Context, st *staged) (steps, error) {
	if f.mounter == nil {
		return nil, errors.New("floor mount path disabled")
	}
	undo, took, err := f.mounter.Stage(ctx, st.vol.id, st.stagingPath, st.targetPath)
	st.undo = undo
	return steps(took), err
}

func (f *floorSide) unpublishUnstage(ctx context.Context, st *staged) (steps, error) {
	undo, ok := st.undo.(*floor.Staged)
	if !ok || undo == nil {
		return nil, nil
	}
	took, err := f.mounter.Unstage(ctx, undo)
	return steps(took), err
}

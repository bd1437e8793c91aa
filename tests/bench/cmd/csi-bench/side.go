package main

import (
	"context"
	"time"
)

// volume is one volume (ours) or image (floor) the benchmark made.
type volume struct {
	name string
	// id is the CSI volume ID (ours) or the image name (floor).
	id     string
	volCtx map[string]string
}

// snapshot is one snapshot the benchmark made.
type snapshot struct {
	name   string
	id     string
	source *volume
}

// staged is one volume mounted on a staging and a target path.
type staged struct {
	vol            *volume
	stagingPath    string
	targetPath     string
	publishContext map[string]string
	// undo is the floor's record of what to take down.
	undo any
}

// steps are the durations of the parts of one node operation (NodeStage
// and NodePublish for ours, each command for the floor).
type steps map[string]time.Duration

// side is one thing being measured: the CSI driver ("ours", whichever
// driver serves the endpoint) or the floor (the same work done by hand).
type side interface {
	name() string
	createVolume(ctx context.Context, name string) (*volume, error)
	deleteVolume(ctx context.Context, v *volume) error
	createSnapshot(ctx context.Context, v *volume, name string) (*snapshot, error)
	deleteSnapshot(ctx context.Context, s *snapshot) error
	// attach and detach are the untimed set-up around the node phase
	// (ControllerPublish/Unpublish for a driver that needs them).
	// attachTimed says whether attach and detach do work worth a row.
	attachTimed() bool
	attach(ctx context.Context, v *volume) (*staged, error)
	detach(ctx context.Context, st *staged) error
	stagePublish(ctx context.Context, st *staged) (steps, error)
	unpublishUnstage(ctx context.Context, st *staged) (steps, error)
}

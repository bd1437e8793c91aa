package master

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
)

// Volume status values (CubeFS proto/status.go).
const (
	// StatusNormal is a live volume.
	StatusNormal = 0
	// StatusMarkDelete is a volume marked for deletion: purged in the
	// background, or held for the delayed-deletion period (3.3.2+).
	StatusMarkDelete = 1
)

// CreateRequest is what /admin/createVol needs from a driver.
type CreateRequest struct {
	Name        string
	Owner       Owner
	CapacityGiB uint64
	// VolType is 0 (replica) or 1 (erasure coded); nil leaves the
	// master's default and sends nothing (2.x has no such key).
	VolType *int
	// ZoneName is sent when not empty.
	ZoneName string
	// CrossZone is sent when not nil.
	CrossZone *bool
}

// Volume is what /admin/getVol says about a volume.
type Volume struct {
	Name  string
	Owner Owner
	// CapacityGiB is the quota in GiB.
	CapacityGiB uint64
	// Status is StatusNormal or StatusMarkDelete.
	Status int
	// Forbidden is set while a delayed delete is pending (3.3.2+).
	Forbidden bool
	ZoneName  string
	VolType   int
	CrossZone bool
}

// MarkedDeleted reports whether the volume is being deleted.
func (v *Volume) MarkedDeleted() bool { return v.Status == StatusMarkDelete || v.Forbidden }

// VolumeSummary is one entry of /vol/list.
type VolumeSummary struct {
	Name   string
	Status int
	// TotalBytes is the quota in bytes.
	TotalBytes uint64
	UsedBytes  uint64
}

// volView is the part of SimpleVolView we read; the real one has 76 keys.
type volView struct {
	Name      string `json:"Name"`
	Owner     string `json:"Owner"`
	Capacity  uint64 `json:"Capacity"`
	Status    int    `json:"Status"`
	Forbidden bool   `json:"Forbidden"`
	ZoneName  string `json:"ZoneName"`
	VolType   int    `json:"VolType"`
	CrossZone bool   `json:"CrossZone"`
}

type listEntry struct {
	Name      string `json:"Name"`
	Status    int    `json:"Status"`
	TotalSize uint64 `json:"TotalSize"`
	UsedSize  uint64 `json:"UsedSize"`
}

// CreateVol creates a volume. A name that is already taken (by anyone, in
// any state) is ErrDuplicateVol: confirm with GetVol before calling that
// success.
func (c *Client) CreateVol(ctx context.Context, req CreateRequest) error {
	form := url.Values{
		"name":     {req.Name},
		"owner":    {req.Owner.Reveal()},
		"capacity": {strconv.FormatUint(req.CapacityGiB, 10)},
	}
	if req.VolType != nil {
		form.Set("volType", strconv.Itoa(*req.VolType))
	}
	if req.ZoneName != "" {
		form.Set("zoneName", req.ZoneName)
	}
	if req.CrossZone != nil {
		form.Set("crossZone", strconv.FormatBool(*req.CrossZone))
	}
	return c.doString(ctx, request{
		path: "/admin/createVol", form: form, post: true, secrets: req.Owner.secrets(),
	})
}

// GetVol reads a volume. Volumes marked for deletion are still returned
// (Status 1) until the master purges them; a missing one is ErrVolNotFound.
func (c *Client) GetVol(ctx context.Context, name string) (*Volume, error) {
	data, err := c.do(ctx, request{path: "/admin/getVol", form: url.Values{"name": {name}}})
	if err != nil {
		return nil, err
	}
	var v volView
	if err := decodeData(data, '{', &v); err != nil {
		return nil, fmt.Errorf("master /admin/getVol: %w", err)
	}
	if v.Name != name {
		return nil, fmt.Errorf("master /admin/getVol: %w: asked for %q, got %q", ErrBadReply, name, v.Name)
	}
	vol := &Volume{
		Name: v.Name, CapacityGiB: v.Capacity, Status: v.Status, Forbidden: v.Forbidden,
		ZoneName: v.ZoneName, VolType: v.VolType, CrossZone: v.CrossZone,
	}
	// An owner the master accepted always passes; keep whatever it says.
	vol.Owner = Owner{name: v.Owner}
	return vol, nil
}

// DeleteVol asks the master to delete a volume as owner. Depending on the
// release and configuration the volume is purged in the background or held
// for a delayed-deletion period; either way it is marked at once.
func (c *Client) DeleteVol(ctx context.Context, name string, owner Owner) error {
	return c.doString(ctx, request{
		path: "/vol/delete", post: true, secrets: owner.secrets(),
		form: url.Values{"name": {name}, "authKey": {owner.AuthKey()}},
	})
}

// ExpandVol raises the quota to capacityGiB. The master is strict: the
// same or a smaller capacity is ErrExpandNotLarger.
func (c *Client) ExpandVol(ctx context.Context, name string, owner Owner, capacityGiB uint64) error {
	return c.resize(ctx, "/vol/expand", name, owner, capacityGiB)
}

// ShrinkVol lowers the quota to capacityGiB. The same or a larger capacity
// is ErrShrinkNotSmaller; below the used space is ErrBelowUsed.
func (c *Client) ShrinkVol(ctx context.Context, name string, owner Owner, capacityGiB uint64) error {
	return c.resize(ctx, "/vol/shrink", name, owner, capacityGiB)
}

func (c *Client) resize(ctx context.Context, path, name string, owner Owner, capacityGiB uint64) error {
	return c.doString(ctx, request{
		path: path, post: true, secrets: owner.secrets(),
		form: url.Values{
			"name":     {name},
			"authKey":  {owner.AuthKey()},
			"capacity": {strconv.FormatUint(capacityGiB, 10)},
		},
	})
}

// ListVols lists the volumes whose name contains keywords (all when
// empty), marked-deleted ones included.
func (c *Client) ListVols(ctx context.Context, keywords string) ([]VolumeSummary, error) {
	form := url.Values{}
	if keywords != "" {
		form.Set("keywords", keywords)
	}
	data, err := c.do(ctx, request{path: "/vol/list", form: form})
	if err != nil {
		return nil, err
	}
	var entries []listEntry
	if err := decodeData(data, '[', &entries); err != nil {
		return nil, fmt.Errorf("master /vol/list: %w", err)
	}
	out := make([]VolumeSummary, 0, len(entries))
	for _, e := range entries {
		out = append(out, VolumeSummary{
			Name: e.Name, Status: e.Status, TotalBytes: e.TotalSize, UsedBytes: e.UsedSize,
		})
	}
	return out, nil
}

// doString runs a call whose successful data is a message string.
func (c *Client) doString(ctx context.Context, req request) error {
	data, err := c.do(ctx, req)
	if err != nil {
		return err
	}
	var msg string
	if err := decodeData(data, '"', &msg); err != nil {
		return fmt.Errorf("master %s: %w", req.path, err)
	}
	return nil
}

// decodeData decodes a success reply's data, which must start with open
// ('{', '[' or '"'). Unknown object keys are fine: SimpleVolView grows
// with every release.
func decodeData(data json.RawMessage, open byte, out any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != open {
		return fmt.Errorf("%w: data is not a JSON %s", ErrBadReply, kindOf(open))
	}
	if err := json.Unmarshal(trimmed, out); err != nil {
		return fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	return nil
}

func kindOf(open byte) string {
	switch open {
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "string"
}

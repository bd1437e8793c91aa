package rbd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"github.com/tkestack/tkestor-csi/pkg/common/mount"
)

// cliMapper maps through `rbd device map -t <type>` (krbd and rbd-nbd);
// the two differ only in their options.
type cliMapper struct {
	name       string // mapper name recorded in the Mapping
	deviceType string // rbd -t value
	exec       utilexec.Interface
	stateDir   string
	// mapOptions returns the -o options and extra flags for one map.
	mapOptions func(req *MapRequest) (options []string, flags []string)
	// unmapOptions are the -o options of unmap.
	unmapOptions []string
	// deviceSize reads a device's size (replaced in unit tests).
	deviceSize func(device string) (int64, error)
	// pollInterval is how often Refresh looks at the device size.
	pollInterval time.Duration
}

// mappedDevice is one entry of `rbd device list --format json`.
type mappedDevice struct {
	Pool      string `json:"pool"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Snap      string `json:"snap"`
	Device    string `json:"device"`
	Cookie    string `json:"cookie,omitempty"`
}

func (d *mappedDevice) spec() string { return imageSpec(d.Pool, d.Namespace, d.Name) }

// Map implements mapper.
func (c *cliMapper) Map(ctx context.Context, req *MapRequest) (*Mapping, error) {
	if existing, err := c.find(ctx, req.spec(), ""); err != nil {
		return nil, err
	} else if existing != nil {
		klog.FromContext(ctx).V(4).Info("Image already mapped", "device", existing.Device, "image", req.spec())
		return c.mapping(existing, req.ReadOnly), nil
	}

	keyFile, err := writeKeyFile(keyDir(c.stateDir), req.Key)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := os.Remove(keyFile); err != nil {
			klog.FromContext(ctx).Error(err, "Could not remove a key file", "file", keyFile)
		}
	}()

	opts, flags := c.mapOptions(req)
	args := []string{"device", "map", "-t", c.deviceType, req.spec()}
	args = append(args, cephArgs(req, keyFile)...)
	if len(opts) > 0 {
		args = append(args, "--options", strings.Join(opts, ","))
	}
	args = append(args, flags...)
	if req.ReadOnly {
		args = append(args, "--read-only")
	}
	out, err := c.exec.CommandContext(ctx, "rbd", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("%w: rbd device map -t %s %s: %v: %s",
			ErrMapFailed, c.deviceType, req.spec(), err, redact(stderrOf(err, out), req.Key))
	}
	device := lastLine(out)
	if !strings.HasPrefix(device, "/dev/") {
		return nil, fmt.Errorf("%w: rbd device map printed %q, not a device", ErrMapFailed, redact([]byte(device), req.Key))
	}
	klog.FromContext(ctx).V(2).Info("Image mapped", "mapper", c.name, "device", device, "image", req.spec())
	return &Mapping{
		Mapper: c.name, Device: device, Spec: req.spec(), ReadOnly: req.ReadOnly,
		Cookie: cookieOf(flags),
	}, nil
}

// Unmap implements mapper: a device that is gone, or that now maps
// another image, is left alone. Without a recorded device (a stage that
// crashed before it recorded one) the image's mapping is found by spec.
func (c *cliMapper) Unmap(ctx context.Context, m *Mapping) error {
	cur, err := c.find(ctx, m.Spec, m.Device)
	if err != nil || cur == nil {
		return err
	}
	args := []string{"device", "unmap", "-t", c.deviceType}
	if len(c.unmapOptions) > 0 {
		args = append(args, "--options", strings.Join(c.unmapOptions, ","))
	}
	args = append(args, cur.Device)
	if out, err := c.exec.CommandContext(ctx, "rbd", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: rbd device unmap %s: %v: %s", ErrUnmapFailed, cur.Device, err, redact(out, ""))
	}
	klog.FromContext(ctx).V(2).Info("Image unmapped", "mapper", c.name, "device", cur.Device, "image", m.Spec)
	return nil
}

// Check implements mapper.
func (c *cliMapper) Check(ctx context.Context, m *Mapping) error {
	cur, err := c.find(ctx, m.Spec, m.Device)
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("%w: %s is no longer mapped at %s", ErrMappingGone, m.Spec, m.Device)
	}
	return nil
}

// Refresh implements mapper: krbd and rbd-nbd pick up a grown image by
// themselves; wait until the device shows it.
func (c *cliMapper) Refresh(ctx context.Context, m *Mapping, size int64) (int64, error) {
	return waitDeviceSize(ctx, m.Device, size, c.deviceSize, c.pollInterval)
}

// find returns the mapping of spec (at device, when given), or nil.
func (c *cliMapper) find(ctx context.Context, spec, device string) (*mappedDevice, error) {
	out, err := c.exec.CommandContext(ctx, "rbd", "device", "list", "-t", c.deviceType, "--format", "json").Output()
	if err != nil {
		return nil, fmt.Errorf("rbd device list -t %s: %w: %s", c.deviceType, err, redact(stderrOf(err, out), ""))
	}
	var devs []mappedDevice
	if len(strings.TrimSpace(string(out))) > 0 {
		if err := json.Unmarshal(out, &devs); err != nil {
			return nil, fmt.Errorf("parse rbd device list: %w", err)
		}
	}
	for i := range devs {
		d := &devs[i]
		if d.spec() == spec && (d.Snap == "" || d.Snap == "-") && (device == "" || d.Device == device) {
			return d, nil
		}
	}
	return nil, nil
}

func (c *cliMapper) mapping(d *mappedDevice, readOnly bool) *Mapping {
	return &Mapping{
		Mapper: c.name, Device: d.Device, Spec: d.spec(), ReadOnly: readOnly, Cookie: d.Cookie,
	}
}

// waitDeviceSize polls a device's size until it reaches want or ctx ends.
func waitDeviceSize(
	ctx context.Context, device string, want int64,
	size func(string) (int64, error), every time.Duration,
) (int64, error) {
	if size == nil {
		size = mount.DeviceSize
	}
	for {
		got, err := size(device)
		if err != nil {
			return 0, err
		}
		if got >= want {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("%w: %s shows %d bytes, want %d: %w", ErrDeviceNotGrown, device, got, want, ctx.Err())
		case <-time.After(every):
		}
	}
}

// stderrOf returns the stderr captured in an exec error, else out.
func stderrOf(err error, out []byte) []byte {
	var ee *utilexec.ExitErrorWrapper
	if errors.As(err, &ee) && ee.ExitError != nil && len(ee.Stderr) > 0 {
		return ee.Stderr
	}
	return out
}

func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func cookieOf(flags []string) string {
	for i, f := range flags {
		if f == "--cookie" && i+1 < len(flags) {
			return flags[i+1]
		}
	}
	return ""
}

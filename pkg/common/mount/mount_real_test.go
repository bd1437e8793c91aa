package mount

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// loopDevice attaches a sparse file of size bytes to a loop device and
// detaches it when the test ends. It skips unless run as root with losetup.
func loopDevice(t *testing.T, size int64) (device, file string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup not found")
	}
	file = filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	device = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", device).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", device, err, out)
		}
	})
	return device, file
}

func TestRealFormatMountBindResize(t *testing.T) {
	for _, fsType := range []string{FsExt4, FsXFS} {
		t.Run(fsType, func(t *testing.T) {
			testRealFormatMountBindResize(t, fsType)
		})
	}
}

func testRealFormatMountBindResize(t *testing.T, fsType string) {
	const size = 320 << 20 // mkfs.xfs wants at least 300 MiB
	dev, file := loopDevice(t, size)
	m := New()
	dir := t.TempDir()
	staging := filepath.Join(dir, "staging")
	target := filepath.Join(dir, "target")
	blockTarget := filepath.Join(dir, "block", "dev")
	for _, p := range []string{target, blockTarget, staging} {
		p := p
		t.Cleanup(func() { _ = m.CleanupMountPoint(p) })
	}

	// Format a blank device and mount it.
	if err := MakeDir(staging); err != nil {
		t.Fatal(err)
	}
	if err := m.FormatAndMount(context.Background(), dev, staging, FormatOptions{FsType: fsType}); err != nil {
		t.Fatal(err)
	}
	e, err := m.Lookup(staging)
	if err != nil || e == nil || e.Source != dev || e.FsType != fsType {
		t.Fatalf("Lookup(staging) = %+v, %v; want %s %s", e, err, dev, fsType)
	}
	if ok, err := m.MountedFrom(staging, dev); !ok || err != nil {
		t.Fatalf("MountedFrom(staging) = %v, %v", ok, err)
	}
	if err := os.WriteFile(filepath.Join(staging, "hello"), []byte("hi"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Read-only bind: visible, not writable.
	if err := MakeDir(target); err != nil {
		t.Fatal(err)
	}
	if err := m.Bind(staging, target, true, nil); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.MountedFrom(target, dev); !ok {
		t.Error("read-only bind is not a mount of the device")
	}
	if e, _ := m.Lookup(target); e == nil || !e.ReadOnly() {
		t.Errorf("bind entry %+v is not read-only", e)
	}
	err = os.WriteFile(filepath.Join(target, "x"), nil, 0o600)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write through read-only bind = %v, want EROFS", err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "hello")); err != nil || string(b) != "hi" {
		t.Errorf("read through bind = %q, %v", b, err)
	}

	// Raw block: the device node bound onto a file.
	if err := MakeFile(blockTarget); err != nil {
		t.Fatal(err)
	}
	if err := m.Bind(dev, blockTarget, false, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.MountedFrom(blockTarget, dev); !ok || err != nil {
		t.Errorf("MountedFrom(block target) = %v, %v", ok, err)
	}
	if !IsBlockDevice(blockTarget) {
		t.Error("block target is not a block device after bind")
	}

	// Usage and sizes.
	if n, err := DeviceSize(dev); err != nil || n != size {
		t.Errorf("DeviceSize = %d, %v; want %d", n, err, size)
	}
	before, err := FsUsage(staging)
	if err != nil || before.TotalBytes <= 0 || before.TotalInodes <= 0 {
		t.Fatalf("FsUsage = %+v, %v", before, err)
	}

	// Grow the device, then the filesystem, online.
	if err := os.Truncate(file, 2*size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("losetup", "-c", dev).CombinedOutput(); err != nil {
		t.Fatalf("losetup -c: %v: %s", err, out)
	}
	if need, err := m.NeedResize(dev, staging); err != nil || !need {
		t.Errorf("NeedResize = %v, %v; want true", need, err)
	}
	if fsType == FsExt4 && !HasCapSysResource() {
		// The kernel refuses ext4's resize ioctl without CAP_SYS_RESOURCE.
		t.Log("no CAP_SYS_RESOURCE here: online ext4 resize not exercised")
	} else {
		if err := m.ResizeFs(dev, staging); err != nil {
			t.Fatal(err)
		}
		after, err := FsUsage(staging)
		if err != nil || after.TotalBytes < before.TotalBytes+size/2 {
			t.Errorf("after resize total = %d, before %d", after.TotalBytes, before.TotalBytes)
		}
	}

	// Cleanup unmounts and removes; a second cleanup is a no-op.
	for _, p := range []string{blockTarget, target, staging} {
		for i := 0; i < 2; i++ {
			if err := m.CleanupMountPoint(p); err != nil {
				t.Fatalf("CleanupMountPoint(%s) #%d: %v", p, i, err)
			}
		}
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after cleanup", p)
		}
		if e, _ := m.Lookup(p); e != nil {
			t.Errorf("%s still mounted: %+v", p, e)
		}
	}

	// Mounting again finds the filesystem and does not reformat.
	if err := MakeDir(staging); err != nil {
		t.Fatal(err)
	}
	if err := m.FormatAndMount(context.Background(), dev, staging, FormatOptions{FsType: fsType}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(staging, "hello")); err != nil || string(b) != "hi" {
		t.Errorf("data after remount = %q, %v (reformatted?)", b, err)
	}
	other := FsExt4
	if fsType == FsExt4 {
		other = FsXFS
	}
	if err := m.CleanupMountPoint(staging); err != nil {
		t.Fatal(err)
	}
	_ = MakeDir(staging)
	err = m.FormatAndMount(context.Background(), dev, staging, FormatOptions{FsType: other})
	if !errors.Is(err, ErrFilesystemMismatch) {
		t.Errorf("FormatAndMount as %s = %v, want ErrFilesystemMismatch", other, err)
	}
}

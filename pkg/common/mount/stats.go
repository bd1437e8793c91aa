package mount

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Usage is what a mounted filesystem has and uses.
type Usage struct {
	TotalBytes, AvailableBytes, UsedBytes int64
	TotalInodes, FreeInodes, UsedInodes   int64
}

// FsUsage returns statfs numbers of the filesystem mounted at path.
func FsUsage(path string) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return Usage{}, fmt.Errorf("statfs %q: %w", path, err)
	}
	bsize := st.Bsize
	u := Usage{
		TotalBytes:     int64(st.Blocks) * bsize,
		AvailableBytes: int64(st.Bavail) * bsize,
		UsedBytes:      int64(st.Blocks-st.Bfree) * bsize,
		TotalInodes:    int64(st.Files),
		FreeInodes:     int64(st.Ffree),
		UsedInodes:     int64(st.Files - st.Ffree),
	}
	return u, nil
}

// DeviceSize returns the size in bytes of a block device (BLKGETSIZE64).
func DeviceSize(device string) (int64, error) {
	f, err := os.Open(device)
	if err != nil {
		return 0, fmt.Errorf("open %q: %w", device, err)
	}
	defer func() { _ = f.Close() }()
	var size uint64
	//nolint:gosec // the ioctl writes one uint64 into size
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size)))
	if errno != 0 {
		return 0, fmt.Errorf("BLKGETSIZE64 on %q: %w", device, errno)
	}
	return int64(size), nil
}

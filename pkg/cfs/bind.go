package cfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// openSubdir opens root/subdir as an O_PATH directory, one component at a
// time and never following a symbolic link: the volume's content belongs
// to its users, and a link planted where the subdir should be must not
// make the driver bind a host directory into a pod. With create, missing
// components are made (0755). The caller closes the result.
func openSubdir(root, subdir string, create bool) (*os.File, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	for _, name := range strings.Split(subdir, "/") {
		if name == "" || name == "." {
			continue
		}
		next, err := openChild(fd, name, create)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("subdir %q of the volume: %w", subdir, err)
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), root+"/"+subdir), nil
}

// openChild opens one directory entry of dirfd without following links.
func openChild(dirfd int, name string, create bool) (int, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdirat(dirfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("create %q: %w", name, err)
		}
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		return -1, fmt.Errorf("%q: %w (it must be a directory, not a link)", name, err)
	}
	return fd, nil
}

// bindDir bind-mounts the directory dir (an O_PATH handle) onto target,
// read-only when asked: a bind followed by a read-only remount, since the
// kernel ignores MS_RDONLY on the bind itself.
func bindDir(dir *os.File, target string, readOnly bool) error {
	source := "/proc/self/fd/" + strconv.Itoa(int(dir.Fd()))
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", dir.Name(), target, err)
	}
	if !readOnly {
		return nil
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	if err := unix.Mount("", target, "", flags, ""); err != nil {
		_ = unix.Unmount(target, 0)
		return fmt.Errorf("make %s read-only: %w", target, err)
	}
	return nil
}

package rbd

import (
	"fmt"
	"regexp"
	"strings"
)

// mkfs and map options come from StorageClasses and (static) PVs: anyone
// who can write one must not be able to make the node plugin, which runs
// as root, read or write host files through them. Options are therefore
// allow-listed per tool, and no value may name a path.

// optionValue is what an option value may hold: no '/', no spaces, no
// shell or list syntax.
var optionValue = regexp.MustCompile(`^[A-Za-z0-9_.:+-]*$`) //nolint:gochecknoglobals // constant

// mkfsFlags are the mkfs flags users may pass, with whether each takes a
// value. ext4's -d (populate from a directory), -l (bad-blocks file), -J
// (external journal device) and -z (undo file), and xfs's -p (protofile)
// and -c (config file) read or write host files: not listed.
var mkfsFlags = map[string]map[string]bool{ //nolint:gochecknoglobals // constant table
	FsExt4: {
		"-b": true, "-C": true, "-E": true, "-e": true, "-g": true, "-G": true, "-i": true,
		"-I": true, "-L": true, "-m": true, "-N": true, "-o": true, "-O": true, "-r": true,
		"-T": true, "-U": true, "-F": false, "-j": false, "-K": false, "-n": false, "-q": false,
		"-S": false, "-v": false, "-D": false,
	},
	FsXFS: {
		"-b": true, "-d": true, "-i": true, "-l": true, "-L": true, "-m": true, "-n": true,
		"-r": true, "-s": true, "-f": false, "-K": false, "-N": false, "-q": false,
	},
}

// xfsPathSubopts are xfs -d/-l/-r sub-options that name files or devices.
var xfsPathSubopts = map[string]bool{"file": true, "name": true, "logdev": true, "rtdev": true} //nolint:gochecknoglobals,lll // constant

// checkMkfsOptions validates space-separated mkfs options for fsType.
func checkMkfsOptions(fsType, value string) error {
	allowed := mkfsFlags[fsType]
	tokens := strings.Fields(value)
	for i := 0; i < len(tokens); i++ {
		flag, attached := tokens[i], ""
		if len(flag) > 2 && strings.HasPrefix(flag, "-") && !strings.HasPrefix(flag, "--") {
			flag, attached = flag[:2], flag[2:]
		}
		takesValue, ok := allowed[flag]
		if !ok {
			return fmt.Errorf("%w: %s: mkfs.%s option %q is not allowed", ErrInvalidParam, paramMkfsOptions, fsType, tokens[i])
		}
		if !takesValue {
			if attached != "" {
				return fmt.Errorf("%w: %s: %s takes no value", ErrInvalidParam, paramMkfsOptions, flag)
			}
			continue
		}
		if attached == "" {
			if i+1 >= len(tokens) {
				return fmt.Errorf("%w: %s: %s needs a value", ErrInvalidParam, paramMkfsOptions, flag)
			}
			i++
			attached = tokens[i]
		}
		if err := checkMkfsValue(fsType, flag, attached); err != nil {
			return err
		}
	}
	return nil
}

func checkMkfsValue(fsType, flag, value string) error {
	for _, sub := range strings.Split(value, ",") {
		name, v, _ := strings.Cut(sub, "=")
		if !optionValue.MatchString(name) || !optionValue.MatchString(v) {
			return fmt.Errorf("%w: %s: value %q of %s may hold only letters, digits and _.:+-",
				ErrInvalidParam, paramMkfsOptions, value, flag)
		}
		if fsType == FsXFS && xfsPathSubopts[name] {
			return fmt.Errorf("%w: %s: xfs sub-option %q names a file or device", ErrInvalidParam, paramMkfsOptions, name)
		}
	}
	return nil
}

// mapOptionNames are the krbd and rbd-nbd map options users may pass.
var mapOptionNames = map[string]bool{ //nolint:gochecknoglobals // constant table
	// krbd (rbd device map -t krbd -o ...)
	"queue_depth": true, "alloc_size": true, "lock_timeout": true, "notrim": true,
	"abort_on_full": true, "exclusive": true, "lock_on_read": true, "noshare": true,
	"crc": true, "nocrc": true, "read_from_replica": true, "ms_mode": true,
	"osd_request_timeout": true, "rxbounce": true, "compression_hint": true, "udev": true,
	"noudev": true, "ro": true, "read_only": true, "rw": true, "share": true,
	// rbd-nbd
	"try-netlink": true, "reattach-timeout": true, "io-timeout": true, "timeout": true,
	"nbds_max": true, "max_part": true,
}

// unmapOptionNames are the unmap options users may pass.
var unmapOptionNames = map[string]bool{"force": true} //nolint:gochecknoglobals // constant table

// checkMapOptions validates comma-separated name[=value] map options.
func checkMapOptions(key, value string, names map[string]bool) error {
	for _, opt := range strings.Split(value, ",") {
		if opt = strings.TrimSpace(opt); opt == "" {
			continue
		}
		name, v, _ := strings.Cut(opt, "=")
		if !names[name] {
			return fmt.Errorf("%w: %s: option %q is not allowed", ErrInvalidParam, key, name)
		}
		if !optionValue.MatchString(v) {
			return fmt.Errorf("%w: %s: value of %q may hold only letters, digits and _.:+-", ErrInvalidParam, key, name)
		}
	}
	return nil
}

// checkOptions validates the mkfs, map and unmap options for fsType.
func checkOptions(fsType, mkfs, mapOpts, unmapOpts string) error {
	if err := checkMkfsOptions(fsType, mkfs); err != nil {
		return err
	}
	if err := checkMapOptions(paramMapOptions, mapOpts, mapOptionNames); err != nil {
		return err
	}
	return checkMapOptions(paramUnmapOptions, unmapOpts, unmapOptionNames)
}

package cfs

import (
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

const (
	gib = int64(1) << 30
	// defaultCapacityGiB is the quota of a volume created without a size.
	defaultCapacityGiB = 1
)

// capacityGiB is the quota to create or expand to: required_bytes rounded
// up to whole GiB (the master counts in GiB), or the default when no size
// is asked for; it must not pass limit_bytes.
func capacityGiB(r *csi.CapacityRange) (uint64, error) {
	required, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	if required < 0 || limit < 0 {
		return 0, fmt.Errorf("%w: capacity range must not be negative", ErrInvalidArgument)
	}
	if limit > 0 && required > limit {
		return 0, fmt.Errorf("%w: required_bytes %d is above limit_bytes %d", ErrInvalidArgument, required, limit)
	}
	size := uint64(defaultCapacityGiB)
	if required > 0 {
		size = uint64((required + gib - 1) / gib)
	}
	if limit > 0 && int64(size)*gib > limit {
		if required > 0 || limit < gib {
			return 0, fmt.Errorf("%w: %d GiB (whole GiB, the master's unit) exceeds limit_bytes %d",
				ErrOutOfRange, size, limit)
		}
		size = uint64(limit / gib)
	}
	return size, nil
}

// fitsRange reports whether an existing quota of size GiB satisfies r.
func fitsRange(size uint64, r *csi.CapacityRange) bool {
	bytes := int64(size) * gib
	if bytes < r.GetRequiredBytes() {
		return false
	}
	return r.GetLimitBytes() == 0 || bytes <= r.GetLimitBytes()
}

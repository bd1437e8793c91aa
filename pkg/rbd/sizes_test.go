package rbd

import (
	"errors"
	"math"
	"testing"
)

func TestPickSizeRefusesHugeSizes(t *testing.T) {
	t.Parallel()
	for _, required := range []int64{math.MaxInt64, math.MaxInt64 - 1, maxVolumeBytes + 1} {
		if _, err := pickSize(required, 0, 0); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("pickSize(%d) = %v, want ErrOutOfRange", required, err)
		}
	}
	size, err := pickSize(maxVolumeBytes, 0, 0)
	if err != nil || size != uint64(maxVolumeBytes) {
		t.Fatalf("pickSize(max) = %d, %v; want %d", size, err, maxVolumeBytes)
	}
}

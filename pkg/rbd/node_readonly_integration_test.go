package rbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// TestIntegrationReadOnlyModes stages volumes with read-only access modes:
// the mapping itself is read-only (losetup -r), so neither the filesystem
// nor the raw device accepts a write, and a blank image is never
// formatted read-only.
func TestIntegrationReadOnlyModes(t *testing.T) {
	env := needCeph(t)
	rox := csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
	ctx := context.Background()

	t.Run("blank filesystem", func(t *testing.T) {
		v := newITVolume(t, env, "it-ro-blank", "ext4", false, 64<<20)
		v.mode = rox
		start := time.Now()
		if err := v.stage(ctx); errorCode(err) != codes.FailedPrecondition {
			t.Fatalf("read-only stage of a blank image = %v, want FailedPrecondition", err)
		}
		t.Logf("refused stage took %v", time.Since(start))
		v.assertNoLeftovers(t)
	})

	t.Run("filesystem", func(t *testing.T) {
		v := newITVolume(t, env, "it-ro-fs", "ext4", false, 64<<20)
		data := make([]byte, 4096)
		_, _ = rand.Read(data)
		twice(t, "stage rw", v.stage)
		twice(t, "publish rw", v.publish)
		v.write(t, data)
		twice(t, "unpublish", v.unpublish)
		twice(t, "unstage", v.unstage)

		// A read-write stage that crashed after mapping leaves a writable
		// loop device: the read-only stage must not reuse it.
		v.crashAt(t, FPStageAfterMap, v.stage)
		v.mode = rox
		twice(t, "stage ro", v.stage)
		if !loopReadOnly(v.deviceOf(t)) {
			t.Errorf("read-only stage uses writable %s", v.deviceOf(t))
		}
		twice(t, "publish ro", v.publish)
		if got := v.read(t, len(data)); !bytes.Equal(got, data) {
			t.Error("read-only publish shows other data")
		}
		err := os.WriteFile(filepath.Join(v.target, "new"), nil, 0o600)
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("write on a read-only volume = %v, want EROFS", err)
		}
		twice(t, "unpublish", v.unpublish)
		twice(t, "unstage", v.unstage)
		v.assertNoLeftovers(t)
	})

	t.Run("block", func(t *testing.T) {
		v := newITVolume(t, env, "it-ro-block", "", true, 64<<20)
		v.mode = rox
		twice(t, "stage", v.stage)
		twice(t, "publish", v.publish)
		f, err := os.OpenFile(v.target, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.Write(make([]byte, 4096))
			_ = f.Close()
		}
		if err == nil {
			t.Error("write to a read-only block volume succeeded")
		}
		twice(t, "unpublish", v.unpublish)
		twice(t, "unstage", v.unstage)
		v.assertNoLeftovers(t)
	})
}

package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// TestTwoControllersSameNames runs two controller processes (two replicas
// without leader election, the worst case) and sends each CreateVolume name
// to both at once: exactly one image per name must result, and both must
// answer with the same volume ID.
func TestTwoControllersSameNames(t *testing.T) {
	env := needCeph(t)
	r := &crashRun{t: t, env: env, dir: t.TempDir()}
	before := env.inventory(t)
	a, b := r.controller("replica-a", ""), r.controller("replica-b", "")
	const names = 20
	ids := make([][2]string, names)

	var wg sync.WaitGroup
	stamp := time.Now().UnixNano()
	for i := 0; i < names; i++ {
		req := r.createReq(fmt.Sprintf("race-%d-%d", stamp, i), nil)
		for j, p := range []*plugin{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := retryErr(func(ctx context.Context) (*csi.CreateVolumeResponse, error) {
					return p.client.Controller.CreateVolume(ctx, req)
				})
				if err != nil {
					t.Errorf("replica %d, name %d: %v", j, i, err)
					return
				}
				ids[i][j] = resp.GetVolume().GetVolumeId()
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	for i, pair := range ids {
		if pair[0] != pair[1] {
			t.Errorf("name %d: replicas answered different volumes %s and %s", i, pair[0], pair[1])
		}
	}
	assertImageCount(t, env, before, names)
	for _, pair := range ids {
		deleteVolume(t, a.client, r, pair[0])
	}
	assertSameInventory(t, env, before)
}

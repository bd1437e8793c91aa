package rbd

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
)

// crashed is what a simulated crash panics with.
type crashed struct{ point string }

// crashAt makes the node server "die" at point: the call stops there with
// no undo (a panic skips the error-path undo, as SIGKILL would), and a new
// node server over the same state directory takes its place.
func (v *itVolume) crashAt(t *testing.T, point string, call func(context.Context) error) {
	t.Helper()
	v.ns.hit = func(p string) {
		if p == point {
			panic(crashed{p})
		}
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(crashed); !ok {
					panic(r)
				}
			}
		}()
		err := call(context.Background())
		t.Fatalf("call returned (%v) instead of crashing at %s", err, point)
	}()
	v.restart(t)
}

// TestIntegrationNodeCrashStates stops NodeStage and NodeUnstage at every
// step boundary without undo, restarts the node server, and checks that
// both a retry of the call and the opposite call converge: the retried
// stage serves the same data, and after unstage nothing is left.
func TestIntegrationNodeCrashStates(t *testing.T) {
	env := needCeph(t)
	for _, point := range NodeStageFailpoints() {
		for _, then := range []string{"retry", "unstage"} {
			t.Run(point+"/"+then, func(t *testing.T) {
				v := newITVolume(t, env, "it-crash", "ext4", false, 64<<20)
				if point != FPStageAfterRecord {
					v.prime(t) // a filesystem with data, so a retry must not reformat
				}
				v.crashAt(t, point, v.stage)
				if then == "retry" {
					twice(t, "stage", v.stage)
					v.checkData(t)
				}
				twice(t, "unstage", v.unstage)
				v.assertNoLeftovers(t)
			})
		}
	}
	for _, point := range NodeUnstageFailpoints() {
		for _, then := range []string{"retry", "stage"} {
			t.Run(point+"/"+then, func(t *testing.T) {
				v := newITVolume(t, env, "it-crash", "ext4", false, 64<<20)
				v.prime(t)
				twice(t, "stage", v.stage)
				v.crashAt(t, point, v.unstage)
				if then == "stage" {
					twice(t, "stage", v.stage)
					v.checkData(t)
				}
				twice(t, "unstage", v.unstage)
				v.assertNoLeftovers(t)
			})
		}
	}
}

// prime writes known bytes through a full stage/publish cycle.
func (v *itVolume) prime(t *testing.T) {
	t.Helper()
	v.data = make([]byte, 64<<10)
	_, _ = rand.Read(v.data)
	twice(t, "stage", v.stage)
	twice(t, "publish", v.publish)
	v.write(t, v.data)
	twice(t, "unpublish", v.unpublish)
	twice(t, "unstage", v.unstage)
	v.assertNoLeftovers(t)
}

// checkData publishes the staged volume and compares the primed bytes.
func (v *itVolume) checkData(t *testing.T) {
	t.Helper()
	twice(t, "publish", v.publish)
	if v.data != nil && !bytes.Equal(v.read(t, len(v.data)), v.data) {
		t.Fatal("data differs after the crash")
	}
	twice(t, "unpublish", v.unpublish)
}

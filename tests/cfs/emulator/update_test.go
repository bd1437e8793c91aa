package emulator

import (
	"strings"
	"testing"
	"time"
)

// TestExpandShrink replays the recorded expand/shrink requests: strictly
// larger or smaller, and the size check before the key check.
func TestExpandShrink(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{})
	createVol(t, srv, "pvc-test1", 10)

	tests := []struct {
		name  string
		query string
		code  int
		msg   string
	}{
		{"expand", "/vol/expand?name=pvc-test1&capacity=20&authKey=" + testKey, 0, MsgSuccess},
		{"expand same size", "/vol/expand?name=pvc-test1&capacity=20&authKey=" + testKey, 2, "expand capacity[20] should be larger than the old capacity[20]"},
		{"same size wrong key", "/vol/expand?name=pvc-test1&capacity=20&authKey=" + wrongKey, 2, "expand capacity[20] should be larger than the old capacity[20]"},
		{"wrong key", "/vol/expand?name=pvc-test1&capacity=30&authKey=" + wrongKey, 34, MsgAuthKeyMismatch},
		{"missing volume", "/vol/expand?name=pvc-nope&capacity=30&authKey=" + testKey, 7, MsgVolNotExists},
		{"no key", "/vol/expand?name=pvc-test1&capacity=30", 2, "[operate_util.go 225] parameter authKey not found"},
		{"no capacity", "/vol/expand?name=pvc-test1&authKey=" + testKey, 2, "expand capacity[0] should be larger than the old capacity[20]"},
		{"shrink", "/vol/shrink?name=pvc-test1&capacity=15&authKey=" + testKey, 0, MsgSuccess},
		{"shrink same size", "/vol/shrink?name=pvc-test1&capacity=15&authKey=" + testKey, 2, "shrink capacity[15] should be less than the old capacity[15]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantEnv(t, api(t, srv, tc.query), tc.code, tc.msg)
		})
	}
	if got := dataMap(t, api(t, srv, "/admin/getVol?name=pvc-test1"))["Capacity"]; got != float64(15) {
		t.Errorf("Capacity = %v, want 15", got)
	}
}

// TestExpandReplyData: the success data keeps its trailing newline.
func TestExpandReplyData(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{})
	createVol(t, srv, "pvc-test1", 10)
	env := api(t, srv, "/vol/expand?name=pvc-test1&capacity=20&authKey="+testKey)
	if got := dataString(t, env); got != "update vol[pvc-test1] successfully\n" {
		t.Errorf("data = %q", got)
	}
}

// TestShrinkBelowUsed: the 101%-of-used rule is a wrapped error, code 1.
func TestShrinkBelowUsed(t *testing.T) {
	t.Parallel()
	e, srv := start(t, Options{ClusterName: "cfs-local"})
	createVol(t, srv, "pvc-a", 10)
	if err := e.SetUsedBytes("pvc-a", 5<<30); err != nil {
		t.Fatal(err)
	}
	env := api(t, srv, "/vol/shrink?name=pvc-a&capacity=5&authKey="+testKey)
	wantEnv(t, env, CodeInternal, "action[updateVol], clusterID[cfs-local] name:pvc-a, "+
		"err:capacity[5] has to be 1 percent larger than the used space[5] ")
}

// TestDeleteDirect follows the recorded direct-delete sequence: Status 1,
// "no vol policy" on a repeat, then gone after the purge.
func TestDeleteDirect(t *testing.T) {
	t.Parallel()
	for _, n := range []Numbering{Numbering35, Numbering332, Numbering2x} {
		t.Run(string(n), func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			_, srv := start(t, Options{Numbering: n, Now: clock.Now})
			createVol(t, srv, "pvc-test1", 10)
			del := "/vol/delete?name=pvc-test1&authKey="

			wantEnv(t, api(t, srv, del+wrongKey), codeSets[n].authKeyMismatch, MsgAuthKeyMismatch)
			wantEnv(t, api(t, srv, "/vol/delete?name=pvc-nope&authKey="+testKey), 7, MsgVolNotExists)
			wantEnv(t, api(t, srv, "/vol/delete?name=pvc-test1"), 2, "[operate_util.go 225] parameter authKey not found")

			env := api(t, srv, del+testKey)
			if got := dataString(t, env); !strings.HasPrefix(got, "delete vol[pvc-test1] successfully,from[127.0.0.1:") {
				t.Errorf("delete data = %q", got)
			}
			if got := dataMap(t, api(t, srv, "/admin/getVol?name=pvc-test1"))["Status"]; got != float64(1) {
				t.Errorf("Status after delete = %v, want 1", got)
			}
			wantEnv(t, api(t, srv, del+testKey), codeSets[n].noVolPolicy, MsgNoVolPolicy)
			wantEnv(t, api(t, srv, "/admin/createVol?name=pvc-test1&capacity=10&owner=csiuser"), 1, "")

			clock.Advance(defaultPurgeAfter)
			wantEnv(t, api(t, srv, "/admin/getVol?name=pvc-test1"), 7, MsgVolNotExists)
			wantEnv(t, api(t, srv, del+testKey), 7, MsgVolNotExists)
			createVol(t, srv, "pvc-test1", 10)
		})
	}
}

// TestDeleteDelayed follows the recorded delayed-delete sequence: forbid,
// code 8 on a repeat, the name stays taken, undelete works, and the volume
// goes after DeleteDelay or CompleteDeletions.
func TestDeleteDelayed(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	e, srv := start(t, Options{Delete: DeleteDelayed, ClusterName: "cfs-local", Now: clock.Now})
	createVol(t, srv, "pvc-form", 5)
	del := "/vol/delete?name=pvc-form&authKey=" + testKey

	wantEnv(t, api(t, srv, "/vol/delete?name=pvc-form&authKey="+wrongKey), 34, MsgAuthKeyMismatch)
	if got := dataString(t, api(t, srv, del)); !strings.HasPrefix(got, "delete vol: forbid vol[pvc-form] successfully,from[") {
		t.Errorf("delete data = %q", got)
	}
	v := dataMap(t, api(t, srv, "/admin/getVol?name=pvc-form"))
	wantExec := clock.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339Nano)
	if v["Status"] != float64(1) || v["Forbidden"] != true || v["DeleteExecTime"] != wantExec {
		t.Errorf("after delete: Status %v Forbidden %v DeleteExecTime %v, want 1 true %s",
			v["Status"], v["Forbidden"], v["DeleteExecTime"], wantExec)
	}
	wantEnv(t, api(t, srv, del), 8, MsgVolHasDeleted)
	wantEnv(t, api(t, srv, "/admin/createVol?name=pvc-form&capacity=5&owner=csiuser"), 1, "")

	env := api(t, srv, del+"&delete=false")
	if got := dataString(t, env); !strings.HasPrefix(got, "undelete vol: unforbid vol[pvc-form] successfully,from[") {
		t.Errorf("undelete data = %q", got)
	}
	wantEnv(t, api(t, srv, del+"&delete=false"), 9, "")

	wantEnv(t, api(t, srv, del), 0, MsgSuccess)
	clock.Advance(47 * time.Hour)
	wantEnv(t, api(t, srv, "/admin/getVol?name=pvc-form"), 0, MsgSuccess)
	if names, err := e.CompleteDeletions(); err != nil || len(names) != 1 {
		t.Fatalf("CompleteDeletions = %v, %v", names, err)
	}
	wantEnv(t, api(t, srv, "/admin/getVol?name=pvc-form"), 7, MsgVolNotExists)
}

// TestResizeMarkedVolume: expanding a marked volume fails inside updateVol
// with a wrapped "vol not exists" (code 1), not code 7.
func TestResizeMarkedVolume(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{ClusterName: "cfs-local"})
	createVol(t, srv, "pvc-a", 10)
	wantEnv(t, api(t, srv, "/vol/delete?name=pvc-a&authKey="+testKey), 0, MsgSuccess)
	wantEnv(t, api(t, srv, "/vol/expand?name=pvc-a&capacity=20&authKey="+testKey), 1,
		"action[updateVol], clusterID[cfs-local] name:pvc-a, err:vol not exists ")
}

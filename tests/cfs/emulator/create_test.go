package emulator

import (
	"net/http"
	"strings"
	"testing"
)

// TestCreateVol replays the createVol requests recorded from a real 3.5.3
// master and expects the same code and message.
func TestCreateVol(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{ClusterName: "cfs-local", DataNodes: 1})
	dup := "action[createVol], clusterID[cfs-local] name:pvc-test1, err:action[doCreateVol], " +
		"clusterID[cfs-local] name:pvc-test1, err:duplicate vol  "

	tests := []struct {
		name  string
		query string
		code  int
		msg   string
	}{
		{"ok", "name=pvc-test1&capacity=10&owner=csiuser&replicaNum=1", 0, MsgSuccess},
		{"same again", "name=pvc-test1&capacity=10&owner=csiuser&replicaNum=1", 1, dup},
		{"other owner and size", "name=pvc-test1&capacity=20&owner=otheruser&replicaNum=1", 1, dup},
		{"owner with dash", "name=pvc-test2&capacity=10&owner=csi-user&replicaNum=1", 2, "owner can only be number and letters"},
		{"name starts with dash", "name=-bad&capacity=10&owner=csiuser&replicaNum=1", 2, "name can only be number and letters"},
		{"name too short", "name=ab&capacity=10&owner=csiuser&replicaNum=1", 2, "name can only be number and letters"},
		{"no capacity", "name=pvc-test2&owner=csiuser&replicaNum=1", 2, "vol capacity can't be zero, 0"},
		{"no owner", "name=pvc-test2&capacity=10&replicaNum=1", 2, "[operate_util.go 225] parameter owner not found"},
		{"no name", "capacity=10&owner=csiuser", 2, "[operate_util.go 225] parameter name not found"},
		{"four replicas", "name=pvc-r4&capacity=10&owner=csiuser&replicaNum=4", 2, "hot vol's replicaNum should be 1 to 3, received replicaNum is[4]"},
		{"small dp", "name=pvc-dp5&capacity=10&owner=csiuser&replicaNum=1&dpSize=5", 2, "datapartition size must be bigger than 10 G"},
		{"followerRead off", "name=pvc-fr&capacity=10&owner=csiuser&replicaNum=1&followerRead=false", 2, "vol with 1 ro 2 replia should enable followerRead"},
		{"unknown zone", "name=pvc-zone&capacity=10&owner=csiuser&replicaNum=1&zoneName=nozone", 2, "assigned zone name not exist: [nozone]"},
		{"cold volume", "name=pvc-cold&capacity=10&owner=csiuser&replicaNum=1&volType=1", 2, "cluster has no resoure to support volStorageClass(BlobStore)"},
		{"every option", "name=pvc-opts&capacity=10&owner=csiuser&replicaNum=1&mpCount=1&dpCount=3&dpSize=11&followerRead=true&crossZone=false&zoneName=&enableToken=false&volType=0&description=csi", 0, MsgSuccess},
		{"bad capacity", "name=pvc-x&capacity=ten&owner=csiuser", 2, "[operate_util.go 229] parameter capacity not match"},
	}
	for _, tc := range tests {
		// Not parallel: the cases build on each other (duplicates).
		t.Run(tc.name, func(t *testing.T) {
			wantEnv(t, api(t, srv, "/admin/createVol?"+tc.query), tc.code, tc.msg)
		})
	}
}

// TestCreateVolReplies checks the success data text, form POSTs and the
// owner being created implicitly.
func TestCreateVolReplies(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{})

	env := api(t, srv, "/admin/createVol?name=pvc-test1&capacity=10&owner=csiuser")
	if got, want := dataString(t, env), "create vol[pvc-test1] successfully, has allocate [3] data partitions"; got != want {
		t.Errorf("data = %q, want %q", got, want)
	}

	status, body := send(t, srv, http.MethodPost, "/admin/createVol?name=pvc-form&capacity=5&owner=csiuser&replicaNum=1")
	if status != http.StatusOK || !strings.Contains(body, `"code":0`) {
		t.Errorf("form POST createVol: HTTP %d %s", status, body)
	}

	user := dataMap(t, api(t, srv, "/user/info?user=csiuser"))
	vols := user["policy"].(map[string]any)["own_vols"].([]any)
	if len(vols) != 2 || user["user_type"].(float64) != 3 {
		t.Errorf("auto-created user = %v, want type 3 owning 2 volumes", user)
	}
}

// TestCreateVolTooFewDataNodes: replicaNum above the datanode count fails
// with code 1 and leaves a marked half-made volume until it is purged.
func TestCreateVolTooFewDataNodes(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	_, srv := start(t, Options{ClusterName: "cfs-local", DataNodes: 1, Now: clock.Now})

	env := api(t, srv, "/admin/createVol?name=pvc-test2&capacity=10&owner=csiuser")
	wantEnv(t, env, CodeInternal, "")
	if !strings.Contains(env.Msg, "initDataPartitions failed, createdCount(0), less than minLimit(3)") {
		t.Errorf("msg = %q", env.Msg)
	}
	if got := dataMap(t, api(t, srv, "/admin/getVol?name=pvc-test2"))["Status"]; got != float64(StatusMarkDelete) {
		t.Errorf("half-made volume Status = %v, want 1", got)
	}

	clock.Advance(defaultPurgeAfter)
	wantEnv(t, api(t, srv, "/admin/getVol?name=pvc-test2"), CodeVolNotExists, MsgVolNotExists)
}

// TestCreateVolKeysByRelease: the data-partition size key and volType
// depend on the emulated release; unknown keys are ignored.
func TestCreateVolKeysByRelease(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		numbering Numbering
		query     string
		code      int
	}{
		{"3.5 reads dpSize", Numbering35, "dpSize=5", 2},
		{"3.5 ignores size", Numbering35, "size=5", 0},
		{"3.3.2 reads size", Numbering332, "size=5", 2},
		{"2.x ignores dpSize", Numbering2x, "dpSize=5", 0},
		{"2.x ignores volType", Numbering2x, "volType=1", 0},
		{"3.5 rejects volType 1", Numbering35, "volType=1", 2},
		{"enableToken ignored", Numbering35, "enableToken=true", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, srv := start(t, Options{Numbering: tc.numbering})
			env := api(t, srv, "/admin/createVol?name=pvc-k&capacity=1&owner=csiuser&"+tc.query)
			wantEnv(t, env, tc.code, "")
		})
	}
}

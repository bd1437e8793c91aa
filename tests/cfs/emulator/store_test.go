package emulator

import (
	"os"
	"path/filepath"
	"testing"
)

// TestStateFileShared: two emulators on one state file act as one master,
// and a restarted one finds the volumes.
func TestStateFileShared(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state.json")
	_, a := start(t, Options{StateFile: state})
	_, b := start(t, Options{StateFile: state})

	createVol(t, a, "pvc-shared", 10)
	wantEnv(t, api(t, b, "/admin/getVol?name=pvc-shared"), 0, MsgSuccess)
	wantEnv(t, api(t, b, "/admin/createVol?name=pvc-shared&capacity=10&owner=csiuser"), 1, "")
	wantEnv(t, api(t, b, "/vol/expand?name=pvc-shared&capacity=20&authKey="+testKey), 0, MsgSuccess)

	_, restarted := start(t, Options{StateFile: state})
	v := dataMap(t, api(t, restarted, "/admin/getVol?name=pvc-shared"))
	if v["Capacity"] != float64(20) || v["ID"] != float64(1) {
		t.Errorf("after restart: %v", v)
	}
	createVol(t, restarted, "pvc-next", 1)
	if got := dataMap(t, api(t, a, "/admin/getVol?name=pvc-next"))["ID"]; got != float64(2) {
		t.Errorf("next ID = %v, want 2 (IDs shared through the file)", got)
	}
}

// TestBrokenStateFile: a corrupt file is an error, not a silent reset.
func TestBrokenStateFile(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(state, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, srv := start(t, Options{StateFile: state})
	if status, _ := send(t, srv, "GET", "/admin/getCluster"); status != 500 {
		t.Errorf("HTTP %d, want 500", status)
	}
}

// TestDataRoot: used space is measured under DataRoot/<vol>, and a purge
// removes that directory.
func TestDataRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	e, srv := start(t, Options{DataRoot: root})
	createVol(t, srv, "pvc-data", 1)
	dir := filepath.Join(root, "pvc-data")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "f"), make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := dataMap(t, api(t, srv, "/client/volStat?name=pvc-data"))["UsedSize"]; got != float64(4096) {
		t.Errorf("UsedSize = %v, want 4096", got)
	}

	wantEnv(t, api(t, srv, "/vol/delete?name=pvc-data&authKey="+testKey), 0, MsgSuccess)
	if _, err := e.CompleteDeletions(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("data directory after purge: %v, want gone", err)
	}
}

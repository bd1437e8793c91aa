package rwo

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cfsHolderCmd runs `tkestor-csi holder ACTION --driver=cfs` for vol and
// returns its exit code, stdout and stderr.
func (c *cfsCluster) holderCmd(t *testing.T, volumeID, action string, args ...string) (int, string, string) {
	t.Helper()
	secrets := filepath.Join(c.work, "holder-secret")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "owner"), []byte(cfsOwner), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"holder", action, "--driver=cfs", "--volume-id=" + volumeID,
		"--secret-dir=" + secrets, "--cfs-client=" + c.bins.standin}, args...)
	cmd := exec.Command(c.bins.plugin, args...)
	cmd.Env = append(os.Environ(), "CFS_STANDIN_DATA_ROOT="+c.dataRoot, "CFS_STANDIN_RETRY_UNIT=10ms",
		"TMPDIR="+c.work)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// The operator's command: show names the holder; release refuses a live
// lease without --force; a forced release makes the holder fence itself
// and frees the volume; a dead holder's lease is released after one lease
// of watching.
func TestCFSHolderCommand(t *testing.T) {
	c := newCFSCluster(t)
	a, b := c.node("node-a"), c.node("node-b")
	vol := c.volume("pvc-rwo-holder")
	pa, pb := c.paths("node-a", "holder"), c.paths("node-b", "holder")
	cfsMust(t, "stage on a", cfsStage(a, vol, pa.staging, cfsRWO))

	code, out, errOut := c.holderCmd(t, vol.GetVolumeId(), "show")
	t.Logf("holder show:\n%s", out)
	if code != 0 || !strings.Contains(out, "node-a") || !strings.Contains(out, "alive") {
		t.Fatalf("show: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = c.holderCmd(t, vol.GetVolumeId(), "release")
	if code != 3 {
		t.Fatalf("release of a live lease: exit %d, want 3 (refused)\n%s", code, errOut)
	}
	t.Logf("release without --force: exit %d: %s", code, strings.TrimSpace(errOut))

	code, out, errOut = c.holderCmd(t, vol.GetVolumeId(), "release", "--force")
	if code != 0 {
		t.Fatalf("forced release: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("release --force:\n%s", out)
	fenced, ok := cfsEventually(cfsLease, 20*time.Millisecond, func() bool { return !cfsIsMount(pa.staging) })
	if !ok {
		t.Fatal("node a did not fence itself after the forced release")
	}
	t.Logf("node a fenced itself %s after the release", fenced.Round(time.Millisecond))
	cfsMust(t, "stage on b", cfsStage(b, vol, pb.staging, cfsRWO))

	code, out, _ = c.holderCmd(t, vol.GetVolumeId(), "show", "--output=json")
	var rep struct {
		Holders []struct {
			Node  string `json:"node"`
			Alive bool   `json:"alive"`
		} `json:"holders"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Holders) != 1 ||
		rep.Holders[0].Node != "node-b" || !rep.Holders[0].Alive {
		t.Fatalf("show --output=json: exit %d\n%s", code, out)
	}

	// Node b dies; without --force the release watches the lease first.
	clients := b.clientPIDs(vol.GetVolumeId())
	b.kill()
	cfsSignalAll(t, clients, unix.SIGKILL)
	time.Sleep(cfsLease + time.Second) // its renewal time now looks old
	start := time.Now()
	code, out, errOut = c.holderCmd(t, vol.GetVolumeId(), "release")
	if code != 0 {
		t.Fatalf("release of a dead holder: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("release of the dead node b took %s:\n%s%s", time.Since(start).Round(time.Millisecond), errOut, out)
	cfsMust(t, "stage on a after the release", cfsStage(a, vol, pa.staging, cfsRWO))
	cfsMust(t, "unstage on a", cfsUnstage(a, vol, pa.staging))
}

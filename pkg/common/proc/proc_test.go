package proc

import (
	"os/exec"
	"slices"
	"testing"
)

func TestFindSeesAChildByItsArguments(t *testing.T) {
	t.Parallel()
	marker := t.TempDir() + "/proc-find-marker"
	// The marker is the shell's $0; "; :" keeps the shell from exec'ing sleep.
	cmd := exec.Command("sh", "-c", "sleep 30; :", marker)
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	pids := Find(func(args []string) bool { return slices.Contains(args, marker) })
	if !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Fatalf("Find = %v, want [%d]", pids, cmd.Process.Pid)
	}
	if got := Find(func(args []string) bool { return slices.Contains(args, marker+"-absent") }); got != nil {
		t.Fatalf("Find of an absent argument = %v", got)
	}
}

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestMain gives the tests a pool of their own, so that their checks for
// leaked images and objects see only what they made, even when something
// else uses the cluster's shared pools at the same time.
func TestMain(m *testing.M) {
	conf := os.Getenv("CEPH_CONF")
	if conf == "" {
		os.Exit(m.Run()) // every test skips
	}
	pool := fmt.Sprintf("e2e-%d", time.Now().UnixNano()%1_000_000)
	if err := ceph(conf, "osd", "pool", "create", pool, "8"); err == nil {
		err = rbdInit(conf, pool)
		if err == nil {
			os.Setenv("TKESTOR_POOL", pool)
		}
	} else {
		fmt.Fprintln(os.Stderr, "e2e: no private pool, using", os.Getenv("TKESTOR_POOL"), err)
		pool = ""
	}
	code := m.Run()
	if pool != "" {
		_ = ceph(conf, "osd", "pool", "delete", pool, pool, "--yes-i-really-really-mean-it")
	}
	os.Exit(code)
}

func ceph(conf string, args ...string) error {
	out, err := exec.Command("ceph", append([]string{"-c", conf}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ceph %v: %v: %s", args, err, out)
	}
	return nil
}

func rbdInit(conf, pool string) error {
	out, err := exec.Command("rbd", "-c", conf, "pool", "init", pool).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rbd pool init %s: %v: %s", pool, err, out)
	}
	return nil
}

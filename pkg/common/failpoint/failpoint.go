// Package failpoint lets crash tests stop the plugin at a named step of a
// multi-step operation, so they can kill it there with SIGKILL and prove
// that a retry converges.
//
// Points are armed only through the TKESTOR_FAILPOINTS environment
// variable, a comma-separated list of names; when a process reaches an
// armed point it prints "FAILPOINT <name> reached" on stderr and blocks
// until it is killed. Unset, Hit costs one map lookup.
package failpoint

import (
	"fmt"
	"os"
	"strings"
)

// EnvVar names the environment variable that arms failpoints.
const EnvVar = "TKESTOR_FAILPOINTS"

// armed is read once at start; tests arm points by starting a new process.
var armed = parse(os.Getenv(EnvVar)) //nolint:gochecknoglobals // fixed for the process lifetime

func parse(s string) map[string]bool {
	set := make(map[string]bool)
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			set[name] = true
		}
	}
	return set
}

// Hit blocks forever when name is armed; the crash test kills the process.
func Hit(name string) {
	if !armed[name] {
		return
	}
	fmt.Fprintf(os.Stderr, "FAILPOINT %s reached\n", name)
	select {}
}

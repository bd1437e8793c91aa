package cfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/common/proc"

	"golang.org/x/sys/unix"

	"github.com/tkestack/tkestor-csi/pkg/cfs/master"
)

// Time limits of the FUSE client. The real client gives up on unreachable
// masters only after 75 s, so a mount may take that long to fail.
const (
	clientMountTimeout = 100 * time.Second
	clientExitGrace    = 10 * time.Second
	clientKillWait     = 3 * time.Second
	clientPollInterval = 50 * time.Millisecond
)

// fuseClient starts and ends the FUSE client of one staging.
type fuseClient interface {
	// Mount runs "cfs-client -c config" and returns once the client has
	// mounted (exit 0) or failed; the failure names the client's reason.
	Mount(ctx context.Context, config string) error
	// Stop waits up to grace for every client process of config to exit
	// (an unmount ends it), then kills what is left with SIGKILL.
	Stop(ctx context.Context, config string, grace time.Duration) error
}

// execClient runs the cfs-client binary. Its daemon outlives the call;
// it is found again by the config path on its command line.
type execClient struct {
	path string
	// env, when set, replaces the environment the client inherits (tests).
	env []string
}

// Mount runs the client in its daemon mode, with a deadline. Its output
// goes to a 0600 file that is removed at once: the real client's failure
// line repeats its whole environment, so only the reason is kept.
func (c *execClient) Mount(ctx context.Context, config string) error {
	ctx, cancel := context.WithTimeout(ctx, clientMountTimeout)
	defer cancel()
	out, err := os.CreateTemp(filepath.Dir(config), ".client-out-*")
	if err != nil {
		return fmt.Errorf("client output file: %w", err)
	}
	defer os.Remove(out.Name())
	defer out.Close()

	cmd := exec.CommandContext(ctx, c.path, "-c", config)
	cmd.Stdout, cmd.Stderr, cmd.Dir, cmd.Env = out, out, "/", c.env
	err = cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("cfs-client did not mount in time: %w", ctx.Err())
	}
	if err == nil {
		return nil
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		return fmt.Errorf("run cfs-client: %w", err)
	}
	text, _ := os.ReadFile(out.Name())
	return clientFailure(exitErr.ExitCode(), string(text), configSecrets(config))
}

// configSecrets returns the owner and auth key a config holds, to redact.
func configSecrets(config string) []string {
	raw, err := os.ReadFile(config)
	if err != nil {
		return nil
	}
	var m map[string]string
	if json.Unmarshal(raw, &m) != nil || m[confOwner] == "" {
		return nil
	}
	owner, err := master.NewOwner(m[confOwner])
	if err != nil {
		return []string{m[confOwner]}
	}
	return []string{owner.Reveal(), owner.AuthKey()}
}

// Stop ends every process whose command line carries "-c config".
func (c *execClient) Stop(ctx context.Context, config string, grace time.Duration) error {
	if waitGone(ctx, config, grace) {
		return nil
	}
	for _, pid := range clientPIDs(config) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if waitGone(ctx, config, clientKillWait) {
		return nil
	}
	return fmt.Errorf("%w: cfs-client of %s survived SIGKILL", ErrUnavailable, config)
}

// waitGone polls until no client of config runs, reaping our own
// children (a plugin running as PID 1 inherits the daemons).
func waitGone(ctx context.Context, config string, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		pids := clientPIDs(config)
		for _, pid := range pids {
			_, _ = unix.Wait4(pid, nil, unix.WNOHANG, nil)
		}
		if len(pids) == 0 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(clientPollInterval)
	}
}

// clientPIDs lists live processes with "-c config" in their arguments.
func clientPIDs(config string) []int {
	return proc.Find(func(args []string) bool {
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-c" && args[i+1] == config {
				return true
			}
		}
		return false
	})
}

// clientFailure turns the client's exit into an error carrying only its
// reason, with the owner and its key redacted.
func clientFailure(code int, output string, secrets []string) error {
	reason := failureReason(output)
	for _, s := range secrets {
		if s != "" {
			reason = strings.ReplaceAll(reason, s, "<redacted>")
		}
	}
	lower := strings.ToLower(reason)
	var kind error
	switch {
	case strings.Contains(lower, "auth key do not match"):
		kind = ErrPermission
	case strings.Contains(lower, "vol not exists"):
		kind = ErrVolumeNotFound
	case strings.Contains(lower, "has been mounted"):
		kind = ErrWrongState
	case containsAny(lower, "connection refused", "dial tcp", "no route to host", "i/o timeout", "no such host"):
		kind = ErrUnavailable
	default:
		return fmt.Errorf("cfs-client exited with status %d: %s", code, reason)
	}
	return fmt.Errorf("%w: cfs-client exited with status %d: %s", kind, code, reason)
}

// failureReason finds the reason in the client's "Mount failed: ..."
// line, which wraps it as "... env([...]) err(readFromProcess:
// sub-process: REASON)". Without that shape, the line is kept only if it
// holds no environment.
func failureReason(output string) string {
	var line string
	for _, l := range strings.Split(output, "\n") {
		if i := strings.Index(l, "Mount failed: "); i >= 0 {
			line = l[i+len("Mount failed: "):]
			break
		}
	}
	if i := strings.LastIndex(line, "err("); i >= 0 {
		line = strings.TrimSuffix(strings.TrimSpace(line[i+len("err("):]), ")")
		line = strings.TrimPrefix(line, "readFromProcess: ")
		return strings.TrimPrefix(line, "sub-process: ")
	}
	if line == "" || strings.Contains(line, "env(") {
		return "no reason given"
	}
	return strings.TrimSpace(line)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

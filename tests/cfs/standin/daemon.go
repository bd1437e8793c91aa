package standin

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// envStatusFD names the descriptor on which a daemon child reports its
// outcome to the parent (the real client uses jacobsa/daemonize the same way).
const envStatusFD = "CFS_STANDIN_STATUS_FD"

// statusMsg is one message on the status pipe: a log line, or the outcome.
type statusMsg struct {
	Log     string `json:"log,omitempty"`
	Outcome bool   `json:"outcome,omitempty"`
	OK      bool   `json:"ok,omitempty"`
	Error   string `json:"error,omitempty"`
}

// startDaemon is the parent side: re-run ourselves as "-f <args>" in a new
// session with "/" as working directory and no stdio, then wait until the
// child reports. The error text follows the real client's, environment
// included (the driver must not log it verbatim).
func startDaemon(args []string, configFile string, status io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("startDaemon failed: cannot get absolute command path, err(%v)", err)
	}
	if len(args) == 0 {
		return fmt.Errorf("startDaemon failed: cannot use null arguments")
	}
	childArgs := append([]string{"-f"}, args...)
	if configFile != "" {
		abs, err := filepath.Abs(configFile)
		if err != nil {
			return fmt.Errorf("startDaemon failed: cannot get absolute command path of config file(%v) , err(%v)", configFile, err)
		}
		for i := 0; i+1 < len(childArgs); i++ {
			if childArgs[i] == "-c" {
				childArgs[i+1] = abs
				break
			}
		}
	}
	env := append(os.Environ(), "GODEBUG=madvdontneed=1")
	if err := runDaemon(exe, childArgs, env, status); err != nil {
		return fmt.Errorf("startDaemon failed: daemon start failed, cmd(%v) args(%v) env(%v) err(%v)",
			exe, childArgs, env, err)
	}
	return nil
}

// runDaemon starts the child and waits for its outcome on a pipe.
func runDaemon(exe string, args, env []string, status io.Writer) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("Pipe: %v", err)
	}
	defer r.Close()

	cmd := exec.Command(exe, args...)
	cmd.Env = append(env, envStatusFD+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Dir = "/" // do not pin the caller's working directory
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close() // only the child holds the write end now, so EOF means it died
	if err != nil {
		return fmt.Errorf("startProcess: %v", err)
	}
	go func() { _ = cmd.Wait() }()

	if err := readOutcome(r, status); err != nil {
		return fmt.Errorf("readFromProcess: %v", err)
	}
	return nil
}

// readOutcome copies log messages to status until the outcome arrives.
func readOutcome(r io.Reader, status io.Writer) error {
	dec := json.NewDecoder(r)
	for {
		var msg statusMsg
		if err := dec.Decode(&msg); err != nil {
			return fmt.Errorf("Decode: %v", err)
		}
		if !msg.Outcome {
			_, _ = io.WriteString(status, msg.Log)
			continue
		}
		if msg.OK {
			return nil
		}
		return fmt.Errorf("sub-process: %s", msg.Error)
	}
}

// reporter is the child side of the status pipe; without a parent (plain
// -f) it does nothing.
type reporter struct {
	mu  sync.Mutex
	enc *json.Encoder
	f   *os.File
}

// newReporter opens the status pipe named by envStatusFD, if any.
func newReporter() *reporter {
	fd, err := strconv.Atoi(os.Getenv(envStatusFD))
	if err != nil {
		return &reporter{}
	}
	os.Unsetenv(envStatusFD)
	f := os.NewFile(uintptr(fd), envStatusFD)
	return &reporter{enc: json.NewEncoder(f), f: f}
}

// signal reports the outcome once and closes the pipe.
func (rp *reporter) signal(outcome error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.enc == nil {
		return
	}
	msg := statusMsg{Outcome: true, OK: outcome == nil}
	if outcome != nil {
		msg.Error = outcome.Error()
	}
	_ = rp.enc.Encode(msg)
	_ = rp.f.Close()
	rp.enc = nil
}

// noOutcomeError marks failures after which the real client exits without
// reporting, so that its parent sees "Decode: EOF".
type noOutcomeError struct{ error }

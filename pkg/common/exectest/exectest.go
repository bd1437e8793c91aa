// Package exectest scripts k8s.io/utils/exec for unit tests: each expected
// command names the binary, answers with output and an exit status, and is
// recorded with its full argv so tests can assert what was run (and that
// no secret was on a command line).
package exectest

import (
	"context"
	"fmt"
	"strings"
	"sync"

	utilexec "k8s.io/utils/exec"
	testingexec "k8s.io/utils/exec/testing"
)

// Step is one expected command.
type Step struct {
	// Cmd is the expected binary name.
	Cmd string
	// Out is what the command prints (combined output).
	Out string
	// Exit is the exit status; 0 means success.
	Exit int
	// Err, when set, is returned as is (e.g. a context error).
	Err error
}

// Call is one command that ran.
type Call struct {
	Cmd  string
	Args []string
}

// Argv returns the command line as one string.
func (c Call) Argv() string { return c.Cmd + " " + strings.Join(c.Args, " ") }

// Script is a scripted exec; a command beyond the script fails the test
// through Errors.
type Script struct {
	mu     sync.Mutex
	steps  []Step
	calls  []Call
	errors []string
}

var _ utilexec.Interface = (*Script)(nil)

// New returns a script that expects steps in order.
func New(steps ...Step) *Script {
	return &Script{steps: steps}
}

// Command implements utilexec.Interface.
func (s *Script) Command(cmd string, args ...string) utilexec.Cmd {
	return s.next(cmd, args)
}

// CommandContext implements utilexec.Interface.
func (s *Script) CommandContext(_ context.Context, cmd string, args ...string) utilexec.Cmd {
	return s.next(cmd, args)
}

// LookPath implements utilexec.Interface: every tool is found.
func (s *Script) LookPath(file string) (string, error) { return "/usr/bin/" + file, nil }

// Calls returns the commands that ran.
func (s *Script) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Problems returns unexpected or missing commands; empty when the script
// ran exactly as written.
func (s *Script) Problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]string(nil), s.errors...)
	for _, st := range s.steps {
		out = append(out, fmt.Sprintf("expected command %q did not run", st.Cmd))
	}
	return out
}

func (s *Script) next(cmd string, args []string) utilexec.Cmd {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Cmd: cmd, Args: append([]string(nil), args...)})
	step := Step{Cmd: cmd, Exit: 127, Out: "unexpected command"}
	switch {
	case len(s.steps) == 0:
		s.errors = append(s.errors, fmt.Sprintf("unexpected command %s %v", cmd, args))
	case s.steps[0].Cmd != cmd:
		s.errors = append(s.errors, fmt.Sprintf("got command %s %v, want %s", cmd, args, s.steps[0].Cmd))
		s.steps = s.steps[1:]
	default:
		step, s.steps = s.steps[0], s.steps[1:]
	}
	return fakeCmd(step, cmd, args)
}

func fakeCmd(step Step, cmd string, args []string) utilexec.Cmd {
	action := func() ([]byte, []byte, error) {
		switch {
		case step.Err != nil:
			return []byte(step.Out), nil, step.Err
		case step.Exit != 0:
			return []byte(step.Out), nil, testingexec.FakeExitError{Status: step.Exit}
		}
		return []byte(step.Out), nil, nil
	}
	fc := &testingexec.FakeCmd{
		CombinedOutputScript: []testingexec.FakeAction{action},
		OutputScript:         []testingexec.FakeAction{action},
		RunScript: []testingexec.FakeAction{func() ([]byte, []byte, error) {
			_, _, err := action()
			return nil, nil, err
		}},
	}
	return testingexec.InitFakeCmd(fc, cmd, args...)
}

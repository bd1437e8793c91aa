package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

// plugin is one tkestor-csi process started by a test.
type plugin struct {
	cmd    *exec.Cmd
	socket string
	client *csiclient.Client
	mu     sync.Mutex
	lines  []string
	seen   chan string
	done   chan struct{}
}

// binary is the plugin under test: bin/tkestor-csi built by `make build`.
func binary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("TKESTOR_BIN")
	if path == "" {
		path = filepath.Join("..", "..", "bin", "tkestor-csi")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("plugin binary %s missing: run `make build` first", abs)
	}
	return abs
}

// startPlugin runs the binary with args on a fresh socket in dir; env adds
// variables (for example armed failpoints). The process is killed when the
// test ends if the test did not stop it.
func startPlugin(t *testing.T, dir, name string, env []string, args ...string) *plugin {
	t.Helper()
	socket := filepath.Join(dir, name+".sock")
	args = append([]string{"--endpoint=unix://" + socket, "-v=4"}, args...)
	p := &plugin{socket: socket, seen: make(chan string, 64), done: make(chan struct{})}
	p.cmd = exec.Command(binary(t), args...)
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.collect(stderr)
	t.Cleanup(func() { p.kill() })
	p.waitReady(t)
	return p
}

func (p *plugin) collect(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		p.lines = append(p.lines, line)
		p.mu.Unlock()
		if strings.HasPrefix(line, "FAILPOINT ") {
			p.seen <- strings.Fields(line)[1]
		}
	}
	_ = p.cmd.Wait()
}

func (p *plugin) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *plugin) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("plugin exited early:\n%s", p.log())
		default:
		}
		if _, err := os.Stat(p.socket); err == nil {
			c, err := csiclient.Dial("unix://" + p.socket)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = c.Ready(ctx)
			cancel()
			if err == nil {
				p.client = c
				return
			}
			_ = c.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("plugin not ready within 20s:\n%s", p.log())
}

// waitFailpoint waits until the plugin reports the named failpoint, or the
// call finished without reaching it (callDone closed).
func (p *plugin) waitFailpoint(name string, callDone <-chan struct{}) (bool, error) {
	timeout := time.After(60 * time.Second)
	for {
		select {
		case got := <-p.seen:
			if got == name {
				return true, nil
			}
		case <-callDone:
			return false, nil
		case <-timeout:
			return false, fmt.Errorf("failpoint %s not reached in 60s", name)
		}
	}
}

// kill ends the process with SIGKILL, as a node crash or OOM kill would.
func (p *plugin) kill() {
	if p.client != nil {
		_ = p.client.Close()
		p.client = nil
	}
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

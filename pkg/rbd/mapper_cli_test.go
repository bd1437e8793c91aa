package rbd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tkestack/tkestor-csi/pkg/common/exectest"
)

const testKey = "AQDSECRETSECRETSECRETSECRETSECRETSECRET=="

func testMapRequest(readOnly bool, opts ...string) *MapRequest {
	return &MapRequest{
		VolumeID: "vol-1", Monitors: []string{"10.0.0.1:6789", "10.0.0.2:6789"},
		User: "csi", Key: testKey, Pool: "rbd", Image: "csi-vol-1",
		ReadOnly: readOnly, Options: opts,
	}
}

// checkArgv asserts the command lines carry no key and name a key file
// that no longer exists.
func checkArgv(t *testing.T, calls []exectest.Call) {
	t.Helper()
	for _, c := range calls {
		argv := c.Argv()
		if strings.Contains(argv, testKey) {
			t.Fatalf("key on the command line: %s", argv)
		}
		for i, a := range c.Args {
			if a == "--keyfile" {
				if _, err := os.Stat(c.Args[i+1]); !os.IsNotExist(err) {
					t.Errorf("key file %s left behind (%v)", c.Args[i+1], err)
				}
			}
		}
	}
}

func findCall(calls []exectest.Call, sub string) *exectest.Call {
	for i := range calls {
		if strings.Contains(calls[i].Argv(), sub) {
			return &calls[i]
		}
	}
	return nil
}

func TestCLIMapperMapArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mapper  func(s *exectest.Script, dir string) *cliMapper
		req     *MapRequest
		listOut string
		device  string
		want    []string
		notWant []string
	}{
		{
			name:   "krbd",
			mapper: func(s *exectest.Script, d string) *cliMapper { return newKRBDMapper(s, d) },
			req:    testMapRequest(false), device: "/dev/rbd0",
			want: []string{"device map -t krbd rbd/csi-vol-1", "--id csi",
				"-m 10.0.0.1:6789,10.0.0.2:6789", "--keyfile ", "--options noudev"},
			notWant: []string{"--read-only"},
		},
		{
			name:   "krbd read-only with map options",
			mapper: func(s *exectest.Script, d string) *cliMapper { return newKRBDMapper(s, d) },
			req:    testMapRequest(true, "lock_on_read", "queue_depth=128"), device: "/dev/rbd3",
			want: []string{"--options noudev,lock_on_read,queue_depth=128", "--read-only"},
		},
		{
			name:   "nbd",
			mapper: func(s *exectest.Script, d string) *cliMapper { return newNBDMapper(s, d) },
			req:    testMapRequest(false), device: "/dev/nbd0",
			want: []string{"device map -t nbd rbd/csi-vol-1", "--keyfile ",
				"--options try-netlink,reattach-timeout=300,io-timeout=0", "--cookie "},
			notWant: []string{"noudev", "--read-only"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := exectest.New(
				exectest.Step{Cmd: "rbd", Out: "[]"},
				exectest.Step{Cmd: "rbd", Out: tc.device + "\n"},
			)
			m, err := tc.mapper(s, t.TempDir()).Map(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if m.Device != tc.device || m.Spec != "rbd/csi-vol-1" {
				t.Errorf("mapping = %+v", m)
			}
			checkArgv(t, s.Calls())
			mapCall := findCall(s.Calls(), "device map")
			if mapCall == nil {
				t.Fatalf("no map command in %v", s.Calls())
			}
			for _, w := range tc.want {
				if !strings.Contains(mapCall.Argv(), w) {
					t.Errorf("map argv %q lacks %q", mapCall.Argv(), w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(mapCall.Argv(), w) {
					t.Errorf("map argv %q has %q", mapCall.Argv(), w)
				}
			}
			if p := s.Problems(); len(p) > 0 {
				t.Error(p)
			}
		})
	}
}

func TestCLIMapperIdempotent(t *testing.T) {
	t.Parallel()
	listed := `[{"id":"0","pool":"rbd","namespace":"","name":"csi-vol-1","snap":"-","device":"/dev/rbd5"},
		{"id":"1","pool":"rbd","namespace":"","name":"other","snap":"-","device":"/dev/rbd6"}]`

	// Map of an image that is already mapped returns that device.
	s := exectest.New(exectest.Step{Cmd: "rbd", Out: listed})
	m, err := newKRBDMapper(s, t.TempDir()).Map(context.Background(), testMapRequest(false))
	if err != nil || m.Device != "/dev/rbd5" {
		t.Fatalf("Map = %+v, %v; want the existing /dev/rbd5", m, err)
	}
	if findCall(s.Calls(), "device map") != nil {
		t.Error("mapped again")
	}

	// Unmap unmaps the listed device; unmap of a gone one runs nothing.
	s = exectest.New(exectest.Step{Cmd: "rbd", Out: listed}, exectest.Step{Cmd: "rbd"})
	km := newKRBDMapper(s, t.TempDir())
	if err := km.Unmap(context.Background(), &Mapping{Device: "/dev/rbd5", Spec: "rbd/csi-vol-1"}); err != nil {
		t.Fatal(err)
	}
	if c := findCall(s.Calls(), "device unmap"); c == nil ||
		!strings.Contains(c.Argv(), "-t krbd --options noudev /dev/rbd5") {
		t.Errorf("unmap command = %v", c)
	}
	s = exectest.New(exectest.Step{Cmd: "rbd", Out: "[]"})
	km = newKRBDMapper(s, t.TempDir())
	if err := km.Unmap(context.Background(), &Mapping{Device: "/dev/rbd5", Spec: "rbd/csi-vol-1"}); err != nil {
		t.Fatal(err)
	}
	// A device now mapping another image is not ours to unmap.
	s = exectest.New(exectest.Step{Cmd: "rbd", Out: listed})
	km = newKRBDMapper(s, t.TempDir())
	if err := km.Unmap(context.Background(), &Mapping{Device: "/dev/rbd6", Spec: "rbd/csi-vol-1"}); err != nil {
		t.Fatal(err)
	}
	if findCall(s.Calls(), "device unmap") != nil {
		t.Error("unmapped a device that maps another image")
	}
	if err := km.Check(context.Background(), &Mapping{Device: "/dev/rbd9", Spec: "rbd/x"}); err == nil {
		t.Error("Check of an unlisted mapping succeeded")
	}
}

func TestCLIMapperErrorRedactsKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := exectest.New(
		exectest.Step{Cmd: "rbd", Out: "[]"},
		exectest.Step{Cmd: "rbd", Exit: 22, Out: "bad key " + testKey + " here"},
	)
	_, err := newNBDMapper(s, dir).Map(context.Background(), testMapRequest(false))
	if err == nil {
		t.Fatal("Map succeeded")
	}
	if strings.Contains(err.Error(), testKey) {
		t.Fatalf("error carries the key: %v", err)
	}
	checkArgv(t, s.Calls())
	left, _ := filepath.Glob(filepath.Join(dir, "keys", "*"))
	if len(left) > 0 {
		t.Errorf("key files left: %v", left)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	req := testMapRequest(false)
	for _, s := range []string{
		req.Key.String(), strings.TrimSpace(sprintAll(req)),
	} {
		if strings.Contains(s, testKey) {
			t.Errorf("secret printed: %s", s)
		}
	}
}

package mount

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	mountutils "k8s.io/mount-utils"

	"github.com/tkestack/tkestor-csi/pkg/common/exectest"
)

func TestMkfsArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fsType string
		user   []string
		want   []string
	}{
		{"ext4 defaults", FsExt4, nil,
			[]string{"-F", "-m0", "-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", "/dev/x"}},
		{"ext4 user options appended", FsExt4, []string{"-b", "4096"},
			[]string{"-F", "-m0", "-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1", "-b", "4096", "/dev/x"}},
		{"xfs defaults", FsXFS, nil, []string{"-f", "-K", "/dev/x"}},
		{"xfs user options", FsXFS, []string{"-m", "reflink=0"}, []string{"-f", "-K", "-m", "reflink=0", "/dev/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := mkfsArgs(tc.fsType, "/dev/x", tc.user); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mkfsArgs = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFormatAndMount(t *testing.T) {
	t.Parallel()
	blank := exectest.Step{Cmd: "blkid", Exit: 2}
	tests := []struct {
		name      string
		opts      FormatOptions
		steps     []exectest.Step
		wantErr   error
		wantMkfs  string
		wantMount bool
	}{
		{name: "blank ext4 is formatted", opts: FormatOptions{},
			steps:    []exectest.Step{blank, {Cmd: "mkfs.ext4"}},
			wantMkfs: "mkfs.ext4", wantMount: true},
		{name: "blank xfs is formatted", opts: FormatOptions{FsType: FsXFS},
			steps:    []exectest.Step{blank, {Cmd: "mkfs.xfs"}},
			wantMkfs: "mkfs.xfs", wantMount: true},
		{name: "existing ext4 is only mounted", opts: FormatOptions{FsType: FsExt4},
			steps:     []exectest.Step{{Cmd: "blkid", Out: "DEVNAME=/dev/x\nTYPE=ext4\n"}},
			wantMount: true},
		{name: "other filesystem is refused", opts: FormatOptions{FsType: FsExt4},
			steps:   []exectest.Step{{Cmd: "blkid", Out: "TYPE=xfs\n"}},
			wantErr: ErrFilesystemMismatch},
		{name: "partition table is refused", opts: FormatOptions{FsType: FsExt4},
			steps:   []exectest.Step{{Cmd: "blkid", Out: "PTTYPE=gpt\n"}},
			wantErr: ErrFilesystemMismatch},
		{name: "blank read-only is refused", opts: FormatOptions{MountOptions: []string{"ro"}},
			steps:   []exectest.Step{blank},
			wantErr: ErrUnformattedReadOnly},
		{name: "unsupported type", opts: FormatOptions{FsType: "btrfs"}, wantErr: ErrUnsupportedFsType},
		{name: "mkfs failure does not mount", opts: FormatOptions{},
			steps:   []exectest.Step{blank, {Cmd: "mkfs.ext4", Exit: 1, Out: "boom"}},
			wantErr: errAny, wantMkfs: "mkfs.ext4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fm := mountutils.NewFakeMounter(nil)
			ex := exectest.New(tc.steps...)
			m := NewFake(fm, ex)
			target := t.TempDir()
			err := m.FormatAndMount(context.Background(), "/dev/x", target, tc.opts)
			switch {
			case tc.wantErr == errAny && err == nil:
				t.Fatal("FormatAndMount succeeded, want an error")
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("FormatAndMount = %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && err != nil:
				t.Fatalf("FormatAndMount: %v", err)
			}
			if p := ex.Problems(); len(p) > 0 {
				t.Errorf("exec script: %v", p)
			}
			var mkfs string
			for _, c := range ex.Calls() {
				if strings.HasPrefix(c.Cmd, "mkfs.") {
					mkfs = c.Cmd
				}
			}
			if mkfs != tc.wantMkfs {
				t.Errorf("mkfs run = %q, want %q", mkfs, tc.wantMkfs)
			}
			if got := len(fm.GetLog()) > 0; got != tc.wantMount {
				t.Errorf("mounted = %v, want %v", got, tc.wantMount)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestValidateMountFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		flags []string
		ok    bool
	}{
		{"none", nil, true},
		{"plain", []string{"noatime", "discard", "nouuid"}, true},
		{"with value", []string{"commit=60", "context=system_u:object_r:foo_t:s0"}, true},
		{"comma", []string{"noatime,nodev"}, false},
		{"space", []string{"noatime nodev"}, false},
		{"empty", []string{""}, false},
		{"quote", []string{`x="y"`}, false},
		{"newline", []string{"ro\n"}, false},
		{"bind", []string{"bind"}, false},
		{"remount", []string{"remount"}, false},
		{"propagation", []string{"rshared"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateMountFlags(tc.flags)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateMountFlags(%q) = %v, want ok=%v", tc.flags, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadMountFlag) {
				t.Errorf("error %v is not ErrBadMountFlag", err)
			}
		})
	}
}

func TestLookupAndMountedFrom(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	staging := filepath.Join(dir, "staging")
	target := filepath.Join(dir, "target")
	fm := mountutils.NewFakeMounter([]mountutils.MountPoint{
		{Device: "/dev/loop7", Path: staging, Type: "ext4", Opts: []string{"rw"}},
	})
	m := NewFake(fm, exectest.New())
	if err := m.Bind(staging, target, true, []string{"noatime"}); err != nil {
		t.Fatal(err)
	}

	e, err := m.Lookup(target)
	if err != nil || e == nil {
		t.Fatalf("Lookup(target) = %v, %v", e, err)
	}
	if e.Source != "/dev/loop7" || !e.ReadOnly() {
		t.Errorf("bind entry = %+v, want source /dev/loop7, read-only", e)
	}
	if e, _ := m.Lookup(filepath.Join(dir, "other")); e != nil {
		t.Errorf("Lookup(unmounted) = %+v, want nil", e)
	}
	for _, tc := range []struct {
		path, dev string
		want      bool
	}{
		{staging, "/dev/loop7", true},
		{target, "/dev/loop7", true},
		{staging, "/dev/loop8", false},
		{filepath.Join(dir, "none"), "/dev/loop7", false},
	} {
		got, err := m.MountedFrom(tc.path, tc.dev)
		if err != nil || got != tc.want {
			t.Errorf("MountedFrom(%s, %s) = %v, %v; want %v", tc.path, tc.dev, got, err, tc.want)
		}
	}
}

func TestCleanupMountPointMissingIsOK(t *testing.T) {
	t.Parallel()
	m := NewFake(mountutils.NewFakeMounter(nil), exectest.New())
	if err := m.CleanupMountPoint(filepath.Join(t.TempDir(), "gone")); err != nil {
		t.Fatalf("CleanupMountPoint(missing) = %v", err)
	}
}

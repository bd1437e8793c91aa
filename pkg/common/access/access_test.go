package access

import (
	"errors"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

func TestModeTable(t *testing.T) {
	t.Parallel()
	const (
		snw  = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
		snmw = csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER
		snsw = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
		snro = csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
		mnro = csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
		mnsw = csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER
		mnmw = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
		unk  = csi.VolumeCapability_AccessMode_UNKNOWN
	)
	one := Rule{SingleNode: true}
	rwop := Rule{SingleNode: true, SingleTarget: true}
	oneRO := Rule{SingleNode: true, ReadOnly: true}
	manyRO := Rule{ReadOnly: true}
	many := Rule{}
	tests := []struct {
		name    string
		kind    Kind
		mode    csi.VolumeCapability_AccessMode_Mode
		want    Rule
		wantErr bool
	}{
		{"rwo rbd fs", RBDFilesystem, snw, one, false},
		{"rwo rbd block", RBDBlock, snw, one, false},
		{"rwo cfs", CFS, snw, one, false},
		{"single node multi writer rbd fs", RBDFilesystem, snmw, one, false},
		{"single node multi writer rbd block", RBDBlock, snmw, one, false},
		{"single node multi writer cfs", CFS, snmw, one, false},
		{"rwop rbd fs", RBDFilesystem, snsw, rwop, false},
		{"rwop rbd block", RBDBlock, snsw, rwop, false},
		{"rwop cfs", CFS, snsw, rwop, false},
		{"single node reader rbd fs", RBDFilesystem, snro, oneRO, false},
		{"single node reader rbd block", RBDBlock, snro, oneRO, false},
		{"single node reader cfs", CFS, snro, oneRO, false},
		{"rox rbd fs", RBDFilesystem, mnro, manyRO, false},
		{"rox rbd block", RBDBlock, mnro, manyRO, false},
		{"rox cfs", CFS, mnro, manyRO, false},
		{"rwx rbd fs refused", RBDFilesystem, mnmw, Rule{}, true},
		{"rwx rbd block", RBDBlock, mnmw, many, false},
		{"rwx cfs", CFS, mnmw, many, false},
		{"multi node single writer rbd fs refused", RBDFilesystem, mnsw, Rule{}, true},
		{"multi node single writer rbd block refused", RBDBlock, mnsw, Rule{}, true},
		{"multi node single writer cfs refused", CFS, mnsw, Rule{}, true},
		{"unknown refused", CFS, unk, Rule{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Mode(tc.kind, tc.mode)
			if tc.wantErr {
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("Mode(%s, %s) error = %v, want ErrUnsupported", tc.kind, tc.mode, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Mode(%s, %s) = %+v, %v; want %+v", tc.kind, tc.mode, got, err, tc.want)
			}
		})
	}
}

func TestCapability(t *testing.T) {
	t.Parallel()
	mode := &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}
	mount := &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}
	block := &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	tests := []struct {
		name     string
		rbd      bool
		cap      *csi.VolumeCapability
		wantKind Kind
		wantErr  bool
	}{
		{"rbd mount", true, &csi.VolumeCapability{AccessType: mount, AccessMode: mode}, RBDFilesystem, false},
		{"rbd block", true, &csi.VolumeCapability{AccessType: block, AccessMode: mode}, RBDBlock, false},
		{"cfs mount", false, &csi.VolumeCapability{AccessType: mount, AccessMode: mode}, CFS, false},
		{"cfs block refused", false, &csi.VolumeCapability{AccessType: block, AccessMode: mode}, 0, true},
		{"no access type", true, &csi.VolumeCapability{AccessMode: mode}, 0, true},
		{"no access mode", true, &csi.VolumeCapability{AccessType: mount}, 0, true},
		{"nil", true, nil, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, kind, err := Capability(tc.rbd, tc.cap)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Capability() error = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && kind != tc.wantKind {
				t.Fatalf("Capability() kind = %s, want %s", kind, tc.wantKind)
			}
		})
	}
	if err := Capabilities(true, nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Capabilities(nil) = %v, want ErrUnsupported", err)
	}
}

package rbd

import (
	"errors"
	"math"
	"math/rand"
	"strings"
	"testing"
)

func TestVolumeIDRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		kind      IDKind
		clusterID string
		poolID    int64
		reqName   string
	}{
		{"volume", KindVolume, "tkestor-test", 1, "pvc-f9703e0d-9887-4bf2-8e31-1c3103a6ce2f"},
		{"snapshot", KindSnapshot, "rook-ceph", 42, "snapshot-1"},
		{"pool zero", KindVolume, "a", 0, "x"},
		{"max pool", KindVolume, "c", math.MaxInt64, "y"},
		{"36 char cluster", KindVolume, strings.Repeat("k", 36), 7, strings.Repeat("n", 128)},
		{"uuid cluster", KindSnapshot, "ec49375b-20d9-4792-8a51-c9fbcec206d6", 30, "n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := newVolumeID(tc.kind, tc.clusterID, tc.poolID, tc.reqName)
			s := id.String()
			if len(s) > maxIDBytes {
				t.Fatalf("ID %q is %d bytes", s, len(s))
			}
			got, err := decodeID(s, tc.kind)
			if err != nil {
				t.Fatalf("decode %q: %v", s, err)
			}
			if got != id {
				t.Fatalf("decode %q = %+v, want %+v", s, got, id)
			}
			if !strings.HasPrefix(got.Image, tc.kind.prefix()) || len(got.Image) != len(tc.kind.prefix())+idHashLen {
				t.Fatalf("image name %q", got.Image)
			}
			if newVolumeID(tc.kind, tc.clusterID, tc.poolID, tc.reqName) != id {
				t.Fatal("the same name gave another ID")
			}
		})
	}
}

func TestDecodeVolumeIDStrict(t *testing.T) {
	t.Parallel()
	valid := newVolumeID(KindVolume, "tkestor-test", 1, "pvc-1").String()
	hash := nameHash("pvc-1")
	tests := []struct {
		name string
		id   string
	}{
		{"empty", ""},
		{"garbage", "fake-vol-id"},
		{"too long", valid + strings.Repeat("0", 128)},
		{"version 2", "0002" + valid[4:]},
		{"snapshot kind", strings.Replace(valid, "-v-", "-s-", 1)},
		{"unknown kind", strings.Replace(valid, "-v-", "-x-", 1)},
		{"upper-case hash", valid[:len(valid)-32] + strings.ToUpper(hash)},
		{"short hash", valid[:len(valid)-1]},
		{"long hash", valid + "0"},
		{"trailing newline", valid + "\n"},
		{"leading space", " " + valid},
		{"length too big", "0001-v-ff-tkestor-test-0000000000000001-" + hash},
		{"length too small", "0001-v-0b-tkestor-test-0000000000000001-" + hash},
		{"length upper hex", "0001-v-0C-tkestor-test-0000000000000001-" + hash},
		{"bad cluster chars", "0001-v-0c-tkestor/test-0000000000000001-" + hash},
		{"empty cluster", "0001-v-00--0000000000000001-" + hash},
		{"pool overflow", "0001-v-0c-tkestor-test-ffffffffffffffff-" + hash},
		{"short pool", "0001-v-0c-tkestor-test-000000000000001-" + hash + "0"},
		{"pool upper hex", "0001-v-0c-tkestor-test-000000000000000A-" + hash},
		{"missing separator", "0001-v-0c-tkestor-test-0000000000000001" + hash + "-"},
		{"ceph-csi ID", "0001-0024-ec49375b-20d9-4792-8a51-c9fbcec206d6-000000000000001e-c32d2900-5956-4b25-a9a7-8cb78c8e7f9a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, err := DecodeVolumeID(tc.id); !errors.Is(err, ErrBadID) {
				t.Fatalf("DecodeVolumeID(%q) = %+v, %v; want ErrBadID", tc.id, got, err)
			}
		})
	}
	if _, err := DecodeVolumeID(valid); err != nil {
		t.Fatalf("valid ID refused: %v", err)
	}
	if _, err := DecodeSnapshotID(valid); !errors.Is(err, ErrBadID) {
		t.Fatal("a volume ID decoded as a snapshot ID")
	}
}

// TestDecodeRandomGarbage: mutations of a valid ID and random strings
// either fail or decode to an ID that encodes back to the same string.
func TestDecodeRandomGarbage(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(1))
	valid := newVolumeID(KindVolume, "tkestor-test", 5, "pvc").String()
	alphabet := "0123456789abcdefABCDEF-vs_. x\x00\xff"
	for i := 0; i < 20000; i++ {
		b := []byte(valid)
		switch i % 4 {
		case 0:
			b[rng.Intn(len(b))] = alphabet[rng.Intn(len(alphabet))]
		case 1:
			cut := rng.Intn(len(b))
			b = append(b[:cut], b[cut+1:]...)
		case 2:
			at := rng.Intn(len(b))
			b = append(b[:at], append([]byte{alphabet[rng.Intn(len(alphabet))]}, b[at:]...)...)
		default:
			b = make([]byte, rng.Intn(140))
			for j := range b {
				b[j] = alphabet[rng.Intn(len(alphabet))]
			}
		}
		checkDecodeConsistent(t, string(b))
	}
}

func checkDecodeConsistent(t *testing.T, s string) {
	t.Helper()
	for _, kind := range []IDKind{KindVolume, KindSnapshot} {
		id, err := decodeID(s, kind)
		if err != nil {
			if !errors.Is(err, ErrBadID) {
				t.Fatalf("decode %q: error %v is not ErrBadID", s, err)
			}
			continue
		}
		if id.String() != s {
			t.Fatalf("decode %q gave %+v which encodes to %q", s, id, id.String())
		}
	}
}

func FuzzDecodeVolumeID(f *testing.F) {
	f.Add(newVolumeID(KindVolume, "tkestor-test", 1, "pvc").String())
	f.Add(newVolumeID(KindSnapshot, "c", 0, "s").String())
	f.Add("0001-v-01-c-0000000000000000-")
	f.Add("fake-vol-id")
	f.Fuzz(func(t *testing.T, s string) { checkDecodeConsistent(t, s) })
}

func TestImageNameOK(t *testing.T) {
	t.Parallel()
	id := newVolumeID(KindSnapshot, "c", 1, "n")
	if _, ok := imageNameOK(KindSnapshot, id.Image); !ok {
		t.Fatal("own snapshot image refused")
	}
	for _, name := range []string{"csi-vol-x", id.Image + "0", "csi-snap-" + strings.ToUpper(id.Hash), "fx1", ""} {
		if _, ok := imageNameOK(KindSnapshot, name); ok {
			t.Fatalf("%q accepted", name)
		}
	}
	if !isDriverName(newVolumeID(KindVolume, "c", 1, "n").Image) || isDriverName("rbd_data.x") {
		t.Fatal("isDriverName")
	}
}

package noderecord

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

type rec struct {
	Device  string   `json:"device"`
	Targets []string `json:"targets"`
}

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "records"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSaveLoadRemove(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	id := "0001-0009-cluster-0000000000000001-some/odd id"
	var got rec
	if err := s.Load(id, &got); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load before Save = %v, want ErrNotFound", err)
	}

	want := rec{Device: "/dev/loop3", Targets: []string{"/a", "/b"}}
	if err := s.Save(id, want); err != nil {
		t.Fatal(err)
	}
	if err := s.Load(id, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}

	// Overwrite replaces.
	want.Targets = nil
	if err := s.Save(id, want); err != nil {
		t.Fatal(err)
	}
	got = rec{}
	if err := s.Load(id, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load after overwrite = %+v, %v", got, err)
	}

	fi, err := os.Stat(s.Path(id))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if filepath.Base(s.Path(id)) != Key(id)+".json" || len(Key(id)) != 32 {
		t.Errorf("record path %s not keyed by hash", s.Path(id))
	}

	for i := 0; i < 2; i++ {
		if err := s.Remove(id); err != nil {
			t.Fatalf("Remove #%d: %v", i, err)
		}
	}
	if err := s.Load(id, &got); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load after Remove = %v, want ErrNotFound", err)
	}
	entries, _ := os.ReadDir(s.Dir())
	if len(entries) != 0 {
		t.Errorf("leftover files: %v", entries)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ids := []string{"vol-a", "vol-b", "vol-c"}
	for _, id := range ids {
		if err := s.Save(id, rec{Device: id}); err != nil {
			t.Fatal(err)
		}
	}
	// A stray temporary file and a corrupt record.
	_ = os.WriteFile(filepath.Join(s.Dir(), ".tmp-123"), []byte("x"), 0o600)
	_ = os.WriteFile(filepath.Join(s.Dir(), "bad.json"), []byte("{"), 0o600)

	got, err := s.List()
	if err == nil {
		t.Error("List with a corrupt record returned no error")
	}
	sort.Strings(got)
	if !reflect.DeepEqual(got, ids) {
		t.Errorf("List = %v, want %v", got, ids)
	}
}

func TestLoadRefusesForeignAndNewer(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	if err := s.Save("vol-a", rec{}); err != nil {
		t.Fatal(err)
	}
	// A record copied under another volume's key must not be trusted.
	if err := os.Rename(s.Path("vol-a"), s.Path("vol-b")); err != nil {
		t.Fatal(err)
	}
	var r rec
	if err := s.Load("vol-b", &r); err == nil {
		t.Error("Load of a record naming another volume succeeded")
	}
	_ = os.WriteFile(s.Path("vol-c"), []byte(`{"version":99,"volumeID":"vol-c","data":{}}`), 0o600)
	if err := s.Load("vol-c", &r); err == nil {
		t.Error("Load of a newer record version succeeded")
	}
}

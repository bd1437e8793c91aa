package emulator

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/klog/v2"
)

// purgeAt is when a marked volume disappears for good: DeleteExecTime for a
// delayed delete, PurgeAfter after marking otherwise (the real master's
// background task took 7-20 s).
func (e *Emulator) purgeAt(v *Volume) time.Time {
	if v.Forbidden {
		return v.DeleteExecTime
	}
	return v.MarkedAt.Add(e.opts.PurgeAfter)
}

// purgeDue removes every marked volume whose time has come. It runs lazily
// before each request, which also works across processes sharing a state
// file.
func (e *Emulator) purgeDue(st *State, now time.Time) {
	for _, v := range st.Vols {
		if v.Status == StatusMarkDelete && !now.Before(e.purgeAt(v)) {
			e.purge(st, v)
		}
	}
}

// purge removes v, its policy entry and (with a DataRoot) its data.
func (e *Emulator) purge(st *State, v *Volume) {
	delete(st.Vols, v.Name)
	st.dropPolicy(v)
	if e.opts.DataRoot != "" {
		// The name passed the volume-name regexp, so it is one path element.
		if err := os.RemoveAll(filepath.Join(e.opts.DataRoot, v.Name)); err != nil {
			klog.ErrorS(err, "Emulator could not remove volume data", "volume", v.Name)
		}
	}
	klog.V(2).InfoS("Emulator purged volume", "volume", v.Name)
}

// CompleteDeletions purges every marked volume now, as if the background
// task (or the 48 h delay) had run, and returns their names.
func (e *Emulator) CompleteDeletions() ([]string, error) {
	var names []string
	err := e.store.update(e.opts.Now(), func(st *State) {
		for _, v := range st.Vols {
			if v.Status == StatusMarkDelete {
				names = append(names, v.Name)
				e.purge(st, v)
			}
		}
	})
	slices.Sort(names)
	return names, err
}

// SetUsedBytes fixes the used space the master reports for a volume
// (volStat, vol/list, getCluster, the shrink check), overriding any
// measurement under DataRoot.
func (e *Emulator) SetUsedBytes(name string, used uint64) error {
	found := false
	err := e.store.update(e.opts.Now(), func(st *State) {
		if v, ok := st.Vols[name]; ok {
			v.UsedBytes, found = &used, true
		}
	})
	if err == nil && !found {
		return os.ErrNotExist
	}
	return err
}

// usedBytes is the set override, else the size of the files under
// DataRoot/<vol>, else 0. Like the real master's figure it is only a
// report: nothing enforces it.
func (e *Emulator) usedBytes(v *Volume) uint64 {
	if v.UsedBytes != nil {
		return *v.UsedBytes
	}
	if e.opts.DataRoot == "" {
		return 0
	}
	var total uint64
	_ = filepath.WalkDir(filepath.Join(e.opts.DataRoot, v.Name), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			total += uint64(info.Size())
		}
		return nil
	})
	return total
}

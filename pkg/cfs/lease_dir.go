package cfs

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The single-node lease lives in the volume itself, the only state every
// node reaches: a directory at the volume's root holding one file per
// generation, lease.<generation>. The highest generation is the current
// lease. A new generation is only ever made with O_CREAT|O_EXCL, so of two
// nodes that want the same volume exactly one wins, and a generation never
// changes hands: its holder rewrites it (temporary file and rename) to
// renew it, everybody else supersedes it with the next one.
const (
	leaseDirName = ".tkestor-csi"
	leasePrefix  = "lease."
	// leaseTmpPrefix starts the renewal's temporary files,
	// .lease.<generation>.tmp.<random>.
	leaseTmpPrefix = ".lease."
	// leaseHistory is how many generations below the current one are kept
	// (for operators reading the history); older ones are removed.
	leaseHistory  = 3
	leaseMaxBytes = 64 << 10
	// An unreadable generation is read unreadableRetries times,
	// unreadableWait apart, before it is taken for damaged.
	unreadableRetries = 20
	unreadableWait    = 25 * time.Millisecond
)

// errGenerationTaken reports that another node made the generation first.
var errGenerationTaken = errors.New("lease generation already exists")

// leaseRecord is one generation of a volume's lease. A record without a
// node is a release: the volume is free from that generation on.
type leaseRecord struct {
	Node         string    `json:"node"`
	Since        time.Time `json:"since"`
	RenewedAt    time.Time `json:"renewedAt"`
	LeaseSeconds int64     `json:"leaseSeconds"`
	Generation   uint64    `json:"generation"`
	// Token tells one holding of a node from another (a re-claim after
	// a restart makes a new generation with a new token).
	Token      string `json:"token"`
	Mode       string `json:"mode,omitempty"`
	Renewals   uint64 `json:"renewals"`
	ReleasedBy string `json:"releasedBy,omitempty"`
}

// released reports whether the record frees the volume.
func (r *leaseRecord) released() bool { return r.Node == "" }

// leaseView is the current generation as read from the directory.
type leaseView struct {
	// gen is the highest generation; 0 when there is none.
	gen uint64
	// raw is its content as read (empty while its creator writes it).
	raw []byte
	// rec is nil when raw is not a record (being written, or damaged).
	rec *leaseRecord
}

// leaseDir is the lease directory of a mounted volume. Its content
// belongs to whoever can write the volume, so every name is opened below
// a directory handle and never through a symbolic link: a link planted
// at .tkestor-csi or lease.N cannot make the plugin write on the host.
type leaseDir struct {
	f *os.File
}

// openLeaseDir opens the lease directory under root (a mount of the
// volume's root), creating it (0700) when create is set. Without create, a
// missing directory is (nil, nil): nobody ever claimed the volume.
func openLeaseDir(root string, create bool) (*leaseDir, error) {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", root, err)
	}
	defer func() { _ = unix.Close(rootFD) }()
	if create {
		if err := unix.Mkdirat(rootFD, leaseDirName, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create %s/%s: %w", root, leaseDirName, err)
		}
	}
	fd, err := unix.Openat(rootFD, leaseDirName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) && !create {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s/%s (it must be a directory, not a link): %w", root, leaseDirName, err)
	}
	return &leaseDir{f: os.NewFile(uintptr(fd), root+"/"+leaseDirName)}, nil
}

// close releases the directory handle (read-only: nothing to flush).
func (d *leaseDir) close() { _ = d.f.Close() }

func (d *leaseDir) fd() int { return int(d.f.Fd()) }

// names lists the directory afresh (a new handle per listing, so no
// offset or cached listing of an earlier call is reused).
func (d *leaseDir) names() ([]string, error) {
	fd, err := unix.Openat(d.fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.f.Name(), err)
	}
	f := os.NewFile(uintptr(fd), d.f.Name())
	defer func() { _ = f.Close() }()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.f.Name(), err)
	}
	return names, nil
}

// current reads the highest generation. A generation is created empty
// and written right after (O_EXCL has no "create with content"), so an
// unreadable one is read again for a while before it counts as damaged.
func (d *leaseDir) current() (leaseView, error) {
	var v leaseView
	for attempt := 0; attempt < unreadableRetries; attempt++ {
		names, err := d.names()
		if err != nil {
			return leaseView{}, err
		}
		v = leaseView{gen: maxGeneration(names)}
		if v.gen == 0 {
			return v, nil
		}
		v.raw, err = d.read(leaseName(v.gen))
		switch {
		case errors.Is(err, unix.ENOENT):
			continue // removed between the listing and the read
		case err != nil:
			return leaseView{}, err
		}
		if v.rec = parseLease(v.raw, v.gen); v.rec != nil {
			return v, nil
		}
		time.Sleep(unreadableWait)
	}
	return v, nil
}

// read returns the content of a file of the directory. A symbolic link
// is ELOOP, which callers treat like any unreadable record.
func (d *leaseDir) read(name string) ([]byte, error) {
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) {
		return []byte("symbolic link"), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", d.f.Name(), name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer func() { _ = f.Close() }()
	raw, err := io.ReadAll(io.LimitReader(f, leaseMaxBytes))
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", d.f.Name(), name, err)
	}
	return raw, nil
}

// create makes the record's generation, failing with errGenerationTaken
// when it exists: the one step that decides who holds the volume.
func (d *leaseDir) create(rec *leaseRecord) error {
	name := leaseName(rec.Generation)
	fd, err := unix.Openat(d.fd(), name,
		unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%w: generation %d", errGenerationTaken, rec.Generation)
	}
	if err != nil {
		return fmt.Errorf("create %s/%s: %w", d.f.Name(), name, err)
	}
	return writeRecord(os.NewFile(uintptr(fd), name), rec)
}

// rewrite replaces the content of the record's generation atomically
// (a temporary file renamed over it), for a renewal.
func (d *leaseDir) rewrite(rec *leaseRecord) error {
	tmp := fmt.Sprintf("%s%d.tmp.%s", leaseTmpPrefix, rec.Generation, randomHex(6))
	fd, err := unix.Openat(d.fd(), tmp,
		unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s/%s: %w", d.f.Name(), tmp, err)
	}
	if err := writeRecord(os.NewFile(uintptr(fd), tmp), rec); err != nil {
		_ = unix.Unlinkat(d.fd(), tmp, 0)
		return err
	}
	if err := unix.Renameat(d.fd(), tmp, d.fd(), leaseName(rec.Generation)); err != nil {
		_ = unix.Unlinkat(d.fd(), tmp, 0)
		return fmt.Errorf("rename %s/%s: %w", d.f.Name(), tmp, err)
	}
	return nil
}

// gc removes generations more than leaseHistory below current and the
// temporary files of older generations. Best effort: a file another node
// removed first is fine.
func (d *leaseDir) gc(current uint64) {
	names, err := d.names()
	if err != nil {
		return
	}
	for _, name := range names {
		gen, tmp := parseLeaseName(name)
		if gen == 0 || (!tmp && gen+leaseHistory >= current) || (tmp && gen >= current) {
			continue
		}
		_ = unix.Unlinkat(d.fd(), name, 0)
	}
}

// writeRecord writes rec as JSON, syncs and closes f.
func writeRecord(f *os.File, rec *leaseRecord) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("encode lease record: %w", err)
	}
	_, err = f.Write(append(raw, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return nil
}

// parseLease decodes a record; nil unless it is a whole record of gen.
func parseLease(raw []byte, gen uint64) *leaseRecord {
	rec := &leaseRecord{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(rec); err != nil || rec.Generation != gen {
		return nil
	}
	return rec
}

func leaseName(gen uint64) string { return leasePrefix + strconv.FormatUint(gen, 10) }

// parseLeaseName returns the generation of lease.N (tmp false) or of a
// renewal's temporary file (tmp true); 0 for any other name.
func parseLeaseName(name string) (gen uint64, tmp bool) {
	if rest, ok := strings.CutPrefix(name, leasePrefix); ok {
		return parseGeneration(rest), false
	}
	if rest, ok := strings.CutPrefix(name, leaseTmpPrefix); ok {
		num, _, found := strings.Cut(rest, ".tmp.")
		if found {
			return parseGeneration(num), true
		}
	}
	return 0, false
}

// parseGeneration accepts only the canonical decimal form (no sign,
// no leading zero), so two names never mean one generation.
func parseGeneration(s string) uint64 {
	gen, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(gen, 10) != s {
		return 0
	}
	return gen
}

func maxGeneration(names []string) uint64 {
	var top uint64
	for _, name := range names {
		if gen, tmp := parseLeaseName(name); !tmp && gen > top {
			top = gen
		}
	}
	return top
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
	}
	return hex.EncodeToString(b)
}

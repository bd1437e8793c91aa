package cfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/common/holder"
)

// HolderAdminOptions configure the cfs half of `tkestor-csi holder`.
type HolderAdminOptions struct {
	// Masters (comma-separated) for volume IDs that name theirs by hash.
	Masters string
	// SecretDir may hold the files "owner" and "masterAddr" (a mounted
	// Secret, the node-stage secret's keys); without an owner the
	// volume's is looked up on the master.
	SecretDir string
	// ClientPath is the cfs-client binary the volume is mounted with.
	ClientPath string
	// WorkDir holds the temporary mount ("" is the system's temp dir).
	WorkDir string
}

// HolderAdmin is the holder.Backend of the cfs driver.
type HolderAdmin struct {
	opts    HolderAdminOptions
	secrets map[string]string
}

var _ holder.Backend = (*HolderAdmin)(nil)

// NewHolderAdmin checks the options and reads the secret directory.
func NewHolderAdmin(opts HolderAdminOptions) (*HolderAdmin, error) {
	if opts.ClientPath == "" {
		return nil, errors.New("the path of cfs-client is required")
	}
	secrets, err := readSecretDir(opts.SecretDir)
	if err != nil {
		return nil, err
	}
	return &HolderAdmin{opts: opts, secrets: secrets}, nil
}

// Close releases nothing: every call mounts and unmounts by itself.
func (a *HolderAdmin) Close() {}

// Show reports the current lease generation.
func (a *HolderAdmin) Show(ctx context.Context, volumeID string) (*holder.Report, error) {
	st, err := ShowHolder(ctx, a.query(volumeID, nil))
	if err != nil {
		return nil, err
	}
	return a.report(st), nil
}

// Release frees the volume with a released generation. ChubaoFS has no
// blocklist: the holder, if it still runs, fences itself at its next
// renewal. Without Force a live-looking lease is refused (holder.ErrAlive).
func (a *HolderAdmin) Release(
	ctx context.Context, volumeID string, opts holder.ReleaseOptions,
) (*holder.Report, error) {
	q := a.query(volumeID, opts.Progress)
	q.Node = opts.Node
	st, err := ReleaseHolder(ctx, q, opts.Force)
	var rep *holder.Report
	if st != nil {
		rep = a.report(st)
	}
	var live *liveLeaseError
	switch {
	case errors.As(err, &live):
		return rep, fmt.Errorf("%w: %s", holder.ErrAlive, live.detail)
	case err != nil:
		return rep, err
	case st.released:
		rep.Actions = append(rep.Actions, fmt.Sprintf("wrote released lease generation %d; node %q, if it "+
			"still runs, fences itself at its next renewal (every %s)", st.Generation+1, st.Node,
			time.Duration(st.LeaseSeconds)*time.Second/3))
	default:
		rep.Actions = append(rep.Actions, "nothing to release: the volume is free")
	}
	return rep, nil
}

func (a *HolderAdmin) query(volumeID string, progress func(string)) HolderQuery {
	return HolderQuery{
		VolumeID: volumeID, Masters: a.opts.Masters, Secrets: a.secrets, ClientPath: a.opts.ClientPath,
		WorkDir: a.opts.WorkDir, Progress: progress,
	}
}

// report turns a status into the subcommand's report.
func (a *HolderAdmin) report(st *HolderStatus) *holder.Report {
	rep := &holder.Report{Driver: "cfs", VolumeID: st.Volume, Target: a.target(st)}
	if st.Generation == 0 || (st.Node == "" && !st.Unreadable) {
		return rep
	}
	h := holder.Holder{
		Node: st.Node, Mode: st.Mode, Exclusive: true, Since: st.Since, Heartbeat: st.RenewedAt,
		Lease: time.Duration(st.LeaseSeconds) * time.Second, Alive: !st.Expired && !st.Unreadable,
	}
	switch {
	case st.Unreadable:
		h.Node = "unknown"
		h.Verdict = fmt.Sprintf("lease generation %d is unreadable (being written, or damaged)", st.Generation)
	case st.Expired:
		h.Verdict = fmt.Sprintf("lease generation %d not renewed for %s, longer than its lease %s "+
			"(by this machine's clock); %d renewals", st.Generation, st.Age.Round(time.Second), h.Lease, st.Renewals)
	default:
		h.Verdict = fmt.Sprintf("lease generation %d renewed %s ago, within its lease %s; %d renewals",
			st.Generation, st.Age.Round(time.Second), h.Lease, st.Renewals)
	}
	rep.Holders = []holder.Holder{h}
	return rep
}

func (a *HolderAdmin) target(st *HolderStatus) string {
	id, err := parseVolumeID(st.Volume)
	if err != nil {
		return st.Volume
	}
	if id.Masters != nil {
		return fmt.Sprintf("volume %s at %s", id.Name, strings.Join(id.Masters, ","))
	}
	return "volume " + id.Name
}

// readSecretDir reads the keys the command uses from a mounted Secret.
func readSecretDir(dir string) (map[string]string, error) {
	secrets := map[string]string{}
	if dir == "" {
		return secrets, nil
	}
	for _, key := range []string{secretOwner, secretMasterAddr} {
		raw, err := os.ReadFile(filepath.Join(dir, key))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("secret directory: %w", err)
		}
		secrets[key] = strings.TrimSpace(string(raw))
	}
	return secrets, nil
}

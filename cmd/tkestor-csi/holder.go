package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tkestack/tkestor-csi/pkg/cfs"
	"github.com/tkestack/tkestor-csi/pkg/common/holder"
	"github.com/tkestack/tkestor-csi/pkg/rbd"
)

const holderUsage = `usage: tkestor-csi holder show|release --driver=rbd|cfs --volume-id=ID [flags]

  show     who holds a single-node volume: node, since, heartbeat, its clients,
           the image's watchers, alive or dead
  release  fence the holder's clients (osd blocklist add), then break its hold;
           refused (exit 3) while the holder looks alive, unless --force
           cfs: write a released lease generation (the volume is mounted with
           --cfs-client); a holder that still runs fences itself at its next
           renewal; without --force only a lease that looks expired and stays
           unrenewed while watched for one lease

exit status: 0 done, 1 error, 2 bad usage, 3 refused: the holder looks alive`

// Exit codes of the holder subcommand.
const (
	exitHolderError   = 1
	exitHolderUsage   = 2
	exitHolderRefused = 3
)

// holderFlags is the subcommand's command line.
type holderFlags struct {
	driver        string
	volumeID      string
	force         bool
	node          string
	output        string
	clusterConfig string
	secretDir     string
	cfsClient     string
	cfsMasters    string
	fenceExpiry   time.Duration
}

func (f *holderFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.driver, "driver", "", "rbd or cfs")
	fs.StringVar(&f.volumeID, "volume-id", "", "the CSI volume ID (a PV's spec.csi.volumeHandle)")
	fs.BoolVar(&f.force, "force", false, "release: fence and release a holder that still looks alive")
	fs.StringVar(&f.node, "node", "", "release: only this holder (default: every holder)")
	fs.StringVar(&f.output, "output", "text", "text or json")
	fs.StringVar(&f.clusterConfig, "cluster-config", "/etc/tkestor-csi/config.json",
		"rbd: JSON list of {clusterID, monitors}")
	fs.StringVar(&f.secretDir, "secret-dir", "",
		"rbd: directory with userID and userKey files; cfs: with owner (and masterAddr) files, optional")
	fs.StringVar(&f.cfsClient, "cfs-client", "/usr/bin/cfs-client", "cfs: the client that mounts the volume")
	fs.StringVar(&f.cfsMasters, "cfs-master-addr", "",
		"cfs: masters (comma-separated host:port) of a volume ID that names its masters by hash")
	fs.DurationVar(&f.fenceExpiry, "fence-expiry", rbd.DefaultFenceExpiry,
		"rbd: how long fenced clients stay blocklisted")
}

// runHolder is `tkestor-csi holder show|release`.
func runHolder(args []string) int {
	if len(args) == 0 || (args[0] != "show" && args[0] != "release") {
		fmt.Fprintln(os.Stderr, holderUsage)
		return exitHolderUsage
	}
	action := args[0]
	fs := flag.NewFlagSet("tkestor-csi holder "+action, flag.ContinueOnError)
	var f holderFlags
	f.add(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return exitHolderUsage
	}
	if err := f.validate(fs); err != nil {
		fmt.Fprintln(os.Stderr, "tkestor-csi holder:", err)
		return exitHolderUsage
	}
	backend, err := newHolderBackend(&f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tkestor-csi holder:", err)
		return exitHolderUsage
	}
	defer backend.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	rep, err := runHolderAction(ctx, backend, action, &f)
	if rep != nil {
		if perr := printReport(os.Stdout, rep, f.output); perr != nil && err == nil {
			err = perr
		}
	}
	switch {
	case errors.Is(err, holder.ErrAlive):
		fmt.Fprintln(os.Stderr, "tkestor-csi holder: refused:", err)
		return exitHolderRefused
	case err != nil:
		fmt.Fprintln(os.Stderr, "tkestor-csi holder:", err)
		return exitHolderError
	}
	return 0
}

func (f *holderFlags) validate(fs *flag.FlagSet) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case f.volumeID == "":
		return errors.New("--volume-id is required")
	case f.output != "text" && f.output != "json":
		return fmt.Errorf("--output must be text or json, got %q", f.output)
	case f.fenceExpiry < time.Hour:
		return fmt.Errorf("--fence-expiry must be at least 1h, got %s", f.fenceExpiry)
	}
	return nil
}

// newHolderBackend picks the driver's holder.Backend. This is the hook for
// the ChubaoFS driver: implement holder.Backend in pkg/cfs, add its flags
// in holderFlags.add and return it from the driverCFS case.
func newHolderBackend(f *holderFlags) (holder.Backend, error) {
	switch f.driver {
	case driverRBD:
		return rbd.NewHolderAdmin(rbd.HolderAdminOptions{
			ClusterConfig: f.clusterConfig, SecretDir: f.secretDir, FenceExpiry: f.fenceExpiry,
		})
	case driverCFS:
		return cfs.NewHolderAdmin(cfs.HolderAdminOptions{
			Masters: f.cfsMasters, SecretDir: f.secretDir, ClientPath: f.cfsClient,
		})
	case "":
		return nil, errors.New("--driver is required (rbd or cfs)")
	}
	return nil, fmt.Errorf("--driver must be rbd or cfs, got %q", f.driver)
}

func runHolderAction(ctx context.Context, b holder.Backend, action string, f *holderFlags) (*holder.Report, error) {
	if action == "show" {
		return b.Show(ctx, f.volumeID)
	}
	return b.Release(ctx, f.volumeID, holder.ReleaseOptions{
		Force: f.force, Node: f.node,
		Progress: func(msg string) { fmt.Fprintln(os.Stderr, "tkestor-csi holder:", msg) },
	})
}

func printReport(w io.Writer, rep *holder.Report, output string) error {
	if output == "json" {
		return rep.WriteJSON(w)
	}
	return rep.WriteText(w, time.Now())
}

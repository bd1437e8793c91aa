// Command cfs-master-emulator serves the TEST-ONLY ChubaoFS/CubeFS master
// emulator (package tests/cfs/emulator) over HTTP, for tests that run the
// driver as a separate process. It is not a ChubaoFS master: it keeps
// volume records only and has no meta or data nodes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// options are the command-line settings.
type options struct {
	listen string
	emu    emulator.Options
}

// parseFlags turns args into options; errors name the bad flag.
func parseFlags(args []string) (options, error) {
	var o options
	var numbering, deleteMode string
	fs := flag.NewFlagSet("cfs-master-emulator", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:17010", "address to serve the master API on")
	fs.StringVar(&numbering, "numbering", "3.5", "error-code numbering: 3.5, 3.3.2 or 2.x")
	fs.StringVar(&deleteMode, "delete", "direct", "vol/delete behaviour: direct or delayed")
	fs.StringVar(&o.emu.StateFile, "state-file", "", "JSON file to persist state in (shared across processes)")
	fs.StringVar(&o.emu.ClusterName, "cluster-name", "cfs-emulator", "cluster name")
	fs.Uint64Var(&o.emu.CapacityGiB, "capacity-gib", 1024, "total datanode capacity getCluster reports (not enforced)")
	fs.IntVar(&o.emu.DataNodes, "data-nodes", 3, "datanodes claimed; createVol with more replicas fails")
	fs.DurationVar(&o.emu.PurgeAfter, "purge-after", 10*time.Second, "how long a directly deleted volume lingers with Status 1")
	fs.DurationVar(&o.emu.DeleteDelay, "delete-delay", 48*time.Hour, "how long a delayed-deleted volume stays forbidden")
	fs.StringVar(&o.emu.DataRoot, "data-root", "", "cfs-client stand-in data root: measure used space there, remove data on purge")
	klog.InitFlags(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.emu.Numbering = emulator.Numbering(numbering)
	o.emu.Delete = emulator.DeleteMode(deleteMode)
	return o, o.emu.Validate()
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cfs-master-emulator: %v\n", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		klog.ErrorS(err, "Emulator stopped")
		os.Exit(1)
	}
}

// run serves until SIGINT/SIGTERM.
func run(o options) error {
	emu, err := emulator.New(o.emu)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	klog.InfoS("Serving ChubaoFS master emulator", "address", ln.Addr().String(),
		"numbering", o.emu.Numbering, "delete", o.emu.Delete, "stateFile", o.emu.StateFile)

	srv := &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		emu.Close() // release hung requests so Shutdown can finish
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

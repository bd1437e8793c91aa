// Command tkestor-csi is two CSI drivers in one binary: Ceph RBD block
// volumes (--driver=rbd) and ChubaoFS file volumes (--driver=cfs).
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

	"k8s.io/klog/v2"

	"github.com/tkestack/tkestor-csi/pkg/cfs"
	"github.com/tkestack/tkestor-csi/pkg/common/metrics"
	"github.com/tkestack/tkestor-csi/pkg/common/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev" //nolint:gochecknoglobals // set by the linker

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "holder" {
		return runHolder(args[1:])
	}
	opts, err := parseOptions(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tkestor-csi:", err)
		return 2
	}
	setupLogging(opts.LoggingFormat)
	defer klog.Flush()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, opts); err != nil {
		klog.ErrorS(err, "Plugin failed", "driver", opts.Driver, "mode", opts.Mode)
		return 1
	}
	return 0
}

func parseOptions(args []string) (*Options, error) {
	fs := flag.NewFlagSet("tkestor-csi", flag.ContinueOnError)
	klog.InitFlags(fs)
	opts := &Options{}
	var mode string
	opts.addFlags(fs, &mode)
	// A bad flag is one line on stderr (printed by run), not the usage.
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stderr)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := opts.Validate(mode); err != nil {
		return nil, err
	}
	return opts, nil
}

func serve(ctx context.Context, opts *Options) error {
	klog.InfoS("Starting", "driver", opts.Driver, "driverName", opts.DriverName,
		"mode", opts.Mode, "nodeID", opts.NodeID, "version", version)
	srvOpts := server.Options{
		Endpoint:    opts.Endpoint,
		RPCTimeout:  opts.RPCTimeout,
		StopTimeout: 30 * time.Second,
	}
	if opts.Driver == driverCFS {
		srvOpts.RedactKeys = cfs.SensitiveKeys()
	}
	var rec *metrics.Recorder
	if opts.MetricsAddress != "" {
		rec = metrics.NewRecorder(opts.Driver)
		srvOpts.Interceptors = append(srvOpts.Interceptors, rec.Interceptor())
	}

	backend, err := newBackend(opts, rec)
	if err != nil {
		return err
	}
	defer backend.Close()

	if rec != nil {
		stopMetrics, err := rec.Serve(opts.MetricsAddress, backend.Ready)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	return server.New(srvOpts, backend.Services()).Run(ctx)
}

// Command csi-bench is a load generator for CSI drivers. It speaks CSI to
// any endpoint (ours or another driver's), runs N operations at
// concurrency C per phase (CreateVolume, CreateSnapshot, DeleteSnapshot,
// DeleteVolume, NodeStage+NodePublish, NodeUnpublish+NodeUnstage), samples
// the plugin processes' memory and threads from /proc, and measures the
// same work done directly (go-ceph on one connection; rbd-fuse, losetup,
// mkfs and mount by hand) so that every figure has a floor beside it.
// tests/bench/run.sh runs it against tkestor-csi; README.md says how to
// point it at another driver.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/tkestack/tkestor-csi/tests/bench/procstat"
	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o, err := parseOptions(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "csi-bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	rep, err := benchmark(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "csi-bench:", err)
		return 1
	}
	if o.JSON {
		if err := writeJSON(os.Stdout, rep); err != nil {
			return 1
		}
	} else if err := writeTable(os.Stdout, rep); err != nil {
		return 1
	}
	if len(rep.Leftovers) > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "csi-bench %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func benchmark(ctx context.Context, o *Options) (*report, error) {
	rep := &report{
		Started: time.Now(), Endpoint: o.Endpoint, NodeEndpoint: o.NodeEndpoint, CPUs: cpus(),
		LoadStart: loadAvg(), Count: o.Count, NodeCount: o.NodeCount, Rounds: o.Rounds, SizeBytes: o.Size,
		Floor: "none (--floor=false)",
	}
	ctrl, node, err := dialBoth(ctx, o)
	if err != nil {
		return nil, err
	}
	defer closeAll(ctrl, node)
	info, err := ctrl.Identity.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil {
		return nil, fmt.Errorf("GetPluginInfo: %w", err)
	}
	rep.Driver = info.GetName() + " " + info.GetVendorVersion()

	b := &bench{o: o, ours: newOurs(ctrl, node, o), ledger: newLedger(), selfPID: os.Getpid(), progress: logf}
	if err := b.ours.discover(ctx, o.Phases[phaseNode]); err != nil {
		return nil, err
	}
	if o.Floor {
		if b.floor, err = newFloor(o); err != nil {
			return nil, fmt.Errorf("floor: %w", err)
		}
		defer b.floor.close()
		rep.Floor = fmt.Sprintf("go-ceph, one connection as %s, pool %s, %d MiB layering images",
			floorUser(o.Secrets), o.Pool, o.Size>>20)
		if b.floor.mounter != nil {
			rep.Floor += "; hand-run rbd-fuse+losetup+blkid+mkfs.ext4+mount+bind (the userspace mapper's steps)"
		}
	}

	var idle idleReadings
	settle(ctx, o.Settle)
	idle.ctrlStart, idle.nodeStart = b.readIdle(&idle, false)
	logf("start: prefix %s, controller idle %s, node idle %s", o.NamePrefix, idleText(idle.ctrlStart),
		idleText(idle.nodeStart))

	b.runAll(ctx)

	logf("cleaning up")
	rep.Leftovers = b.ledger.cleanup(o.Timeout)
	rep.Leftovers = append(rep.Leftovers, b.floorLeftovers()...)
	settle(context.Background(), o.Settle)
	idle.ctrlEnd, idle.nodeEnd = b.readIdle(&idle, true)

	rep.Rows = b.buildRows()
	rep.Processes = b.processes(idle, rep.Rows)
	rep.Notes = append(rep.Notes, idle.errs...)
	rep.Checks = b.checks(rep.Rows, rep.Processes)
	rep.LoadEnd = loadAvg()
	rep.Elapsed = time.Since(rep.Started).Round(time.Second).String()
	if ctx.Err() != nil {
		rep.Leftovers = append(rep.Leftovers, "run interrupted: figures are partial")
	}
	return rep, nil
}

func dialBoth(ctx context.Context, o *Options) (ctrl, node *csiclient.Client, err error) {
	if ctrl, err = dialReady(ctx, o.Endpoint); err != nil {
		return nil, nil, err
	}
	if o.NodeEndpoint == o.Endpoint {
		// A second connection to the same socket keeps Close simple.
		if node, err = dialReady(ctx, o.Endpoint); err != nil {
			closeAll(ctrl)
			return nil, nil, err
		}
		return ctrl, node, nil
	}
	if node, err = dialReady(ctx, o.NodeEndpoint); err != nil {
		closeAll(ctrl)
		return nil, nil, err
	}
	return ctrl, node, nil
}

// closeAll closes client connections; a failed close changes nothing for
// a benchmark that is done with them.
func closeAll(clients ...*csiclient.Client) {
	for _, c := range clients {
		_ = c.Close()
	}
}

// dialReady connects and waits (up to a minute) for Probe to say ready.
func dialReady(ctx context.Context, endpoint string) (*csiclient.Client, error) {
	c, err := csiclient.Dial(endpoint)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = c.Ready(pctx)
		cancel()
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			closeAll(c)
			return nil, fmt.Errorf("probe %s: %w", endpoint, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *bench) readIdle(idle *idleReadings, end bool) (ctrlSt, nodeSt *procstat.Status) {
	if idle.pss == nil {
		idle.pss = map[pssKey]uint64{}
	}
	if idle.goRT == nil {
		idle.goRT = map[pssKey]*procstat.GoRuntime{}
	}
	for _, t := range []struct {
		pid int
		url string
	}{{b.o.ControllerPID, b.o.CtrlMetrics}, {b.o.NodePID, b.o.NodeMetrics}} {
		if t.pid <= 0 {
			continue
		}
		if v, err := procstat.PSS(t.pid); err == nil {
			idle.pss[pssKey{t.pid, end}] = v
		}
		if t.url != "" {
			g, err := procstat.ReadGoRuntime(context.Background(), t.url)
			if err != nil {
				idle.errs = append(idle.errs, err.Error())
				continue
			}
			idle.goRT[pssKey{t.pid, end}] = &g
		}
	}
	var err error
	if ctrlSt, err = idleStatus(b.o.ControllerPID); err != nil {
		idle.errs = append(idle.errs, err.Error())
	}
	if nodeSt, err = idleStatus(b.o.NodePID); err != nil {
		idle.errs = append(idle.errs, err.Error())
	}
	return ctrlSt, nodeSt
}

// floorLeftovers lists images in the pool that carry this run's prefix,
// after purging such images from the trash.
func (b *bench) floorLeftovers() []string {
	if b.floor == nil {
		return nil
	}
	names, err := b.floor.ceph.ListImages()
	if err != nil {
		return []string{"list images: " + err.Error()}
	}
	var left []string
	for _, n := range names {
		if strings.HasPrefix(n, b.o.NamePrefix) {
			left = append(left, "image "+n)
		}
	}
	trashed, err := b.floor.ceph.PurgeTrash(b.o.NamePrefix)
	if err != nil {
		return append(left, "list trash: "+err.Error())
	}
	for _, n := range trashed {
		left = append(left, "trashed image "+n)
	}
	return left
}

func idleText(st *procstat.Status) string {
	if st == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB/%d threads", mib(st.RSS), st.Threads)
}

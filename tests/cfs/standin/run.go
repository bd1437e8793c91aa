package standin

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Exit codes, as the real client uses them.
const (
	ExitOK     = 0 // mounted (daemon parent), or unmounted cleanly (-f)
	ExitFailed = 1 // "Mount failed: ..." (parent) or any failure (child)
	ExitUsage  = 2 // bad command-line flag
)

// Version is what -v prints.
const Version = "cfs-client-standin: TEST STAND-IN for cfs-client (not a ChubaoFS client)\n"

// flags are the real client's flags; -n, -r, -s and -p (fd hand-over on
// upgrade) are accepted and ignored.
type flags struct {
	config     string
	foreground bool
	version    bool
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fl := flag.NewFlagSet("cfs-client", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.StringVar(&f.config, "c", "", "FUSE client config file")
	fl.BoolVar(&f.foreground, "f", false, "run foreground")
	fl.BoolVar(&f.version, "v", false, "show version")
	fl.Bool("n", false, "ignored (dynamic unix socket name)")
	fl.Bool("r", false, "ignored (restore FUSE)")
	fl.String("s", "", "ignored (restore socket address)")
	fl.String("p", "", "ignored (fuse http service port)")
	return f, fl.Parse(args)
}

// Main runs the stand-in with args (without the program name) and returns
// the exit code. Without -f it daemonises and returns once the child has
// mounted (0) or failed (1, after printing "Mount failed: ...").
func Main(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		return ExitUsage
	}
	if f.version {
		fmt.Fprint(stdout, Version)
		return ExitOK
	}
	if !f.foreground {
		if err := startDaemon(args, f.config, stdout); err != nil {
			fmt.Fprintf(stdout, "Mount failed: %v\n", err)
			return ExitFailed
		}
		return ExitOK
	}
	return runForeground(f.config, stdout)
}

// runForeground is the daemon child (or a -f run): prepare, mount, report,
// serve until unmounted.
func runForeground(configFile string, stdout io.Writer) int {
	rp := newReporter()
	c, err := prepare(configFile)
	if err != nil {
		fmt.Fprintln(stdout, err)
		var silent noOutcomeError
		if !errors.As(err, &silent) {
			rp.signal(err)
		}
		return ExitFailed
	}
	defer c.logFile.Close()

	srv, err := c.mount()
	if err != nil {
		err = fmt.Errorf("[fuse.go 543] mount failed: %v", err)
		c.log.Print(err)
		rp.signal(err)
		return ExitFailed
	}
	c.writePID()
	rp.signal(nil)
	c.log.Printf("mounted vol %s on %s", c.cfg.VolName, c.cfg.MountPoint)

	exitOnSignal(c.log, c.cfg.MountPoint)
	go c.watchMaster()
	srv.Wait()
	c.log.Print("exit normally")
	return ExitOK
}

// exitOnSignal mimics the real client: SIGINT/SIGTERM exit 1 at once,
// without unmounting, which leaves a dead ("transport endpoint is not
// connected") mount behind.
func exitOnSignal(l *log.Logger, mountPoint string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		l.Printf("Killed due to a received signal (%v)[%d-%v]", sig, os.Getpid(), mountPoint)
		os.Exit(ExitFailed)
	}()
}

// writePID records the daemon's PID where the real client does:
// <logDir>/client/fuseclient.pid.
func (c *client) writePID() {
	path := filepath.Join(c.cfg.ResolvedLogDir(), "client", "fuseclient.pid")
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		c.log.Printf("write pid file: %v", err)
	}
}

// watchMaster re-reads the volume like the mounted real client: every conf
// interval it exits (leaving a dead mount) if the volume is gone or marked
// deleted; every statfs interval it refreshes the capacity.
func (c *client) watchMaster() {
	conf := time.NewTicker(envDuration(EnvConfInterval, 2*time.Minute))
	defer conf.Stop()
	statfs := time.NewTicker(envDuration(EnvStatfsInterval, 5*time.Minute))
	defer statfs.Stop()
	for {
		select {
		case <-conf.C:
			c.checkVolume()
		case <-statfs.C:
			c.refreshQuota()
		}
	}
}

// checkVolume exits the process if the master says the volume is gone.
func (c *client) checkVolume() {
	vol, err := c.mc.getVol(c.cfg.VolName)
	var apiErr *apiError
	switch {
	case errors.As(err, &apiErr) && apiErr.Msg == msgVolNotExists:
		c.log.Printf("volume %v not exist, stop client", c.cfg.VolName)
	case err == nil && vol.Status == volStatusMarkDelete:
		c.log.Printf("vol [%s] has been deleted, stop client", c.cfg.VolName)
	default:
		return
	}
	os.Exit(ExitFailed)
}

// envDuration reads a Go duration from the environment, or def.
func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil && d > 0 {
		return d
	}
	return def
}

package standin

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

const (
	msgVolNotExists     = "vol not exists"
	msgNameRegexp       = "name can only be number and letters"
	volStatusMarkDelete = 1
	masterRetries       = 5
	defaultSubtype      = "cubefs"
)

// client is a configured stand-in between preparation and mount.
type client struct {
	cfg     *Config
	mc      *masterClient
	log     *log.Logger
	logFile *os.File
	quota   *quota
}

// prepare does what the real client does before mounting, in its order:
// parse the config, read the volume from the master (with retries), open
// the log, create the mount point, check it is not mounted, then open the
// volume with the owner's auth key.
func prepare(configFile string) (*client, error) {
	cfg, err := LoadConfig(configFile)
	if err != nil {
		return nil, fmt.Errorf("parse mount opt failed: %v", err)
	}
	c := &client{cfg: cfg, mc: newMasterClient(cfg.Masters()), quota: &quota{}}
	if err := c.loadConfFromMaster(); err != nil {
		return nil, fmt.Errorf("[fuse.go 393] parse mount opt from master failed: %v", err)
	}
	if err := c.openLog(); err != nil {
		return nil, fmt.Errorf("Init log dir fail: %v", err)
	}
	if _, err := os.Stat(cfg.MountPoint); err != nil {
		if err := os.Mkdir(cfg.MountPoint, os.ModePerm); err != nil {
			// The real client exits here without reporting to its parent.
			return nil, noOutcomeError{fmt.Errorf("Init.MountPoint mkdir failed error %v", err)}
		}
	}
	if err := c.openVolume(); err != nil {
		c.log.Print(err)
		return nil, fmt.Errorf("[fuse.go 543] mount failed: %v", err)
	}
	return c, nil
}

// loadConfFromMaster reads /admin/getVol, retrying five times with growing
// sleeps unless the volume does not exist or its name is invalid.
func (c *client) loadConfFromMaster() error {
	unit := envDuration(EnvRetryUnit, 5*time.Second)
	var err error
	for attempt := 1; attempt <= masterRetries; attempt++ {
		_, err = c.mc.getVol(c.cfg.VolName)
		var apiErr *apiError
		if err == nil || (errors.As(err, &apiErr) &&
			(apiErr.Msg == msgVolNotExists || apiErr.Msg == msgNameRegexp)) {
			return err
		}
		time.Sleep(unit * time.Duration(attempt))
	}
	return err
}

// openLog opens <logDir>/client/output.log.
func (c *client) openLog() error {
	dir := filepath.Join(c.cfg.ResolvedLogDir(), "client")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "output.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	c.logFile = f
	c.log = log.New(f, "", log.LstdFlags|log.Lmicroseconds)
	c.log.Printf("cfs-client-standin starting: vol %s mountPoint %s", c.cfg.VolName, c.cfg.MountPoint)
	return nil
}

// openVolume checks the mount point is free, then asks /client/vol with
// md5(owner) as the meta wrapper does, and reads the capacity.
func (c *client) openVolume() error {
	mounted, err := isMounted(c.cfg.MountPoint)
	if err != nil {
		return err
	}
	if mounted {
		return fmt.Errorf("mountpoint:%v has been mounted", c.cfg.MountPoint)
	}
	vol, err := c.mc.clientVol(c.cfg.VolName, emulator.AuthKey(c.cfg.Owner))
	if err == nil && vol.Status == volStatusMarkDelete {
		err = errors.New(msgVolNotExists) // the client treats Status 1 as missing
	}
	if err != nil {
		return fmt.Errorf("[super.go 138] NewMetaWrapper failed!%v :: %v", err, err)
	}
	c.refreshQuota()
	return nil
}

// refreshQuota reads the capacity and usage statfs reports.
func (c *client) refreshQuota() {
	st, err := c.mc.volStat(c.cfg.VolName)
	if err != nil {
		if c.log != nil {
			c.log.Printf("volStat: %v", err)
		}
		return
	}
	c.quota.total.Store(st.TotalSize)
	c.quota.used.Store(st.UsedSize)
}

// mount serves <data root>/<vol>[/<subdir>] on the mount point.
func (c *client) mount() (*fuse.Server, error) {
	volDir := filepath.Join(c.cfg.ResolvedDataRoot(), c.cfg.VolName)
	if err := os.MkdirAll(volDir, 0o755); err != nil {
		return nil, fmt.Errorf("create backing directory: %v", err)
	}
	backing := volDir
	if c.cfg.SubDir != "" {
		// Clean under "/" so "../x" cannot leave the volume.
		backing = filepath.Join(volDir, filepath.Clean("/"+c.cfg.SubDir))
		if fi, err := os.Stat(backing); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("lookup subdir(%s) failed: %v", c.cfg.SubDir, errNotDir(err))
		}
	}
	return mountLoopback(mountSpec{
		mountPoint: c.cfg.MountPoint, backing: backing, source: c.source(),
		subtype: subtype(), readOnly: c.cfg.Rdonly, quota: c.quota,
	})
}

// source is fileSystemName, else <subtype>-<vol>.
func (c *client) source() string {
	if c.cfg.FileSystemName != "" {
		return c.cfg.FileSystemName
	}
	return subtype() + "-" + c.cfg.VolName
}

// subtype is EnvSubtype or "cubefs".
func subtype() string {
	if s := strings.TrimSpace(os.Getenv(EnvSubtype)); s != "" {
		return s
	}
	return defaultSubtype
}

func errNotDir(err error) error {
	if err != nil {
		return err
	}
	return errors.New("not a directory")
}

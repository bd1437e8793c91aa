package emulator

import (
	"fmt"
	"time"
)

// DeleteMode selects how /vol/delete behaves, as the master config
// enableDirectDeleteVol does on a real master.
type DeleteMode string

const (
	// DeleteDirect marks the volume (Status 1) and purges it after
	// Options.PurgeAfter: 2.x up to 3.3.1, or 3.3.2+ with
	// enableDirectDeleteVol=true. A repeated delete is "no vol policy".
	DeleteDirect DeleteMode = "direct"
	// DeleteDelayed forbids the volume (Status 1, Forbidden) and purges it
	// after Options.DeleteDelay (48 h on a real master): the 3.3.2+
	// default. A repeated delete is code 8; delete=false undeletes.
	DeleteDelayed DeleteMode = "delayed"
)

// Options configures an Emulator. The zero value is completed by defaults.
type Options struct {
	// Numbering picks the release whose error codes are spoken.
	Numbering Numbering
	// Delete picks direct or delayed deletion.
	Delete DeleteMode
	// ClusterName appears in getCluster, getIp and wrapped error texts.
	ClusterName string
	// CapacityGiB is the total datanode space reported by getCluster.
	// It is not enforced: a real master over-provisions freely.
	CapacityGiB uint64
	// DataNodes is how many datanodes the fake cluster claims. A createVol
	// with replicaNum above it fails as on the real master (code 1, and a
	// half-made volume left in Status 1 until purged).
	DataNodes int
	// PurgeAfter is how long a directly deleted (or half-made) volume stays
	// visible with Status 1. The real master took 7-20 s.
	PurgeAfter time.Duration
	// DeleteDelay is how long a delayed-deleted volume stays forbidden.
	DeleteDelay time.Duration
	// StateFile, when set, persists the state as JSON under a file lock, so
	// restarts and several emulator processes share one cluster.
	StateFile string
	// DataRoot, when set, is the cfs-client stand-in's data root: used
	// space is measured under DataRoot/<vol>, and a purge removes it.
	DataRoot string
	// Now is the clock; tests may replace it. Defaults to time.Now.
	Now func() time.Time
}

const (
	defaultClusterName = "cfs-emulator"
	defaultCapacityGiB = 1024
	defaultDataNodes   = 3
	defaultPurgeAfter  = 10 * time.Second
	defaultDeleteDelay = 48 * time.Hour
)

// withDefaults returns a copy of o with every unset field filled in.
func (o Options) withDefaults() Options {
	if o.Numbering == "" {
		o.Numbering = Numbering35
	}
	if o.Delete == "" {
		o.Delete = DeleteDirect
	}
	if o.ClusterName == "" {
		o.ClusterName = defaultClusterName
	}
	if o.CapacityGiB == 0 {
		o.CapacityGiB = defaultCapacityGiB
	}
	if o.DataNodes == 0 {
		o.DataNodes = defaultDataNodes
	}
	if o.PurgeAfter == 0 {
		o.PurgeAfter = defaultPurgeAfter
	}
	if o.DeleteDelay == 0 {
		o.DeleteDelay = defaultDeleteDelay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports the first option that no real master release could have.
func (o Options) Validate() error {
	o = o.withDefaults()
	cs, ok := codeSets[o.Numbering]
	if !ok {
		return fmt.Errorf("unknown numbering %q (want 3.5, 3.3.2 or 2.x)", o.Numbering)
	}
	switch o.Delete {
	case DeleteDirect:
	case DeleteDelayed:
		// Delayed deletion arrived in 3.3.2, together with code 8.
		if cs.volHasDeleted == 0 {
			return fmt.Errorf("delete mode delayed needs numbering 3.3.2 or 3.5, not %q", o.Numbering)
		}
	default:
		return fmt.Errorf("unknown delete mode %q (want direct or delayed)", o.Delete)
	}
	if o.DataNodes < 1 {
		return fmt.Errorf("data nodes must be at least 1, got %d", o.DataNodes)
	}
	if o.PurgeAfter < 0 || o.DeleteDelay < 0 {
		return fmt.Errorf("purge and delete delays must not be negative")
	}
	return nil
}

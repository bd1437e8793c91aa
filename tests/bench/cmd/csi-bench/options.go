package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tkestack/tkestor-csi/tests/csiclient"
)

// Options are the benchmark's settings, parsed from flags and validated
// once before anything runs.
type Options struct {
	Endpoint      string
	NodeEndpoint  string
	Count         int
	Concurrency   []int
	NodeCount     int
	NodeConc      []int
	Rounds        int
	Phases        map[string]bool
	Size          int64
	Params        map[string]string
	SnapParams    map[string]string
	Secrets       map[string]string
	FsType        string
	NamePrefix    string
	WorkDir       string
	Timeout       time.Duration
	ControllerPID int
	NodePID       int
	Sample        time.Duration
	Settle        time.Duration
	JSON          bool

	Floor         bool
	FloorMount    bool
	ClusterConfig string
	ClusterID     string
	Pool          string
	RbdFuse       string
	OSDSocket     string
	MonSocket     string
	CtrlMetrics   string
	NodeMetrics   string
}

// Phase groups selectable with --phases.
const (
	phaseVolume   = "volume"   // CreateVolume and DeleteVolume
	phaseSnapshot = "snapshot" // CreateSnapshot and DeleteSnapshot
	phaseNode     = "node"     // stage+publish and unpublish+unstage
	// phasePrims times go-ceph building blocks (image open, metadata
	// write, lock) one by one, to explain the controller figures.
	phasePrims = "primitives"
)

// provisionerPrefix marks StorageClass keys the external-provisioner
// consumes itself and never passes to CreateVolume.
const provisionerPrefix = "csi.storage.k8s.io/"

type rawOptions struct {
	params, paramsFile, snapParams, snapParamsFile, secretsFile string
	conc, nodeConc, phases, size                                string
}

func parseOptions(args []string) (*Options, error) {
	fs := flag.NewFlagSet("csi-bench", flag.ContinueOnError)
	o := &Options{}
	var raw rawOptions
	fs.StringVar(&o.Endpoint, "endpoint", "", "controller endpoint, unix:///path or tcp://127.0.0.1:port")
	fs.StringVar(&o.NodeEndpoint, "node-endpoint", "", "node plugin endpoint (default: --endpoint)")
	fs.IntVar(&o.Count, "count", 100, "operations per controller phase (N)")
	fs.StringVar(&raw.conc, "concurrency", "1,8,32", "comma-separated concurrency levels (C)")
	fs.IntVar(&o.NodeCount, "node-count", 10, "volumes per node phase (each stage mounts for real)")
	fs.StringVar(&raw.nodeConc, "node-concurrency", "1", "concurrency levels of the node phase")
	fs.IntVar(&o.Rounds, "rounds", 1, "rounds per level; ours and the floor alternate which goes first")
	fs.StringVar(&raw.phases, "phases", "volume,snapshot,node", "phase groups: volume, snapshot, node, primitives")
	fs.StringVar(&raw.size, "size", "1Gi", "volume size (bytes, or with Mi/Gi suffix)")
	fs.StringVar(&raw.params, "parameters", "", "StorageClass parameters, k=v,k=v")
	fs.StringVar(&raw.paramsFile, "parameters-file", "", "StorageClass parameters, a JSON object")
	fs.StringVar(&raw.snapParams, "snapshot-parameters", "", "VolumeSnapshotClass parameters, k=v,k=v")
	fs.StringVar(&raw.snapParamsFile, "snapshot-parameters-file", "", "VolumeSnapshotClass parameters, JSON")
	fs.StringVar(&raw.secretsFile, "secrets-file", "", "secrets for every call: a JSON object in a 0600 file")
	fs.StringVar(&o.FsType, "fstype", "",
		"filesystem of the node phase (default: the csi.storage.k8s.io/fstype parameter, else ext4)")
	fs.StringVar(&o.NamePrefix, "name-prefix", "",
		"prefix of every volume, snapshot and image name (default csibench-RANDOM)")
	fs.StringVar(&o.WorkDir, "work-dir", "", "private directory for staging and target paths (node phase)")
	fs.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "deadline of each call")
	fs.IntVar(&o.ControllerPID, "controller-pid", 0, "PID of the controller plugin, to sample RSS and threads")
	fs.IntVar(&o.NodePID, "node-pid", 0, "PID of the node plugin, to sample RSS and threads")
	fs.DurationVar(&o.Sample, "sample-interval", 10*time.Millisecond, "how often /proc is read during a phase")
	fs.DurationVar(&o.Settle, "settle", 3*time.Second, "wait before the idle RSS readings")
	fs.BoolVar(&o.JSON, "json", false, "print JSON instead of the table")
	fs.BoolVar(&o.Floor, "floor", true, "also measure the floor: go-ceph directly, and the hand-run mount path")
	fs.BoolVar(&o.FloorMount, "floor-mount", true, "include the hand-run mount path in the floor")
	fs.StringVar(&o.ClusterConfig, "cluster-config", "", "ceph-csi style cluster list (monitors for the floor)")
	fs.StringVar(&o.ClusterID, "cluster-id", "", "cluster of the floor (default: the clusterID parameter)")
	fs.StringVar(&o.Pool, "pool", "", "pool of the floor (default: the pool parameter)")
	fs.StringVar(&o.RbdFuse, "rbd-fuse", "rbd-fuse", "rbd-fuse binary of the floor's mount path")
	fs.StringVar(&o.OSDSocket, "osd-admin-socket", "",
		"admin socket of the OSD: count OSD operations per call (a one-OSD test cluster)")
	fs.StringVar(&o.MonSocket, "mon-admin-socket", "",
		"admin socket of the monitor: count Paxos commits per call")
	fs.StringVar(&o.CtrlMetrics, "controller-metrics-url", "",
		"the controller's Prometheus endpoint (http://127.0.0.1:PORT/metrics): Go runtime memory at idle")
	fs.StringVar(&o.NodeMetrics, "node-metrics-url", "", "the node plugin's Prometheus endpoint")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := o.complete(raw); err != nil {
		return nil, err
	}
	return o, o.validate()
}

// complete turns the raw strings into typed settings and reads the files.
func (o *Options) complete(raw rawOptions) error {
	var err error
	if o.Concurrency, err = parseInts(raw.conc); err != nil {
		return fmt.Errorf("--concurrency: %w", err)
	}
	if o.NodeConc, err = parseInts(raw.nodeConc); err != nil {
		return fmt.Errorf("--node-concurrency: %w", err)
	}
	if o.Size, err = parseSize(raw.size); err != nil {
		return fmt.Errorf("--size: %w", err)
	}
	o.Phases = map[string]bool{}
	for _, p := range strings.Split(raw.phases, ",") {
		if p != phaseVolume && p != phaseSnapshot && p != phaseNode && p != phasePrims {
			return fmt.Errorf("--phases: unknown phase group %q", p)
		}
		o.Phases[p] = true
	}
	if o.Params, err = readParams(raw.params, raw.paramsFile); err != nil {
		return fmt.Errorf("parameters: %w", err)
	}
	if o.SnapParams, err = readParams(raw.snapParams, raw.snapParamsFile); err != nil {
		return fmt.Errorf("snapshot parameters: %w", err)
	}
	if o.Secrets, err = readSecrets(raw.secretsFile); err != nil {
		return err
	}
	if o.FsType == "" {
		o.FsType = o.Params[provisionerPrefix+"fstype"]
	}
	if o.FsType == "" {
		o.FsType = "ext4"
	}
	o.Params = withoutPrefix(o.Params, provisionerPrefix)
	if o.NodeEndpoint == "" {
		o.NodeEndpoint = o.Endpoint
	}
	if o.ClusterID == "" {
		o.ClusterID = o.Params["clusterID"]
	}
	if o.Pool == "" {
		o.Pool = o.Params["pool"]
	}
	if o.NamePrefix == "" {
		o.NamePrefix = "csibench-" + randomHex(4)
	}
	return nil
}

func (o *Options) validate() error {
	switch {
	case o.Endpoint == "":
		return errors.New("--endpoint is required")
	case o.Count < 1 || o.NodeCount < 1 || o.Rounds < 1:
		return errors.New("--count, --node-count and --rounds must be at least 1")
	case o.Phases[phaseNode] && o.WorkDir == "":
		return errors.New("the node phase needs --work-dir")
	case o.Floor && (o.ClusterConfig == "" || o.ClusterID == "" || o.Pool == ""):
		return errors.New("the floor needs --cluster-config, a cluster ID and a pool (or --floor=false)")
	case o.Phases[phasePrims] && !o.Floor:
		return errors.New("the primitives phase needs the floor's connection (--floor)")
	case o.Floor && floorUser(o.Secrets) == "":
		return errors.New("the floor needs userID/userKey (or adminID/adminKey) in --secrets-file")
	}
	return nil
}

// readParams merges a JSON file and k=v pairs; the pairs win.
func readParams(pairs, file string) (map[string]string, error) {
	params := map[string]string{}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(data, &params); err != nil {
			return nil, fmt.Errorf("%s: not a JSON object of strings", file)
		}
	}
	kv, err := csiclient.ParseParams(pairs)
	if err != nil {
		return nil, err
	}
	for k, v := range kv {
		params[k] = v
	}
	return params, nil
}

// readSecrets reads the secrets file, refusing one that others may read:
// secrets never come from argv, and never from a world-readable file.
func readSecrets(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--secrets-file %s: mode %o, want 0600", path, fi.Mode().Perm())
	}
	return csiclient.ReadSecrets(path)
}

// floorUser returns the cephx user and key the floor connects as.
func floorUser(secrets map[string]string) string {
	if secrets["userID"] != "" && secrets["userKey"] != "" {
		return secrets["userID"]
	}
	if secrets["adminID"] != "" && secrets["adminKey"] != "" {
		return secrets["adminID"]
	}
	return ""
}

func floorKey(secrets map[string]string) string {
	if secrets["userID"] != "" && secrets["userKey"] != "" {
		return secrets["userKey"]
	}
	return secrets["adminKey"]
}

func withoutPrefix(m map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if !strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40} {
		if rest, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = rest, m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return fmt.Sprintf("%x", time.Now().UnixNano()&0xffffffff)
	}
	return hex.EncodeToString(b)
}

package main

// Reference figures from the issue, measured on the reference machine:
// the bare go-ceph floor, and ceph-csi v3.12 on the same cluster.
var (
	refFloorCreate  = map[int]float64{1: 180, 8: 310, 32: 270} //nolint:gochecknoglobals // constant table
	refDriverCreate = map[int]float64{1: 64, 8: 124, 32: 75}   //nolint:gochecknoglobals // constant table
	refDriverDelete = map[int]float64{1: 14, 8: 24, 32: 32}    //nolint:gochecknoglobals // constant table
)

// Reference driver memory, MiB.
const (
	refDriverIdleMiB    = 68
	refDriverPeakMinMiB = 88
	refDriverPeakMaxMiB = 128
)

// Targets of tkestor-csi.
const (
	targetCreateVsFloor   = 0.80 // CreateVolume ops/s ≥ this × the floor, at every C
	targetDeleteVsRef     = 2.0  // DeleteVolume ops/s ≥ this × the reference driver
	targetIdleMiB         = 30   // controller RSS when idle
	targetPeakMiB         = 60   // controller RSS at the highest concurrency (C=32)
	targetPeakConc        = 32
	targetStageVsFloorP50 = 1.2 // NodeStage+Publish p50 ≤ this × the hand-run path
)

// reference returns the reference figure (ops/s) printed beside a row.
func reference(k resultKey) (float64, string) {
	switch {
	case k.side == sideFloor && k.phase == phCreateVolume:
		return refFloorCreate[k.conc], "go-ceph floor, reference machine"
	case k.side == sideOurs && k.phase == phCreateVolume:
		return refDriverCreate[k.conc], "ceph-csi v3.12"
	case k.side == sideOurs && k.phase == phDeleteVolume:
		return refDriverDelete[k.conc], "ceph-csi v3.12"
	}
	return 0, ""
}

// check is one target, met or missed.
type check struct {
	Target string  `json:"target"`
	Got    string  `json:"got"`
	Want   string  `json:"want"`
	Ref    string  `json:"reference,omitempty"`
	Met    bool    `json:"met"`
	Ratio  float64 `json:"ratio,omitempty"`
}

func (c check) verdict() string {
	if c.Met {
		return "met"
	}
	return "MISSED"
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

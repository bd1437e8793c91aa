package rbd

// Failpoints between the steps of NodeStage and NodeUnstage. A crash at
// any of them, followed by a retry of the same call (or by the opposite
// call), must converge and leave nothing behind.
const (
	FPStageAfterRecord   = "rbd.stage.after-record"   // record written, nothing mapped
	FPStageAfterMap      = "rbd.stage.after-map"      // mapped and recorded, not mounted
	FPStageAfterMount    = "rbd.stage.after-mount"    // mounted, record not final
	FPUnstageAfterUmount = "rbd.unstage.after-umount" // unmounted, still mapped
	FPUnstageAfterUnmap  = "rbd.unstage.after-unmap"  // unmapped, record left
)

// NodeStageFailpoints lists the NodeStage points in order.
func NodeStageFailpoints() []string {
	return []string{FPStageAfterRecord, FPStageAfterMap, FPStageAfterMount}
}

// NodeUnstageFailpoints lists the NodeUnstage points in order.
func NodeUnstageFailpoints() []string {
	return []string{FPUnstageAfterUmount, FPUnstageAfterUnmap}
}

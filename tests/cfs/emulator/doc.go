// Package emulator is a TEST-ONLY stand-in for the ChubaoFS/CubeFS master's
// REST API, for driver tests on machines where no ChubaoFS cluster exists.
//
// It speaks the endpoints a CSI driver and cfs-client use (createVol,
// getVol, client/vol, vol/delete, vol/expand, vol/shrink, client/volStat,
// vol/list, getCluster, getIp, user/create, user/info) with the envelope,
// codes, messages and quirks recorded from a real CubeFS 3.5.3 master:
// duplicate names are code 1 with "duplicate vol" in msg, expand/shrink to
// an unchanged size is code 2, deleted volumes linger with Status 1, and
// auth-key mismatch is 34 or 32 depending on the emulated release.
//
// It has no meta or data nodes: volumes are records, capacity is
// accounting only, and nothing is replicated. Production code must never
// import this package.
//
// Use it in-process with NewTestServer (or New + httptest), or as the
// cfs-master-emulator binary. Faults (hangs, HTTP 500, non-JSON replies,
// a lost createVol reply) are injected through InjectFault or the
// /_emulator/ HTTP endpoints.
package emulator

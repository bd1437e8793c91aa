// Package standin is a TEST-ONLY stand-in for ChubaoFS/CubeFS's FUSE client
// (cfs-client), built as the cfs-client-standin binary. It exists because no
// ChubaoFS client package is available for our test machines.
//
// It takes the real client's invocation (cfs-client -c FILE, daemonising
// unless -f) and JSON config keys, asks the master (or the emulator in
// tests/cfs/emulator) about the volume and owner exactly as the real client
// does at mount time, and fails with the real client's "Mount failed: ..."
// line and exit code 1. On success it serves the volume from a plain
// directory, <data root>/<volName>, through a go-fuse loopback filesystem,
// so several mounts ("nodes") see the same files. The mount shows up as
// fuse.cubefs with source cubefs-<vol>, like the real client's.
//
// It is not a ChubaoFS client: it never talks to meta or data nodes, and
// its data lives wherever the data root is. Production code must never
// import this package.
package standin

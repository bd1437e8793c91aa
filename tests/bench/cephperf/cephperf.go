// Package cephperf reads a Ceph daemon's performance counters through its
// admin socket, so the benchmark can say how many OSD operations and
// monitor commits one CSI call cost.
package cephperf

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"time"
)

// Counters are the few counters the benchmark reports.
type Counters struct {
	// OSDOps is the OSD's client operation count ("osd"/"op").
	OSDOps uint64
	// MonCommits is the monitor's Paxos commit count ("paxos"/"commit"):
	// every map change (a pool snapshot, a blocklist entry) is one.
	MonCommits uint64
}

// Sub returns c minus an earlier reading.
func (c Counters) Sub(earlier Counters) Counters {
	return Counters{OSDOps: c.OSDOps - earlier.OSDOps, MonCommits: c.MonCommits - earlier.MonCommits}
}

// Read reads the counters from the OSD's and the monitor's admin sockets;
// an empty path skips that daemon.
func Read(osdSocket, monSocket string) (Counters, error) {
	var c Counters
	if osdSocket != "" {
		d, err := dump(osdSocket)
		if err != nil {
			return c, err
		}
		c.OSDOps = counter(d, "osd", "op")
	}
	if monSocket != "" {
		d, err := dump(monSocket)
		if err != nil {
			return c, err
		}
		c.MonCommits = counter(d, "paxos", "commit")
	}
	return c, nil
}

type perfDump map[string]map[string]json.RawMessage

func counter(d perfDump, section, name string) uint64 {
	var n uint64
	_ = json.Unmarshal(d[section][name], &n)
	return n
}

// dump sends "perf dump" on the admin socket. The protocol: the command as
// JSON and a NUL byte; the reply is a 4-byte big-endian length and JSON.
func dump(socket string) (perfDump, error) {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close() //nolint:errcheck // read-only exchange, already complete
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte(`{"prefix": "perf dump"}` + "\x00")); err != nil {
		return nil, err
	}
	var size uint32
	if err := binary.Read(conn, binary.BigEndian, &size); err != nil {
		return nil, fmt.Errorf("perf dump from %s: %w", socket, err)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(conn, body); err != nil {
		return nil, fmt.Errorf("perf dump from %s: %w", socket, err)
	}
	var d perfDump
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("perf dump from %s: %w", socket, err)
	}
	return d, nil
}

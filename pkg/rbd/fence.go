package rbd

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ceph/go-ceph/rados"
	"k8s.io/klog/v2"
)

// Fencing: before a dead holder's lock is broken, every Ceph client it is
// known to have used (its plugin's, and its mapper's that did the I/O) is
// blocklisted with `osd blocklist add ADDR/NONCE`, so a node that was only
// frozen or cut off cannot write once it comes back: the OSDs refuse its
// requests, and its watches are dropped.
//
// Only single client instances are ever blocklisted. An entry without a
// nonce (nonce 0) matches every client of that IP, and `osd blocklist
// range` a whole subnet; both would fence healthy nodes (or, on a test
// machine, the whole cluster), so they are refused here, never sent.

// clientAddrPattern is IP:PORT/NONCE, IPv4 or bracketed IPv6.
var clientAddrPattern = regexp.MustCompile( //nolint:gochecknoglobals // constant
	`^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):(\d{1,5})/(\d{1,10})$`)

// normalizeClientAddr turns a client address as Ceph prints it (in a lock
// entry "v1:127.0.0.1:0/123", in a watcher "127.0.0.1:0/123") into the form
// `osd blocklist add` takes, refusing anything that is not exactly one
// client instance.
func normalizeClientAddr(addr string) (string, error) {
	a := strings.TrimSpace(addr)
	for _, p := range []string{"v1:", "v2:", "any:"} {
		a = strings.TrimPrefix(a, p)
	}
	m := clientAddrPattern.FindStringSubmatch(a)
	if m == nil {
		return "", fmt.Errorf("%q is not a client address (IP:PORT/NONCE)", addr)
	}
	nonce, err := strconv.ParseUint(m[3], 10, 32)
	if err != nil || nonce == 0 {
		return "", fmt.Errorf("%q has no client nonce: blocklisting it would fence every client of %s", addr, m[1])
	}
	if port, err := strconv.Atoi(m[2]); err != nil || port > 65535 {
		return "", fmt.Errorf("%q has a bad port", addr)
	}
	return a, nil
}

// normalizeClientAddrs normalizes a list, dropping duplicates and empty
// entries; one bad address fails the whole list (fencing must be complete).
func normalizeClientAddrs(addrs []string) ([]string, error) {
	var out []string
	for _, a := range addrs {
		if strings.TrimSpace(a) == "" {
			continue
		}
		n, err := normalizeClientAddr(a)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	out = uniqueSorted(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("no client address known")
	}
	return out, nil
}

// monCommander is the part of a RADOS connection fencing needs.
type monCommander interface {
	MonCommand(args []byte) ([]byte, string, error)
}

var _ monCommander = (*rados.Conn)(nil)

// blocklistCmd is the monitor command `osd blocklist add ADDR EXPIRE`.
type blocklistCmd struct {
	Prefix string  `json:"prefix"`
	Op     string  `json:"blocklistop"`
	Addr   string  `json:"addr"`
	Expire seconds `json:"expire"`
}

// seconds encodes with a decimal point: the monitor parses a whole number
// like 2592000 as an integer and then refuses it for a float argument
// ("bad or missing field 'expire'").
type seconds float64

// MarshalJSON implements json.Marshaler.
func (s seconds) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(s), 'f', 1, 64)), nil
}

// fenceClients blocklists every address for expire; it stops at the
// first failure, since a takeover must not go on half fenced.
func fenceClients(mon monCommander, addrs []string, expire time.Duration) error {
	for _, a := range addrs {
		addr, err := normalizeClientAddr(a)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFenceFailed, err)
		}
		cmd, _ := json.Marshal(blocklistCmd{
			Prefix: "osd blocklist", Op: "add", Addr: addr, Expire: seconds(expire.Seconds()),
		})
		if _, info, err := mon.MonCommand(cmd); err != nil {
			if isErrno(err, syscall.EACCES) || isErrno(err, syscall.EPERM) {
				return fmt.Errorf("%w: blocklist %s: the cephx user may not run `osd blocklist add` "+
					"(give it mon 'profile rbd'): %v", ErrFenceFailed, addr, err)
			}
			return fmt.Errorf("%w: blocklist %s: %v: %s", ErrFenceFailed, addr, err, info)
		}
		klog.InfoS("Fenced Ceph client", "addr", addr, "expire", expire)
	}
	return nil
}

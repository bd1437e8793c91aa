package rbd

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNormalizeClientAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "watcher form", in: "127.0.0.1:0/3793907863", want: "127.0.0.1:0/3793907863"},
		{name: "lock entry form", in: "v1:10.1.2.3:0/42", want: "10.1.2.3:0/42"},
		{name: "msgr2", in: "v2:10.1.2.3:6800/42", want: "10.1.2.3:6800/42"},
		{name: "any", in: "any:10.1.2.3:0/42", want: "10.1.2.3:0/42"},
		{name: "ipv6", in: "[2001:db8::1]:0/77", want: "[2001:db8::1]:0/77"},
		// Nonce 0 matches every client of the IP: the whole node, or on a
		// test machine the whole cluster.
		{name: "no nonce", in: "127.0.0.1:0/0"},
		{name: "bare IP", in: "127.0.0.1"},
		{name: "CIDR", in: "127.0.0.0/8"},
		{name: "IP without port", in: "127.0.0.1/123"},
		{name: "bad port", in: "127.0.0.1:70000/1"},
		{name: "nonce too large", in: "127.0.0.1:0/99999999999"},
		{name: "garbage", in: "client.4123"},
		{name: "empty", in: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := normalizeClientAddr(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("%q accepted as %q", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestNormalizeClientAddrsIsAllOrNothing(t *testing.T) {
	t.Parallel()
	got, err := normalizeClientAddrs([]string{"v1:10.0.0.1:0/5", "10.0.0.1:0/5", "", "10.0.0.2:0/6"})
	if err != nil || strings.Join(got, ",") != "10.0.0.1:0/5,10.0.0.2:0/6" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := normalizeClientAddrs([]string{"10.0.0.1:0/5", "10.0.0.1:0/0"}); err == nil {
		t.Fatal("a list with one unfenceable address was accepted")
	}
	if _, err := normalizeClientAddrs(nil); err == nil {
		t.Fatal("an empty list was accepted")
	}
}

// fakeMon records monitor commands and fails the ones whose address is
// in fail.
type fakeMon struct {
	cmds []string
	fail string
}

func (m *fakeMon) MonCommand(args []byte) ([]byte, string, error) {
	m.cmds = append(m.cmds, string(args))
	if m.fail != "" && strings.Contains(string(args), m.fail) {
		return nil, "denied", errors.New("rados: ret=-13, Permission denied")
	}
	return nil, "", nil
}

func TestFenceClients(t *testing.T) {
	t.Parallel()
	mon := &fakeMon{}
	if err := fenceClients(mon, []string{"v1:10.0.0.1:0/5", "10.0.0.2:0/6"}, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	want := `{"prefix":"osd blocklist","blocklistop":"add","addr":"10.0.0.1:0/5","expire":2592000.0}`
	if len(mon.cmds) != 2 || mon.cmds[0] != want {
		t.Fatalf("commands %v, want first %s", mon.cmds, want)
	}

	mon = &fakeMon{fail: "10.0.0.1:0/5"}
	err := fenceClients(mon, []string{"10.0.0.1:0/5", "10.0.0.2:0/6"}, time.Hour)
	if !errors.Is(err, ErrFenceFailed) || len(mon.cmds) != 1 {
		t.Fatalf("a failed blocklist must stop the fencing: %v, %v", err, mon.cmds)
	}
	mon = &fakeMon{}
	if err := fenceClients(mon, []string{"127.0.0.1:0/0"}, time.Hour); err == nil || len(mon.cmds) != 0 {
		t.Fatalf("an address without nonce reached the monitor: %v", mon.cmds)
	}
}

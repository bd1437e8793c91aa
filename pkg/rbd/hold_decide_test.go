package rbd

import (
	"strings"
	"testing"
	"time"
)

func TestDecideHold(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	lock := func(node, nonce string) locker {
		return locker{Client: "client.41" + nonce, Cookie: holdCookie(node), Addr: "v1:10.0.0.1:0/" + nonce}
	}
	mapped := func(node string) *holdRecord {
		return &holdRecord{Node: node, Exclusive: true, Since: now.Add(-time.Hour), Renewed: now.Add(-time.Minute),
			LeaseSeconds: 30, Plugin: []string{"10.0.0.1:0/100"}, Clients: []string{"10.0.0.1:0/200"}, Mapped: true}
	}
	unmapped := mapped("node-a")
	unmapped.Clients, unmapped.Mapped = nil, false
	held := func(exclusive bool, recs map[string]*holdRecord, watchers []string, ls ...locker) holdView {
		return holdView{Exclusive: exclusive, Lockers: ls, Records: recs, Watchers: watchers}
	}
	aHolds := held(true, map[string]*holdRecord{"node-a": mapped("node-a")}, nil, lock("node-a", "100"))

	tests := []struct {
		name      string
		view      holdView
		shared    bool
		observed  time.Duration
		grace     time.Duration
		want      holdAction
		own       int
		fence     []string
		reasonHas string
	}{
		{name: "no holder", view: holdView{}, grace: time.Minute, want: holdTake},
		{
			name: "same node, stale entry of a dead plugin process", grace: time.Minute, want: holdTake, own: 1,
			view: held(true, nil, []string{"10.0.0.2:0/7"}, lock("node-b", "9")),
		},
		{
			name: "other node alive", view: aHolds, observed: 10 * time.Second, grace: time.Minute,
			want: holdRefuse, reasonHas: `node "node-a" holds the volume for writing`,
		},
		{
			name: "other node silent, but within its lease plus grace", view: aHolds,
			observed: 45 * time.Second, grace: time.Minute, want: holdRefuse, reasonHas: "taken over when",
		},
		{
			name: "dead past grace, takeover on", view: aHolds, observed: 91 * time.Second, grace: time.Minute,
			want:  holdTakeover,
			fence: []string{"10.0.0.1:0/100", "10.0.0.1:0/200"},
		},
		{
			name: "dead past grace, takeover off", view: aHolds, observed: time.Hour, grace: 0,
			want: holdRefuse, reasonHas: "automatic takeover is off",
		},
		{
			name: "dead by heartbeat, but a client still has the image open",
			view: held(true, map[string]*holdRecord{"node-a": mapped("node-a")}, []string{"10.0.0.9:0/5"},
				lock("node-a", "100")),
			observed: time.Hour, grace: time.Minute, want: holdRefuse, reasonHas: "still have the image open",
		},
		{
			name:     "dead, but stopped between claim and map: mapper unknown",
			view:     held(true, map[string]*holdRecord{"node-a": unmapped}, nil, lock("node-a", "100")),
			observed: time.Hour, grace: time.Minute, want: holdRefuse, reasonHas: "--force",
		},
		{
			name: "dead, lock entry without a record", view: held(true, nil, nil, lock("node-a", "300")),
			observed: time.Hour, grace: time.Minute, want: holdTakeover, fence: []string{"10.0.0.1:0/300"},
		},
		{
			name:     "dead, but an address cannot be fenced one by one",
			view:     held(true, nil, nil, locker{Client: "client.1", Cookie: holdCookie("node-a"), Addr: "10.0.0.1:0/0"}),
			observed: time.Hour, grace: time.Minute, want: holdRefuse, reasonHas: "cannot fence",
		},
		{
			name: "reader next to readers", shared: true, grace: time.Minute, want: holdTake,
			view: held(false, nil, []string{"10.0.0.1:0/200"}, lock("node-a", "100")),
		},
		{
			name: "reader while a writer holds it", shared: true, view: aHolds, grace: time.Minute,
			want: holdRefuse, reasonHas: `node "node-a" holds the volume for writing`,
		},
		{
			name: "writer while readers hold it", grace: time.Minute, want: holdRefuse,
			view:      held(false, nil, nil, lock("node-a", "100"), lock("node-c", "101")),
			reasonHas: `node "node-c" holds the volume shared`,
		},
		{
			name: "entry that names no node", grace: time.Minute, observed: time.Hour, want: holdRefuse,
			view:      held(true, nil, nil, locker{Client: "client.1", Cookie: "someone-else", Addr: "10.0.0.1:0/3"}),
			reasonHas: "names no node",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := decideHold(holdInput{
				view: tc.view, self: "node-b", exclusive: !tc.shared, now: now,
				observed: func(string) time.Duration { return tc.observed },
				lease:    DefaultLease, grace: tc.grace,
			})
			if d.action != tc.want {
				t.Fatalf("action %d, want %d (reason %q)", d.action, tc.want, d.reason)
			}
			if len(d.own) != tc.own {
				t.Errorf("own entries to break: %v, want %d", d.own, tc.own)
			}
			if strings.Join(d.fence, " ") != strings.Join(tc.fence, " ") {
				t.Errorf("fence %v, want %v", d.fence, tc.fence)
			}
			if tc.want == holdTakeover && len(d.victims) == 0 {
				t.Error("takeover without victims")
			}
			if !strings.Contains(d.reason, tc.reasonHas) {
				t.Errorf("reason %q does not contain %q", d.reason, tc.reasonHas)
			}
		})
	}
}

func TestObserver(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	o := newObserver(func() time.Time { return now })
	if d := o.unchanged("v\x00a", "hb1"); d != 0 {
		t.Fatalf("first look: %s", d)
	}
	now = now.Add(10 * time.Second)
	if d := o.unchanged("v\x00a", "hb1"); d != 10*time.Second {
		t.Fatalf("unchanged for %s, want 10s", d)
	}
	now = now.Add(5 * time.Second)
	if d := o.unchanged("v\x00a", "hb2"); d != 0 {
		t.Fatalf("a renewal must restart the clock: %s", d)
	}
	if d := o.unchanged("v\x00b", "hb2"); d != 0 {
		t.Fatalf("another holder is observed apart: %s", d)
	}
}

func TestHeartbeatValueChangesWithLockEntry(t *testing.T) {
	t.Parallel()
	rec := &holdRecord{Renewed: time.Unix(5, 0)}
	a := heartbeatValue(rec, []locker{{Client: "client.1", Cookie: "tkestor:a"}})
	b := heartbeatValue(rec, []locker{{Client: "client.2", Cookie: "tkestor:a"}})
	if a == b || heartbeatValue(nil, nil) != "" {
		t.Fatalf("values %q and %q", a, b)
	}
}

func TestExclusiveHold(t *testing.T) {
	t.Parallel()
	for mode, want := range map[string]bool{
		"SINGLE_NODE_WRITER": true, "SINGLE_NODE_MULTI_WRITER": true, "SINGLE_NODE_SINGLE_WRITER": true,
		"SINGLE_NODE_READER_ONLY": true, "MULTI_NODE_READER_ONLY": false, "MULTI_NODE_MULTI_WRITER": false,
	} {
		if got := exclusiveHold(&stageRecord{AccessMode: mode, Block: true}); got != want {
			t.Errorf("%s: exclusive %v, want %v", mode, got, want)
		}
	}
	if !exclusiveHold(&stageRecord{AccessMode: "garbage"}) {
		t.Error("an unreadable mode must take the exclusive hold")
	}
}

func TestCookieNode(t *testing.T) {
	t.Parallel()
	for _, node := range []string{"node-1.example", "odd#node"} {
		if n, ok := cookieNode(holdCookie(node)); !ok || n != node {
			t.Fatalf("%q: %q %v", node, n, ok)
		}
	}
	for _, c := range []string{"", "tkestor:", "tkestor:node-1", "tkestor:#1234", "auto 1234", "node-1#12"} {
		if _, ok := cookieNode(c); ok {
			t.Errorf("cookie %q names a node", c)
		}
	}
	// Every claim has its own entry, so an observer never mistakes a new
	// claim for an old one that did not change.
	first, second := holdCookie("n"), holdCookie("n")
	if first == second {
		t.Fatal("two claims share a cookie")
	}
}

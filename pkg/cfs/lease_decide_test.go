package cfs

import (
	"strings"
	"testing"
	"time"
)

func viewOf(gen uint64, rec *leaseRecord) leaseView {
	v := leaseView{gen: gen, rec: rec}
	if rec != nil {
		v.raw = []byte(rec.Node + rec.Token)
	} else if gen > 0 {
		v.raw = []byte("garbage")
	}
	return v
}

func heldBy(node string, gen uint64, token string) *leaseRecord {
	return &leaseRecord{Node: node, Generation: gen, Token: token, LeaseSeconds: 30}
}

func TestDecideClaim(t *testing.T) {
	t.Parallel()
	const lease, grace = 30 * time.Second, 60 * time.Second
	cases := []struct {
		name     string
		view     leaseView
		heldGen  uint64
		heldTok  string
		observed time.Duration
		grace    time.Duration
		want     leaseAction
		takeover bool
		msg      string // part of the refusal
	}{
		{name: "free", view: leaseView{}, grace: grace, want: leaseTake},
		{name: "released", view: viewOf(4, &leaseRecord{Generation: 4, ReleasedBy: "node-b"}),
			grace: grace, want: leaseTake},
		{name: "same node, held here", view: viewOf(3, heldBy("node-a", 3, "t1")), heldGen: 3, heldTok: "t1",
			grace: grace, want: leaseKeep},
		{name: "same node, from before a restart", view: viewOf(3, heldBy("node-a", 3, "t0")),
			grace: grace, want: leaseTake},
		{name: "same node, token of another holding", view: viewOf(3, heldBy("node-a", 3, "t0")),
			heldGen: 3, heldTok: "t1", grace: grace, want: leaseTake},
		{name: "other node, live", view: viewOf(3, heldBy("node-b", 3, "t")), grace: grace,
			want: leaseRefuse, msg: `node "node-b"`},
		{name: "other node, seen unchanged within its lease", view: viewOf(3, heldBy("node-b", 3, "t")),
			observed: 29 * time.Second, grace: grace, want: leaseRefuse, msg: "lease 30s"},
		{name: "other node, expired but within grace", view: viewOf(3, heldBy("node-b", 3, "t")),
			observed: 31 * time.Second, grace: grace, want: leaseRefuse, msg: "plus a grace of 1m0s"},
		{name: "other node, expired past grace", view: viewOf(3, heldBy("node-b", 3, "t")),
			observed: 90 * time.Second, grace: grace, want: leaseTake, takeover: true},
		{name: "takeover off", view: viewOf(3, heldBy("node-b", 3, "t")), observed: 100 * time.Hour,
			want: leaseRefuse, msg: "automatic takeover is off"},
		{name: "holder's own longer lease counts", view: viewOf(3, &leaseRecord{Node: "node-b", Generation: 3,
			LeaseSeconds: 600}), observed: 5 * time.Minute, grace: grace, want: leaseRefuse, msg: "lease 10m0s"},
		{name: "unreadable record, live", view: viewOf(5, nil), observed: time.Minute, grace: grace,
			want: leaseRefuse, msg: "unknown node"},
		{name: "unreadable record, expired", view: viewOf(5, nil), observed: 91 * time.Second, grace: grace,
			want: leaseTake, takeover: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := decideClaim(leaseInput{
				view: tc.view, self: "node-a", heldGen: tc.heldGen, heldToken: tc.heldTok,
				observed: tc.observed, lease: lease, grace: tc.grace,
			})
			if d.action != tc.want || d.takeover != tc.takeover {
				t.Fatalf("decision = %+v, want action %d takeover %v", d, tc.want, tc.takeover)
			}
			if !strings.Contains(d.reason, tc.msg) {
				t.Errorf("reason %q does not say %q", d.reason, tc.msg)
			}
		})
	}
}

func TestDecideRead(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		view     leaseView
		observed time.Duration
		grace    time.Duration
		want     leaseAction
	}{
		{name: "no lease", view: leaseView{}, grace: time.Minute, want: leaseKeep},
		{name: "released", view: viewOf(2, &leaseRecord{Generation: 2}), grace: time.Minute, want: leaseKeep},
		{name: "writer on this node", view: viewOf(2, heldBy("node-a", 2, "t")), grace: time.Minute, want: leaseKeep},
		{name: "writer live elsewhere", view: viewOf(2, heldBy("node-b", 2, "t")), grace: time.Minute,
			want: leaseRefuse},
		{name: "writer expired", view: viewOf(2, heldBy("node-b", 2, "t")), observed: 2 * time.Minute,
			grace: time.Minute, want: leaseKeep},
		{name: "writer expired, takeover off", view: viewOf(2, heldBy("node-b", 2, "t")),
			observed: time.Hour, want: leaseRefuse},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := decideRead(leaseInput{view: tc.view, self: "node-a", observed: tc.observed,
				lease: 30 * time.Second, grace: tc.grace})
			if d.action != tc.want {
				t.Fatalf("decision = %+v, want %d", d, tc.want)
			}
		})
	}
}

func TestLeaseObserver(t *testing.T) {
	t.Parallel()
	o := newLeaseObserver()
	t0 := time.Unix(1000, 0)
	v := viewOf(1, heldBy("node-b", 1, "t"))
	if got := o.observe("vol", v, t0); got != 0 {
		t.Fatalf("first sight = %v", got)
	}
	if got := o.observe("vol", v, t0.Add(5*time.Second)); got != 5*time.Second {
		t.Fatalf("unchanged = %v", got)
	}
	renewed := v
	renewed.raw = []byte("renewed")
	if got := o.observe("vol", renewed, t0.Add(6*time.Second)); got != 0 {
		t.Fatalf("after a renewal = %v", got)
	}
	next := viewOf(2, heldBy("node-b", 2, "t"))
	next.raw = renewed.raw // same bytes, new generation: still a change
	if got := o.observe("vol", next, t0.Add(7*time.Second)); got != 0 {
		t.Fatalf("after a new generation = %v", got)
	}
}

func TestParseLeaseName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		gen  uint64
		tmp  bool
	}{
		{"lease.1", 1, false},
		{"lease.42", 42, false},
		{"lease.042", 0, false},
		{"lease.+1", 0, false},
		{"lease.", 0, false},
		{".lease.7.tmp.abcdef", 7, true},
		{".lease.7", 0, false},
		{"README", 0, false},
	}
	for _, tc := range cases {
		gen, tmp := parseLeaseName(tc.name)
		if gen != tc.gen || tmp != tc.tmp {
			t.Errorf("parseLeaseName(%q) = %d, %v; want %d, %v", tc.name, gen, tmp, tc.gen, tc.tmp)
		}
	}
}

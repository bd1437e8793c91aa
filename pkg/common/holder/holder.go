// Package holder is the driver-neutral half of the operator subcommand
// `tkestor-csi holder show|release`: what an operator sees about who holds
// a single-node volume, and the interface through which each driver shows
// a hold and releases it (after fencing the holder).
package holder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrAlive reports a release refused without --force because the holder
// still looks alive.
var ErrAlive = errors.New("the holder still looks alive")

// Backend is what a driver implements for the subcommand. Show reads only;
// Release fences the holders' clients first and breaks their hold only
// when that worked, and without Force refuses (ErrAlive) a holder that
// shows any sign of life.
type Backend interface {
	Show(ctx context.Context, volumeID string) (*Report, error)
	Release(ctx context.Context, volumeID string, opts ReleaseOptions) (*Report, error)
	Close()
}

// ReleaseOptions tune a release.
type ReleaseOptions struct {
	// Force releases a holder that looks alive, after fencing it.
	Force bool
	// Node releases only this holder ("" releases every holder).
	Node string
	// Progress reports long steps (watching a heartbeat) to the operator.
	Progress func(msg string)
}

// Client is one backend client of a holder.
type Client struct {
	// Role: "lock" (the client that took the hold), "plugin", "mapper".
	Role string `json:"role"`
	Addr string `json:"addr"`
}

// Holder is one node that holds the volume.
type Holder struct {
	Node      string        `json:"node"`
	Mode      string        `json:"mode,omitempty"`
	Exclusive bool          `json:"exclusive"`
	Since     time.Time     `json:"since,omitempty"`
	Heartbeat time.Time     `json:"heartbeat,omitempty"`
	Lease     time.Duration `json:"lease,omitempty"`
	Clients   []Client      `json:"clients,omitempty"`
	// NodeSeen is the node plugin's last registration, zero if unknown.
	NodeSeen time.Time `json:"nodeSeen,omitempty"`
	Alive    bool      `json:"alive"`
	Verdict  string    `json:"verdict"`
}

// Fenced is a note of an earlier takeover.
type Fenced struct {
	Node    string    `json:"node"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Until   time.Time `json:"until"`
	Clients []string  `json:"clients"`
}

// Report is what show and release print.
type Report struct {
	Driver   string `json:"driver"`
	VolumeID string `json:"volumeID"`
	// Target names the backend object ("pool/image in cluster X").
	Target   string   `json:"target"`
	Holders  []Holder `json:"holders"`
	Watchers []string `json:"watchers,omitempty"`
	Fenced   []Fenced `json:"fenced,omitempty"`
	// Actions are what a release did, in order.
	Actions []string `json:"actions,omitempty"`
}

// WriteJSON prints the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText prints the report for a person; now gives ages.
func (r *Report) WriteText(w io.Writer, now time.Time) error {
	var b strings.Builder
	fmt.Fprintf(&b, "volume:   %s\n", r.VolumeID)
	fmt.Fprintf(&b, "%s:      %s\n", r.Driver, r.Target)
	if len(r.Holders) == 0 {
		b.WriteString("holder:   none\n")
	}
	for _, h := range r.Holders {
		writeHolder(&b, h, now)
	}
	fmt.Fprintf(&b, "watchers: %s\n", listOrNone(r.Watchers))
	for _, f := range r.Fenced {
		fmt.Fprintf(&b, "fenced:   node %s by %s at %s, until %s: %s\n", f.Node, f.By, stamp(f.At, now),
			f.Until.UTC().Format(time.RFC3339), strings.Join(f.Clients, " "))
	}
	for _, a := range r.Actions {
		fmt.Fprintf(&b, "done:     %s\n", a)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeHolder(b *strings.Builder, h Holder, now time.Time) {
	how := "exclusive"
	if !h.Exclusive {
		how = "shared"
	}
	fmt.Fprintf(b, "holder:   %s (%s, %s)\n", h.Node, how, h.Mode)
	fmt.Fprintf(b, "  since:     %s\n", stamp(h.Since, now))
	hb := stamp(h.Heartbeat, now)
	if h.Lease > 0 {
		hb += fmt.Sprintf(", renewed every %s", h.Lease/3)
	}
	fmt.Fprintf(b, "  heartbeat: %s\n", hb)
	for _, c := range h.Clients {
		fmt.Fprintf(b, "  %-10s %s\n", c.Role+":", c.Addr)
	}
	if !h.NodeSeen.IsZero() {
		fmt.Fprintf(b, "  node seen: %s (registration)\n", stamp(h.NodeSeen, now))
	}
	state := "DEAD?"
	if h.Alive {
		state = "alive"
	}
	fmt.Fprintf(b, "  state:     %s: %s\n", state, h.Verdict)
}

// stamp prints a time with its age by this machine's clock.
func stamp(t, now time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("%s (%s ago by this machine's clock)", t.UTC().Format(time.RFC3339),
		now.Sub(t).Round(time.Second))
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, " ")
}

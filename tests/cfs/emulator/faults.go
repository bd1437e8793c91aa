package emulator

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
)

// FaultKind names one way the emulated master misbehaves.
type FaultKind string

const (
	// FaultHang never answers: the request is held until the caller gives
	// up or the fault is cleared, then the connection is dropped unanswered.
	FaultHang FaultKind = "hang"
	// FaultHTTP500 answers HTTP 500 with a plain-text body.
	FaultHTTP500 FaultKind = "http500"
	// FaultNonJSON answers HTTP 200 with a body that is not JSON.
	FaultNonJSON FaultKind = "nonjson"
	// FaultNoLeader answers like a follower with no leader: HTTP 400,
	// plain-text "no leader".
	FaultNoLeader FaultKind = "noleader"
	// FaultDropCreateReply performs the next createVol, then drops the
	// connection without a reply (a reply lost on the network).
	FaultDropCreateReply FaultKind = "drop-create-reply"
)

// Fault is one injected misbehaviour.
type Fault struct {
	Kind FaultKind
	// Count is how many matching requests it affects; 0 means every one
	// until ClearFaults.
	Count int
	// Path limits it to one API path such as "/admin/createVol"; empty
	// means any API path. FaultDropCreateReply always means createVol.
	Path string
}

// faultSet holds the active faults. Faults live in memory only: with a
// shared state file, each emulator process has its own.
type faultSet struct {
	mu      sync.Mutex
	active  []*activeFault
	release chan struct{}
	hung    atomic.Int64
}

type activeFault struct {
	Fault
	left int
}

func newFaultSet() *faultSet {
	return &faultSet{release: make(chan struct{})}
}

// validate rejects unknown kinds and negative counts.
func (f Fault) validate() error {
	switch f.Kind {
	case FaultHang, FaultHTTP500, FaultNonJSON, FaultNoLeader, FaultDropCreateReply:
	default:
		return fmt.Errorf("unknown fault kind %q", f.Kind)
	}
	if f.Count < 0 {
		return fmt.Errorf("fault count must not be negative, got %d", f.Count)
	}
	return nil
}

// InjectFault adds f; faults apply in the order they were added.
func (e *Emulator) InjectFault(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.Kind == FaultDropCreateReply {
		f.Path = "/admin/createVol"
	}
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	e.faults.active = append(e.faults.active, &activeFault{Fault: f, left: f.Count})
	return nil
}

// Hang makes the next n API requests hang; n = 0 hangs all until cleared.
func (e *Emulator) Hang(n int) error { return e.InjectFault(Fault{Kind: FaultHang, Count: n}) }

// DropNextCreateReply makes the next createVol succeed without a reply.
func (e *Emulator) DropNextCreateReply() error {
	return e.InjectFault(Fault{Kind: FaultDropCreateReply, Count: 1})
}

// ClearFaults removes every fault and releases hung requests (their
// connections are dropped unanswered).
func (e *Emulator) ClearFaults() { e.faults.clear() }

// HungRequests is how many requests are being held by FaultHang right now.
func (e *Emulator) HungRequests() int { return int(e.faults.hung.Load()) }

func (fs *faultSet) clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.active = nil
	close(fs.release)
	fs.release = make(chan struct{})
}

// take consumes one use of the first fault matching path; the zero Fault
// means none.
func (fs *faultSet) take(path string) Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, af := range fs.active {
		if af.Path != "" && af.Path != path {
			continue
		}
		if af.Count > 0 {
			af.left--
			if af.left == 0 {
				fs.active = append(fs.active[:i], fs.active[i+1:]...)
			}
		}
		return af.Fault
	}
	return Fault{}
}

// applyBefore acts out faults that replace the real answer; it reports
// whether the request has been dealt with.
func (fs *faultSet) applyBefore(f Fault, w http.ResponseWriter, r *http.Request) bool {
	switch f.Kind {
	case FaultHang:
		fs.mu.Lock()
		release := fs.release
		fs.mu.Unlock()
		fs.hung.Add(1)
		defer fs.hung.Add(-1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler)
	case FaultHTTP500:
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
	case FaultNonJSON:
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>emulator: not a JSON reply</body></html>\n"))
	case FaultNoLeader:
		http.Error(w, "no leader", http.StatusBadRequest)
	default:
		return false
	}
	return true
}

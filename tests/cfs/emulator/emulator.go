package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Emulator is a fake ChubaoFS/CubeFS master. It is an http.Handler; serve
// it with httptest (see NewTestServer) or net/http.
type Emulator struct {
	opts   Options
	codes  codeSet
	store  *store
	faults *faultSet
	routes map[string]route

	logMu sync.Mutex
	log   []Request
}

// Request is one API request as the emulator received it (admin requests
// under AdminPrefix are not recorded). Query holds query and form values,
// authKey included: tests may assert on it.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	Query  url.Values
}

// call is the context a handler works in: the request, the locked state
// and the emulator's clock reading for this request.
type call struct {
	e   *Emulator
	r   *http.Request
	st  *State
	now time.Time
}

// route is one API path: the methods the real router allows and the handler.
type route struct {
	methods []string
	handle  func(c *call) reply
}

var (
	getOnly   = []string{http.MethodGet}
	getOrPost = []string{http.MethodGet, http.MethodPost}
	postOnly  = []string{http.MethodPost}
)

// New returns an emulator for opts, or the reason opts are invalid.
func New(opts Options) (*Emulator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	e := &Emulator{
		opts:   opts,
		codes:  codeSets[opts.Numbering],
		store:  newStore(opts.StateFile, opts.Now()),
		faults: newFaultSet(),
	}
	e.routes = map[string]route{
		"/admin/createVol":  {getOrPost, handleCreateVol},
		"/admin/getVol":     {getOnly, handleGetVol},
		"/client/vol":       {getOrPost, handleClientVol},
		"/client/volStat":   {getOnly, handleVolStat},
		"/vol/list":         {getOnly, handleVolList},
		"/vol/delete":       {getOrPost, handleDeleteVol},
		"/vol/expand":       {getOrPost, handleExpandVol},
		"/vol/shrink":       {getOrPost, handleShrinkVol},
		"/admin/getCluster": {getOnly, handleGetCluster},
		"/admin/getIp":      {getOnly, handleGetIP},
		"/user/create":      {postOnly, handleUserCreate},
		"/user/info":        {getOnly, handleUserInfo},
	}
	return e, nil
}

// Options returns the options in effect, defaults filled in.
func (e *Emulator) Options() Options { return e.opts }

// ServeHTTP answers like the master: unknown paths get the router's plain
// 404, a wrong method an empty 405, and everything else the JSON envelope
// with HTTP 200 (unless a fault says otherwise).
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, AdminPrefix) {
		e.serveAdmin(w, r)
		return
	}
	rt, ok := e.routes[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !slices.Contains(rt.methods, r.Method) {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	e.record(r)

	f := e.faults.take(r.URL.Path)
	if e.faults.applyBefore(f, w, r) {
		return
	}

	rep, err := e.dispatch(rt, r)
	if err != nil {
		klog.ErrorS(err, "Emulator state unavailable", "path", r.URL.Path)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	klog.V(4).InfoS("Emulator request", "method", r.Method, "path", r.URL.Path, "code", rep.code)
	if f.Kind == FaultDropCreateReply {
		// The work is done; the caller never learns it. ErrAbortHandler makes
		// net/http close the connection without writing anything.
		panic(http.ErrAbortHandler)
	}
	writeEnvelope(w, rep)
}

// dispatch runs one handler against the locked, purged state.
func (e *Emulator) dispatch(rt route, r *http.Request) (reply, error) {
	now := e.opts.Now()
	var rep reply
	err := e.store.update(now, func(st *State) {
		e.purgeDue(st, now)
		rep = rt.handle(&call{e: e, r: r, st: st, now: now})
	})
	return rep, err
}

// record appends r to the request log.
func (e *Emulator) record(r *http.Request) {
	_ = r.ParseForm()
	e.logMu.Lock()
	defer e.logMu.Unlock()
	e.log = append(e.log, Request{
		Time: e.opts.Now(), Method: r.Method, Path: r.URL.Path, Query: r.Form,
	})
}

// Requests returns the API requests received so far, oldest first.
func (e *Emulator) Requests() []Request {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return slices.Clone(e.log)
}

// Snapshot returns a deep copy of the current state (after due purges).
func (e *Emulator) Snapshot() (*State, error) {
	var raw []byte
	now := e.opts.Now()
	err := e.store.update(now, func(st *State) {
		e.purgeDue(st, now)
		raw, _ = json.Marshal(st)
	})
	if err != nil {
		return nil, err
	}
	out := &State{}
	return out, json.Unmarshal(raw, out)
}

// Volume returns a copy of the named volume's record, if it exists
// (marked-deleted volumes included, until purged).
func (e *Emulator) Volume(name string) (Volume, bool, error) {
	st, err := e.Snapshot()
	if err != nil {
		return Volume{}, false, err
	}
	v, ok := st.Vols[name]
	if !ok {
		return Volume{}, false, nil
	}
	return *v, true, nil
}

// Close releases every hung request. Call it before closing the server.
func (e *Emulator) Close() {
	e.faults.clear()
}

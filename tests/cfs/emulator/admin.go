package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// AdminPrefix is the test-only path prefix of the fault-injection and
// inspection endpoints. No real master serves anything under it.
const AdminPrefix = "/_emulator/"

// Admin endpoints (all answer plain JSON, not the master envelope):
//
//	POST /_emulator/fault?kind=hang|http500|nonjson|noleader|drop-create-reply[&count=N][&path=/admin/createVol]
//	POST /_emulator/clear                 remove faults, release hung requests
//	POST /_emulator/complete-deletions    purge every marked volume now
//	POST /_emulator/used?name=V&bytes=N   fix a volume's reported used bytes
//	GET  /_emulator/state                 the whole state
//	GET  /_emulator/requests              the API request log
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	post := r.Method == http.MethodPost
	switch r.URL.Path[len(AdminPrefix):] {
	case "fault":
		e.adminOnly(w, post, func() (any, error) { return nil, e.InjectFault(faultFromQuery(r)) })
	case "clear":
		e.adminOnly(w, post, func() (any, error) { e.ClearFaults(); return nil, nil })
	case "complete-deletions":
		e.adminOnly(w, post, func() (any, error) {
			names, err := e.CompleteDeletions()
			return map[string]any{"purged": names}, err
		})
	case "used":
		e.adminOnly(w, post, func() (any, error) { return nil, e.setUsedFromQuery(r) })
	case "state":
		e.adminOnly(w, !post, func() (any, error) { return e.Snapshot() })
	case "requests":
		e.adminOnly(w, !post, func() (any, error) { return e.Requests(), nil })
	default:
		http.NotFound(w, r)
	}
}

// adminOnly runs fn if the method was right and writes its result.
func (e *Emulator) adminOnly(w http.ResponseWriter, methodOK bool, fn func() (any, error)) {
	if !methodOK {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	out, err := fn()
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	if out == nil {
		out = map[string]bool{"ok": true}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// faultFromQuery reads kind, count and path; a bad count becomes -1 so
// validation rejects it.
func faultFromQuery(r *http.Request) Fault {
	f := Fault{Kind: FaultKind(r.FormValue("kind")), Path: r.FormValue("path")}
	if s := r.FormValue("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			n = -1
		}
		f.Count = n
	}
	return f
}

func (e *Emulator) setUsedFromQuery(r *http.Request) error {
	n, err := strconv.ParseUint(r.FormValue("bytes"), 10, 64)
	if err != nil {
		return err
	}
	return e.SetUsedBytes(r.FormValue("name"), n)
}

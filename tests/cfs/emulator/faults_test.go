package emulator

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHangUntilClientGivesUp: a hung request never answers; the client's
// own deadline is what ends it.
func TestHangUntilClientGivesUp(t *testing.T) {
	t.Parallel()
	e, srv := start(t, Options{})
	if err := e.Hang(1); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 200 * time.Millisecond}
	_, err := client.Get(srv.URL + "/admin/getCluster")
	var netErr interface{ Timeout() bool }
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("hung request: err = %v, want a timeout", err)
	}
	// Count 1 is used up: the next request is answered.
	wantEnv(t, api(t, srv, "/admin/getCluster"), 0, MsgSuccess)
}

// TestHangUntilCleared: with count 0 every request hangs until
// ClearFaults, which drops them unanswered.
func TestHangUntilCleared(t *testing.T) {
	t.Parallel()
	e, srv := start(t, Options{})
	if err := e.Hang(0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/admin/getVol?name=pvc-x")
		if err == nil {
			resp.Body.Close()
			err = errors.New("got an answer")
		}
		done <- err
	}()
	waitFor(t, func() bool { return e.HungRequests() == 1 })
	e.ClearFaults()
	if err := <-done; err == nil || strings.Contains(err.Error(), "got an answer") {
		t.Fatalf("released hung request: err = %v, want a dropped connection", err)
	}
	wantEnv(t, api(t, srv, "/admin/getVol?name=pvc-x"), 7, MsgVolNotExists)
}

// TestBadReplies checks the non-envelope faults.
func TestBadReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind   FaultKind
		status int
		body   string
	}{
		{FaultHTTP500, 500, "Internal Server Error\n"},
		{FaultNonJSON, 200, "<html><body>emulator: not a JSON reply</body></html>\n"},
		{FaultNoLeader, 400, "no leader\n"},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			e, srv := start(t, Options{})
			if err := e.InjectFault(Fault{Kind: tc.kind, Count: 1, Path: "/admin/getVol"}); err != nil {
				t.Fatal(err)
			}
			// Another path is not affected.
			wantEnv(t, api(t, srv, "/admin/getCluster"), 0, MsgSuccess)
			status, body := send(t, srv, http.MethodGet, "/admin/getVol?name=pvc-x")
			if status != tc.status || body != tc.body {
				t.Errorf("got HTTP %d %q, want %d %q", status, body, tc.status, tc.body)
			}
			wantEnv(t, api(t, srv, "/admin/getVol?name=pvc-x"), 7, MsgVolNotExists)
		})
	}
}

// TestDropCreateReply: the volume is created but the caller gets no reply;
// a retry then sees "duplicate vol".
func TestDropCreateReply(t *testing.T) {
	t.Parallel()
	e, srv := start(t, Options{})
	if err := e.DropNextCreateReply(); err != nil {
		t.Fatal(err)
	}
	wantEnv(t, api(t, srv, "/admin/getCluster"), 0, MsgSuccess) // not consumed

	// A fresh connection: Go's transport silently retries a GET whose reused
	// keep-alive connection closed before any reply, which would turn the
	// lost reply into a "duplicate vol" answer.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(srv.URL + "/admin/createVol?name=pvc-lost&capacity=1&owner=csiuser")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("createVol answered: HTTP %d %s", resp.StatusCode, body)
	}
	if _, ok, _ := e.Volume("pvc-lost"); !ok {
		t.Fatal("volume was not created")
	}
	env := api(t, srv, "/admin/createVol?name=pvc-lost&capacity=1&owner=csiuser")
	if env.Code != 1 || !strings.Contains(env.Msg, MsgDuplicateVol) {
		t.Errorf("retry = %d %q, want code 1 duplicate vol", env.Code, env.Msg)
	}
}

// TestAdminEndpoints drives faults and deletions over HTTP, as a test
// using the binary would.
func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	_, srv := start(t, Options{})
	createVol(t, srv, "pvc-a", 10)
	tests := []struct {
		name, method, path string
		status             int
		contains           string
	}{
		{"bad kind", "POST", "/_emulator/fault?kind=explode", 400, "unknown fault kind"},
		{"inject", "POST", "/_emulator/fault?kind=http500&count=1", 200, `"ok":true`},
		{"fault applies", "GET", "/admin/getCluster", 500, "Internal Server Error"},
		{"wrong method", "GET", "/_emulator/clear", 405, ""},
		{"clear", "POST", "/_emulator/clear", 200, `"ok":true`},
		{"used", "POST", "/_emulator/used?name=pvc-a&bytes=1024", 200, `"ok":true`},
		{"used unknown vol", "POST", "/_emulator/used?name=nope&bytes=1", 400, "does not exist"},
		{"delete", "GET", "/vol/delete?name=pvc-a&authKey=" + testKey, 200, `"code":0`},
		{"complete", "POST", "/_emulator/complete-deletions", 200, `"purged":["pvc-a"]`},
		{"state", "GET", "/_emulator/state", 200, `"vols":{}`},
		{"requests", "GET", "/_emulator/requests", 200, `"Path":"/vol/delete"`},
		{"unknown", "GET", "/_emulator/nope", 404, "404 page not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := send(t, srv, tc.method, tc.path)
			if status != tc.status || !strings.Contains(body, tc.contains) {
				t.Errorf("got HTTP %d %q, want %d containing %q", status, body, tc.status, tc.contains)
			}
		})
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testOwner = "csiuser"
	// testKey is md5("csiuser"), as recorded from the real master.
	testKey  = "3448e7f01aad59de8896a173d729f34c"
	wrongKey = "0123456789abcdef0123456789abcdef"
)

// fakeClock is a settable clock for purge timing.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 4, 15, 15, 14, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// start runs an emulator with opts on a test server.
func start(t *testing.T, opts Options) (*Emulator, *httptest.Server) {
	t.Helper()
	return NewTestServer(t, opts)
}

// send sends method path?query (GET) or a form body (POST) and returns the
// HTTP status and raw body.
func send(t *testing.T, srv *httptest.Server, method, pathQuery string) (int, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		path, query, _ := strings.Cut(pathQuery, "?")
		resp, err = http.Post(srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(query))
	} else {
		req, _ := http.NewRequest(method, srv.URL+pathQuery, nil)
		resp, err = http.DefaultClient.Do(req)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", method, pathQuery, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// api GETs pathQuery and decodes the envelope, failing on a non-200.
func api(t *testing.T, srv *httptest.Server, pathQuery string) Envelope {
	t.Helper()
	status, body := send(t, srv, http.MethodGet, pathQuery)
	if status != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d %q", pathQuery, status, body)
	}
	var env Envelope
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("GET %s: not an envelope: %v: %q", pathQuery, err, body)
	}
	return env
}

// wantEnv checks code and (if non-empty) the exact msg.
func wantEnv(t *testing.T, env Envelope, code int, msg string) {
	t.Helper()
	if env.Code != code || (msg != "" && env.Msg != msg) {
		t.Fatalf("got code %d msg %q, want code %d msg %q", env.Code, env.Msg, code, msg)
	}
}

// dataString decodes a string data field (create/delete/expand replies).
func dataString(t *testing.T, env Envelope) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(env.Data, &s); err != nil {
		t.Fatalf("data is not a string: %s", env.Data)
	}
	return s
}

// dataMap decodes an object data field.
func dataMap(t *testing.T, env Envelope) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(env.Data, &m); err != nil {
		t.Fatalf("data is not an object: %s", env.Data)
	}
	return m
}

// createVol creates name (capacity GB, owner csiuser) and fails on error.
func createVol(t *testing.T, srv *httptest.Server, name string, capacity int) {
	t.Helper()
	q := url.Values{"name": {name}, "owner": {testOwner}, "capacity": {itoa(capacity)}}
	wantEnv(t, api(t, srv, "/admin/createVol?"+q.Encode()), CodeOK, MsgSuccess)
}

func itoa(n int) string { return strconv.Itoa(n) }

// doEnvelope sends req and decodes the envelope.
func doEnvelope(t *testing.T, req *http.Request) Envelope {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env Envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s: not an envelope: %v", req.URL, err)
	}
	return env
}

// postJSON POSTs a JSON body and decodes the envelope.
func postJSON(t *testing.T, srv *httptest.Server, path, body string) Envelope {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return doEnvelope(t, req)
}

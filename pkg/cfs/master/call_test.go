package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const okVol = `{"code":0,"msg":"success","data":{"Name":"v","Owner":"csiuser","Capacity":10,"Status":0}}`

// fakeMaster answers every request with fn and counts the requests.
type fakeMaster struct {
	mu    sync.Mutex
	hits  int
	query []string
	srv   *httptest.Server
}

func newFakeMaster(t *testing.T, fn http.HandlerFunc) *fakeMaster {
	t.Helper()
	f := &fakeMaster{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits++
		f.query = append(f.query, r.URL.RawQuery)
		f.mu.Unlock()
		fn(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeMaster) addr() string { return hostOf(f.srv) }

func (f *fakeMaster) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits
}

func reply(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestFailover(t *testing.T) {
	t.Parallel()
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	tests := []struct {
		name    string
		first   http.HandlerFunc
		tryNext bool
		want    error
	}{
		{"non-JSON", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }, true, nil},
		{"HTTP 500", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) }, true, nil},
		{"no leader 400", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no leader", 400) }, true, nil},
		{"404 page", http.NotFound, true, nil},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/", http.StatusFound)
		}, true, nil},
		{"hang", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}, true, nil},
		{"extra envelope key", reply(`{"code":0,"msg":"success","data":{},"x":1}`), true, nil},
		{"missing code", reply(`{"msg":"success","data":{}}`), true, nil},
		{"code not a number", reply(`{"code":"0","msg":"success","data":{}}`), true, nil},
		{"trailing garbage", reply(okVol + `{}`), true, nil},
		{"API error is an answer", reply(`{"code":7,"msg":"vol not exists","data":null}`), false, ErrVolNotFound},
		{"bad data shape is an answer", reply(`{"code":0,"msg":"success","data":"oops"}`), false, ErrBadReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			first := newFakeMaster(t, tt.first)
			second := newFakeMaster(t, reply(okVol))
			c, err := New([]string{first.addr(), second.addr()}, Options{CallTimeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetVol(context.Background(), "v")
			if tt.want == nil && err != nil {
				t.Fatalf("GetVol = %v, want the second master's answer", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("GetVol = %v, want %v", err, tt.want)
			}
			if got := second.count() > 0; got != tt.tryNext {
				t.Errorf("second master asked = %v, want %v", got, tt.tryNext)
			}
		})
	}
}

func TestAllMastersDown(t *testing.T) {
	t.Parallel()
	bad := newFakeMaster(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "x", 502) })
	c, err := New([]string{closedAddr(t), bad.addr()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetVol(context.Background(), "v")
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetVol = %v, want ErrUnavailable only", err)
	}
}

func TestHangingMasterHonoursDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hung := newFakeMaster(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			reply(okVol)(w, r)
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })

	tests := []struct {
		name    string
		cap     time.Duration
		ctxWait time.Duration
	}{
		{"context deadline", time.Minute, 200 * time.Millisecond},
		{"per-call cap", 200 * time.Millisecond, time.Minute},
	}
	for _, tt := range tests {
		c, err := New([]string{hung.addr()}, Options{CallTimeout: tt.cap})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), tt.ctxWait)
		start := time.Now()
		_, err = c.GetVol(ctx, "v")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: GetVol = %v, want DeadlineExceeded", tt.name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", tt.name, d)
		}
	}
}

func TestPostFallsBackToGetOn405(t *testing.T) {
	t.Parallel()
	m := newFakeMaster(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		reply(`{"code":0,"msg":"success","data":"update vol[v] successfully\n"}`)(w, r)
	})
	c, err := New([]string{m.addr()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ExpandVol(context.Background(), "v", mustOwner(t, "csiuser"), 20); err != nil {
		t.Fatalf("ExpandVol = %v", err)
	}
	if m.count() != 2 {
		t.Errorf("requests = %d, want POST then GET", m.count())
	}
}

func TestSecretsStayOutOfURLsAndErrors(t *testing.T) {
	t.Parallel()
	owner := mustOwner(t, "plantedSecret")
	key := owner.AuthKey()
	// An unfriendly master that echoes the request back in its message.
	echo := newFakeMaster(t, func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		msg := fmt.Sprintf("user %s key %s rejected", r.Form.Get("owner"), r.Form.Get("authKey"))
		reply(fmt.Sprintf(`{"code":1,"msg":%q,"data":null}`, msg))(w, r)
	})
	c, err := New([]string{closedAddr(t), echo.addr()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	errs := []error{
		c.CreateVol(ctx, CreateRequest{Name: "v", Owner: owner, CapacityGiB: 1}),
		c.DeleteVol(ctx, "v", owner),
		c.ExpandVol(ctx, "v", owner, 2),
		c.ShrinkVol(ctx, "v", owner, 1),
	}
	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d succeeded", i)
		}
		text := fmt.Sprintf("%v %+v %#v", err, err, err)
		if strings.Contains(text, "plantedSecret") || strings.Contains(text, key) {
			t.Errorf("call %d: error leaks a secret: %s", i, text)
		}
	}
	for _, q := range echo.query {
		if strings.Contains(q, "plantedSecret") || strings.Contains(q, key) {
			t.Errorf("secret in query string %q", q)
		}
	}
}

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"127.0.0.1:17010", "master-0.cfs.svc:17010", "[::1]:17010"} {
		if err := CheckAddress(ok); err != nil {
			t.Errorf("CheckAddress(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "host", "http://h:1", "h:port", "u@h:1", "h:1/x", ":17010", "h :1"} {
		if err := CheckAddress(bad); !errors.Is(err, ErrBadAddress) {
			t.Errorf("CheckAddress(%q) = %v, want ErrBadAddress", bad, err)
		}
	}
}

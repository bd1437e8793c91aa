package emulator

import (
	"net/http/httptest"
	"testing"
)

// NewTestServer starts an emulator for opts on a loopback httptest server
// and stops both when the test ends. Use srv.Listener.Addr().String() as
// a masterAddr ("127.0.0.1:PORT"). It fails the test if opts are invalid.
func NewTestServer(tb testing.TB, opts Options) (*Emulator, *httptest.Server) {
	tb.Helper()
	e, err := New(opts)
	if err != nil {
		tb.Fatalf("emulator options: %v", err)
	}
	srv := httptest.NewServer(e)
	tb.Cleanup(func() {
		// Hung requests must be released first: Close waits for them.
		e.Close()
		srv.Close()
	})
	return e, srv
}

package identity

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

func TestProbe(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var calls atomic.Int32
	tests := []struct {
		name  string
		ready func(context.Context) error
		want  bool
	}{
		{"no check", nil, true},
		{"ready", func(context.Context) error { return nil }, true},
		{"backend down", func(context.Context) error { return errors.New("no monitor") }, false},
		{"backend hangs", func(ctx context.Context) error {
			calls.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is := New(Options{Name: "x", Ready: tc.ready})
			start := time.Now()
			resp, err := is.Probe(context.Background(), &csi.ProbeRequest{})
			if err != nil {
				t.Fatalf("Probe error %v: Probe must answer, not fail", err)
			}
			if resp.GetReady().GetValue() != tc.want {
				t.Fatalf("ready = %v, want %v", resp.GetReady().GetValue(), tc.want)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("Probe took %s", time.Since(start))
			}
		})
	}
	// Concurrent probes of a hung backend share one check.
	is := New(Options{Name: "x", Ready: tests[3].ready})
	calls.Store(0)
	for i := 0; i < 5; i++ {
		_, _ = is.Probe(context.Background(), &csi.ProbeRequest{})
	}
	close(release)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d readiness checks ran for 5 probes of a hung backend, want 1", n)
	}
}

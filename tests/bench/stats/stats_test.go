package stats

import (
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func durations(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{name: "empty", sorted: nil, p: 50, want: 0},
		{name: "one value", sorted: durations(7), p: 99, want: 7 * time.Millisecond},
		{name: "median of odd count", sorted: durations(1, 2, 3, 4, 5), p: 50, want: 3 * time.Millisecond},
		{name: "median of even count is the lower middle", sorted: durations(1, 2, 3, 4), p: 50,
			want: 2 * time.Millisecond},
		{name: "p99 of 100", sorted: durations(hundred...), p: 99, want: 99 * time.Millisecond},
		{name: "p50 of 100", sorted: durations(hundred...), p: 50, want: 50 * time.Millisecond},
		{name: "p99 of 10 is the max", sorted: durations(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), p: 99,
			want: 10 * time.Millisecond},
		{name: "p100 is the max", sorted: durations(1, 2, 3), p: 100, want: 3 * time.Millisecond},
		{name: "tiny p is the min", sorted: durations(1, 2, 3), p: 0.1, want: 1 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(p=%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

// fakeErrno looks like a go-ceph error.
type fakeErrno int

func (e fakeErrno) Error() string  { return fmt.Sprintf("errno %d", int(e)) }
func (e fakeErrno) ErrorCode() int { return int(e) }

func TestClassify(t *testing.T) {
	t.Parallel()
	exitErr := exec.Command("false").Run()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "grpc status", err: status.Error(codes.Aborted, "busy"), want: "Aborted"},
		{name: "wrapped grpc status", err: fmt.Errorf("op: %w", status.Error(codes.NotFound, "x")),
			want: "NotFound"},
		{name: "go-ceph errno", err: fmt.Errorf("create: %w", fakeErrno(-17)), want: "errno=17"},
		{name: "command exit", err: fmt.Errorf("mkfs: %w", exitErr), want: "exit"},
		{name: "plain", err: errors.New("boom"), want: "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	r := NewRecorder()
	for _, ms := range []int{40, 10, 30, 20} {
		r.Add(time.Duration(ms)*time.Millisecond, nil)
	}
	r.Add(time.Second, status.Error(codes.Internal, "first internal"))
	r.Add(time.Second, status.Error(codes.Internal, "second internal"))
	r.Add(time.Second, status.Error(codes.DeadlineExceeded, "slow"))

	s := r.Summarize(2 * time.Second)
	if s.Ops != 7 || s.OK != 4 {
		t.Errorf("ops/ok = %d/%d, want 7/4", s.Ops, s.OK)
	}
	if s.OpsPerS != 2 {
		t.Errorf("ops/s = %v, want 2 (successes only)", s.OpsPerS)
	}
	if s.P50 != 20*time.Millisecond || s.Max != 40*time.Millisecond {
		t.Errorf("p50/max = %v/%v, want 20ms/40ms (failures excluded)", s.P50, s.Max)
	}
	if s.P50Ms != 20 || s.MaxMs != 40 {
		t.Errorf("p50Ms/maxMs = %v/%v, want 20/40", s.P50Ms, s.MaxMs)
	}
	wantErrs := map[string]int{"Internal": 2, "DeadlineExceeded": 1}
	if len(s.Errors) != len(wantErrs) {
		t.Fatalf("errors = %v, want %v", s.Errors, wantErrs)
	}
	for code, n := range wantErrs {
		if s.Errors[code] != n {
			t.Errorf("errors[%s] = %d, want %d", code, s.Errors[code], n)
		}
	}
	if got := s.ErrorMsg["Internal"]; got != "rpc error: code = Internal desc = first internal" {
		t.Errorf("sample for Internal = %q, want the first message", got)
	}
}

func TestSummarizeEmpty(t *testing.T) {
	t.Parallel()
	s := NewRecorder().Summarize(0)
	if s.Ops != 0 || s.OpsPerS != 0 || s.P99 != 0 || s.Errors != nil {
		t.Errorf("empty summary = %+v, want zeros", s)
	}
}

// Package stats turns the latencies and errors of one benchmark phase into
// the figures the report prints: throughput, nearest-rank percentiles and
// errors grouped by gRPC code (or errno for direct librados calls).
package stats

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/status"
)

// Recorder collects the outcome of every operation of one phase. It is safe
// for concurrent use.
type Recorder struct {
	mu        sync.Mutex
	latencies []time.Duration
	errs      map[string]int
	samples   map[string]string
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{errs: map[string]int{}, samples: map[string]string{}}
}

// Add records one operation. Failed operations count as errors and their
// latency is kept apart from the successful ones.
func (r *Recorder) Add(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.latencies = append(r.latencies, d)
		return
	}
	code := Classify(err)
	r.errs[code]++
	if _, ok := r.samples[code]; !ok {
		r.samples[code] = err.Error()
	}
}

// Summary is the figures of one phase.
type Summary struct {
	Ops      int               `json:"ops"`
	OK       int               `json:"ok"`
	Wall     time.Duration     `json:"-"`
	WallSec  float64           `json:"wallSeconds"`
	OpsPerS  float64           `json:"opsPerSecond"`
	P50      time.Duration     `json:"-"`
	P99      time.Duration     `json:"-"`
	Max      time.Duration     `json:"-"`
	P50Ms    float64           `json:"p50Ms"`
	P99Ms    float64           `json:"p99Ms"`
	MaxMs    float64           `json:"maxMs"`
	Errors   map[string]int    `json:"errors,omitempty"`
	ErrorMsg map[string]string `json:"errorSamples,omitempty"`
}

// Summarize computes the figures for a phase that ran for wall time.
// Throughput counts successful operations only.
func (r *Recorder) Summarize(wall time.Duration) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat := append([]time.Duration(nil), r.latencies...)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })

	s := Summary{OK: len(lat), Wall: wall, WallSec: wall.Seconds()}
	s.Ops = s.OK
	if len(r.errs) > 0 {
		s.Errors = map[string]int{}
		s.ErrorMsg = map[string]string{}
		for code, n := range r.errs {
			s.Errors[code] = n
			s.Ops += n
			s.ErrorMsg[code] = r.samples[code]
		}
	}
	if wall > 0 {
		s.OpsPerS = float64(s.OK) / wall.Seconds()
	}
	s.P50, s.P99 = Percentile(lat, 50), Percentile(lat, 99)
	if len(lat) > 0 {
		s.Max = lat[len(lat)-1]
	}
	s.P50Ms, s.P99Ms, s.MaxMs = ms(s.P50), ms(s.P99), ms(s.Max)
	return s
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest value that at least p% of the values do not exceed.
// It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// errnoError is what go-ceph's errors implement.
type errnoError interface{ ErrorCode() int }

// Classify names the group an error is counted under: the gRPC code name
// for a status error ("Internal", "DeadlineExceeded"), "errno=N" for a
// go-ceph error (librados returns negative errno values; the group shows
// the positive one), "exit" for a failed command and "error" otherwise.
func Classify(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Code().String()
	}
	var en errnoError
	if errors.As(err, &en) {
		return fmt.Sprintf("errno=%d", abs(en.ErrorCode()))
	}
	var ex interface{ ExitCode() int }
	if errors.As(err, &ex) {
		return "exit"
	}
	return "error"
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// Package procstat samples a process's memory and thread count from
// /proc/PID/status while a benchmark phase runs.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// Status is one reading of /proc/PID/status.
type Status struct {
	// RSS is VmRSS in bytes: resident memory now.
	RSS uint64
	// HWM is VmHWM in bytes: the highest RSS since the process started.
	HWM uint64
	// Threads is the number of threads now.
	Threads int
	// RSSAnon and RSSFile split RSS: anonymous memory (heaps, stacks) and
	// file-backed pages (the executable and shared libraries, counted in
	// full although other processes may share them).
	RSSAnon uint64
	RSSFile uint64
}

// Read parses /proc/PID/status.
func Read(pid int) (Status, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Status{}, err
	}
	return parse(data)
}

func parse(data []byte) (Status, error) {
	var st Status
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		fields := bytes.Fields(val)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseUint(string(fields[0]), 10, 64)
		if err != nil {
			continue
		}
		switch string(key) {
		case "VmRSS":
			st.RSS, found = n<<10, found+1
		case "VmHWM":
			st.HWM, found = n<<10, found+1
		case "Threads":
			st.Threads, found = int(n), found+1
		case "RssAnon":
			st.RSSAnon = n << 10
		case "RssFile":
			st.RSSFile = n << 10
		}
	}
	if found < 3 {
		return st, fmt.Errorf("status: VmRSS, VmHWM or Threads missing")
	}
	return st, nil
}

// Peak is the largest RSS and thread count seen by a Sampler.
type Peak struct {
	RSS     uint64
	Threads int
	// Samples is how many readings the peak was taken from.
	Samples int
}

// Sampler reads a process's status at a fixed interval until stopped.
type Sampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak Peak
	err  error
}

// Start samples pid every interval (and once at once) until Stop.
func Start(pid int, interval time.Duration) *Sampler {
	s := &Sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go s.loop(interval)
	return s
}

func (s *Sampler) loop(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.sample()
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *Sampler) sample() {
	st, err := Read(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	s.peak.RSS = max(s.peak.RSS, st.RSS)
	s.peak.Threads = max(s.peak.Threads, st.Threads)
	s.peak.Samples++
}

// Stop ends sampling and returns the peak, with the last read error if any
// reading failed (the process exited, for example).
func (s *Sampler) Stop() (Peak, error) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.err
}

// CPUTime returns the CPU time (user and system) a process and its
// waited-for children have used, from /proc/PID/stat.
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseCPU(data)
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

func parseCPU(data []byte) (time.Duration, error) {
	// The command name (field 2) may hold spaces: count fields after ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no command name")
	}
	f := bytes.Fields(data[i+1:])
	// f[0] is field 3 (state); utime, stime, cutime, cstime are 14–17.
	if len(f) < 15 {
		return 0, fmt.Errorf("stat: too few fields")
	}
	var ticks uint64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %w", err)
		}
		ticks += uint64(max(n, 0))
	}
	return time.Duration(ticks) * clockTick, nil
}

// PSS returns the proportional set size from /proc/PID/smaps_rollup: RSS
// with every shared page divided among the processes that map it.
func PSS(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("Pss:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("smaps_rollup: %w", err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("smaps_rollup: no Pss line")
}

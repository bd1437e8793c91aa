package procstat

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// GoRuntime is what a Go plugin's Prometheus endpoint says about its own
// memory: how much of the RSS the Go runtime accounts for, the rest being
// C libraries (librados, librbd) and the mapped files.
type GoRuntime struct {
	// Sys is go_memstats_sys_bytes: all memory the Go runtime obtained.
	Sys uint64
	// HeapInuse and StackInuse are the live parts of it.
	HeapInuse  uint64
	StackInuse uint64
	// Threads is go_threads: OS threads the Go runtime created.
	Threads int
}

// ReadGoRuntime scrapes a Prometheus text endpoint for the Go collector's
// memory gauges.
func ReadGoRuntime(ctx context.Context, url string) (GoRuntime, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return GoRuntime{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return GoRuntime{}, err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only scrape
	if resp.StatusCode != http.StatusOK {
		return GoRuntime{}, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var g GoRuntime
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_sys_bytes":
			g.Sys, found = uint64(v), found+1
		case "go_memstats_heap_inuse_bytes":
			g.HeapInuse = uint64(v)
		case "go_memstats_stack_inuse_bytes":
			g.StackInuse = uint64(v)
		case "go_threads":
			g.Threads = int(v)
		}
	}
	if err := sc.Err(); err != nil {
		return g, err
	}
	if found == 0 {
		return g, fmt.Errorf("%s: no go_memstats_sys_bytes", url)
	}
	return g, nil
}

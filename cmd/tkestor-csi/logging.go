package main

import (
	"os"

	"github.com/go-logr/logr/funcr"
	"k8s.io/klog/v2"
)

// setupLogging switches klog to one JSON object per line when asked; the
// text format is klog's own.
func setupLogging(format string) {
	if format != "json" {
		return
	}
	logger := funcr.NewJSON(func(obj string) { _, _ = os.Stderr.WriteString(obj + "\n") },
		funcr.Options{LogTimestamp: true, Verbosity: verbosity()})
	klog.SetLogger(logger)
}

// verbosity reads klog's -v back so the JSON logger honours it.
func verbosity() int {
	for v := 10; v > 0; v-- {
		if klog.V(klog.Level(v)).Enabled() {
			return v
		}
	}
	return 0
}

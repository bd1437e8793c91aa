package cfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFailureReason(t *testing.T) {
	t.Parallel()
	wrap := func(reason string) string {
		return "Mount failed: startDaemon failed: daemon start failed, cmd(/bin/cfs-client) " +
			"args([-f -c /x.json]) env([PATH=/bin SECRET_ENV=hush]) err(readFromProcess: sub-process: " + reason + ")\n"
	}
	tests := []struct {
		name, output string
		want         error
		reason       string
	}{
		{"auth", wrap("[fuse.go 543] mount failed: [super.go 138] NewMetaWrapper failed!client and server " +
			"auth key do not match :: client and server auth key do not match"), ErrPermission, "auth key do not match"},
		{"missing", wrap("[fuse.go 393] parse mount opt from master failed: vol not exists"), ErrVolumeNotFound,
			"vol not exists"},
		{"master down", wrap(`[fuse.go 393] parse mount opt from master failed: Get "http://h:1/admin/getVol?name=v": ` +
			"dial tcp h:1: connect: connection refused"), ErrUnavailable, "connection refused"},
		{"busy", wrap("mountpoint:/s has been mounted"), ErrWrongState, "has been mounted"},
		{"parens kept", wrap("less than minLimit(3)"), nil, "less than minLimit(3)"},
		{"no outcome", "Mount failed: startDaemon failed: daemon start failed, cmd(c) args([]) env([A=b]) " +
			"err(readFromProcess: Decode: EOF)\n", nil, "Decode: EOF"},
		{"plain line", "Mount failed: parse mount opt failed: invalid config file\n", nil, "invalid config file"},
		{"env only", "Mount failed: env([SECRET_ENV=hush])\n", nil, "no reason given"},
		{"nothing", "", nil, "no reason given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := clientFailure(1, tt.output, nil)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.reason) || strings.Contains(err.Error(), "SECRET_ENV") {
				t.Errorf("err = %v, want reason %q and no environment", err, tt.reason)
			}
		})
	}
}

func TestFailureRedactsOwner(t *testing.T) {
	t.Parallel()
	for _, reason := range []string{"sekret first", "user sekret here", "last is sekret", "key 0123abcd"} {
		err := clientFailure(1, "Mount failed: x err(sub-process: "+reason+")", []string{"sekret", "0123abcd"})
		if strings.Contains(err.Error(), "sekret") || strings.Contains(err.Error(), "0123abcd") {
			t.Errorf("%q: %v", reason, err)
		}
	}
}

// A client that never reports is cut off at the deadline and killed, and
// so is its daemon, found by the config path on its command line.
func TestClientTimeoutKillsDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "hanging-client")
	// The "daemon" outlives its parent, like the real client's child.
	body := "#!/bin/sh\n" +
		"if [ \"$1\" = -f ]; then while :; do sleep 1; done; fi\n" +
		"setsid \"$0\" -f -c \"$2\" </dev/null >/dev/null 2>&1 &\n" +
		"while :; do sleep 1; done\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "client.json")
	if err := os.WriteFile(config, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &execClient{path: script}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := c.Mount(ctx, config)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Mount = %v, want DeadlineExceeded", err)
	}
	if n := len(clientPIDs(config)); n != 1 {
		t.Fatalf("daemons left after the deadline: %d, want 1 (the parent is killed)", n)
	}
	if err := c.Stop(context.Background(), config, 0); err != nil {
		t.Fatal(err)
	}
	if pids := clientPIDs(config); len(pids) != 0 {
		t.Errorf("left running: %v", pids)
	}
}

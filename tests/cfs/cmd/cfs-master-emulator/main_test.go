package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tkestack/tkestor-csi/tests/cfs/emulator"
)

// TestParseFlags: flags reach the emulator options; impossible
// combinations are refused with a reason.
func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(o options) bool
	}{
		{"defaults", nil, "", func(o options) bool {
			return o.listen == "127.0.0.1:17010" && o.emu.Numbering == emulator.Numbering35 &&
				o.emu.Delete == emulator.DeleteDirect && o.emu.DeleteDelay == 48*time.Hour
		}},
		{"all flags", []string{"--listen=127.0.0.1:0", "--numbering=2.x", "--delete=direct",
			"--state-file=/s.json", "--cluster-name=c1", "--capacity-gib=50"}, "", func(o options) bool {
			return o.emu.Numbering == emulator.Numbering2x && o.emu.StateFile == "/s.json" &&
				o.emu.ClusterName == "c1" && o.emu.CapacityGiB == 50
		}},
		{"2.x has no delayed delete", []string{"--numbering=2.x", "--delete=delayed"}, "needs numbering", nil},
		{"unknown numbering", []string{"--numbering=9"}, "unknown numbering", nil},
		{"stray argument", []string{"extra"}, "unexpected argument", nil},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(o) {
				t.Fatalf("parseFlags(%q) = %+v, %v", tc.args, o, err)
			}
		})
	}
}

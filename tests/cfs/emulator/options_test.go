package emulator

import (
	"strings"
	"testing"
)

// TestValidate rejects combinations no real release had.
func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"defaults", Options{}, ""},
		{"2.x direct", Options{Numbering: Numbering2x, Delete: DeleteDirect}, ""},
		{"3.3.2 delayed", Options{Numbering: Numbering332, Delete: DeleteDelayed}, ""},
		{"2.x delayed", Options{Numbering: Numbering2x, Delete: DeleteDelayed}, "needs numbering 3.3.2 or 3.5"},
		{"unknown numbering", Options{Numbering: "4.0"}, "unknown numbering"},
		{"unknown delete", Options{Delete: "later"}, "unknown delete mode"},
		{"no datanodes", Options{DataNodes: -1}, "at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.opts.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestAuthKey is the recorded md5 of the test owner.
func TestAuthKey(t *testing.T) {
	t.Parallel()
	if got := AuthKey(testOwner); got != testKey {
		t.Errorf("AuthKey(%q) = %s, want %s", testOwner, got, testKey)
	}
}

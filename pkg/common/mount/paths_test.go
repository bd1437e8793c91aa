package mount

import (
	"errors"
	"testing"
)

func TestCheckPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		ok   bool
	}{
		{"/var/lib/kubelet/plugins/x/globalmount", true},
		{"", true},
		{"/", false},
		{"relative/dir", false},
		{"/var/lib/kubelet/../../../etc", false},
		{"/var/lib/kubelet/./x", false},
		{"/var/lib/kubelet/x/", false},
		{"/var//lib", false},
	}
	for _, tc := range tests {
		err := CheckPath("staging_target_path", tc.path)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadPath)) {
			t.Errorf("CheckPath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
	}
}

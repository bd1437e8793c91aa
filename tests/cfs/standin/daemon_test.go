package standin

import (
	"bytes"
	"strings"
	"testing"
)

// TestReadOutcome: the parent's view of the status pipe.
func TestReadOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pipe    string
		wantErr string
		wantLog string
	}{
		{"mounted", `{"outcome":true,"ok":true}`, "", ""},
		{"failed", `{"outcome":true,"error":"vol not exists"}`, "sub-process: vol not exists", ""},
		{"died first", ``, "Decode: EOF", ""},
		{"log then ok", `{"log":"Warning: port\n"}{"outcome":true,"ok":true}`, "", "Warning: port\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var status bytes.Buffer
			err := readOutcome(strings.NewReader(tc.pipe), &status)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
			if status.String() != tc.wantLog {
				t.Errorf("status = %q, want %q", status.String(), tc.wantLog)
			}
		})
	}
}

// TestUnescapeMountPath undoes mountinfo's octal escapes.
func TestUnescapeMountPath(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		`/plain/path`:          "/plain/path",
		`/with\040space`:       "/with space",
		`/tab\011and\134slash`: "/tab\tand\\slash",
		`/trailing\04`:         `/trailing\04`,
	}
	for in, want := range tests {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}

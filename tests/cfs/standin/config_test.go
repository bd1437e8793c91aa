package standin

import (
	"slices"
	"strings"
	"testing"
)

// TestParseConfig: every value may be a string, number or boolean, and
// the four mandatory keys are checked with the real client's message.
func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		json    string
		want    Config
		wantErr string
	}{
		{
			name: "cubefs-csi style, all strings",
			json: `{"masterAddr":"127.0.0.1:17010","mountPoint":"/m","volName":"pvc-a","owner":"csiuser",
				"logDir":"/l","logLevel":"info","profPort":"17410","exporterPort":"17510","rdonly":"true",
				"subdir":"a/b","consulAddr":"http://c","crossZone":"false","enableToken":"false"}`,
			want: Config{MasterAddr: "127.0.0.1:17010", MountPoint: "/m", VolName: "pvc-a",
				Owner: "csiuser", LogDir: "/l", LogLevel: "info", ProfPort: "17410",
				ExporterPort: "17510", Rdonly: true, SubDir: "a/b", ConsulAddr: "http://c"},
		},
		{
			name: "numbers and booleans",
			json: `{"masterAddr":"h:1","mountPoint":"/m","volName":"v","owner":"o","exporterPort":17510,"rdonly":false,"standinDataRoot":"/d"}`,
			want: Config{MasterAddr: "h:1", MountPoint: "/m", VolName: "v", Owner: "o", ExporterPort: "17510", DataRoot: "/d"},
		},
		{
			name:    "missing owner",
			json:    `{"masterAddr":"h:1","mountPoint":"/m","volName":"v"}`,
			wantErr: "invalid config file: lack of mandatory fields, mountPoint(/m), volName(v), owner(), masterAddr(h:1)",
		},
		{name: "not JSON", json: `masterAddr=h`, wantErr: "invalid config file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseConfig([]byte(tc.json))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || *got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestMasters splits masterAddr as a comma list.
func TestMasters(t *testing.T) {
	t.Parallel()
	c := Config{MasterAddr: "10.0.0.1:17010, 10.0.0.2:17010,,"}
	if got, want := c.Masters(), []string{"10.0.0.1:17010", "10.0.0.2:17010"}; !slices.Equal(got, want) {
		t.Errorf("Masters() = %q, want %q", got, want)
	}
}

// TestResolvedDataRoot: config key, then environment, then default.
func TestResolvedDataRoot(t *testing.T) {
	tests := []struct {
		name, key, env, want string
	}{
		{"key wins", "/from-key", "/from-env", "/from-key"},
		{"env", "", "/from-env", "/from-env"},
		{"default", "", "", DefaultDataRoot},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvDataRoot, tc.env)
			c := Config{DataRoot: tc.key}
			if got := c.ResolvedDataRoot(); got != tc.want {
				t.Errorf("ResolvedDataRoot() = %q, want %q", got, tc.want)
			}
		})
	}
}

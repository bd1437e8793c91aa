package master

import (
	"errors"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	dup := "action[createVol], clusterID[c] name:v, err:action[doCreateVol], clusterID[c] name:v, err:duplicate vol  "
	tests := []struct {
		name string
		code int
		msg  string
		want error
	}{
		{"duplicate wrapped in code 1", 1, dup, ErrDuplicateVol},
		{"duplicate sentinel 2.x", 12, "duplicate vol", ErrDuplicateVol},
		{"duplicate sentinel 3.5", 14, "duplicate vol", ErrDuplicateVol},
		{"not found", 7, "vol not exists", ErrVolNotFound},
		{"not found code only", 7, "something else", ErrVolNotFound},
		{"auth mismatch 2.x", 32, "client and server auth key do not match", ErrAuthKeyMismatch},
		{"auth mismatch 3.5", 34, "client and server auth key do not match", ErrAuthKeyMismatch},
		{"32 in 3.5 is not auth", 32, "no enough replica", ErrNoCapacity},
		{"34 in 2.x is not auth", 34, "AuthAPIAccessGenRespError", ErrMaster},
		{"marked delete", 8, "vol has been mark delete, repeated deletions are not allowed", ErrVolMarkedDeleted},
		{"no vol policy 2.x", 47, "no vol policy", ErrNoVolPolicy},
		{"no vol policy 3.3.2", 49, "no vol policy", ErrNoVolPolicy},
		{"no vol policy 3.5", 50, "no vol policy", ErrNoVolPolicy},
		{"expand equal", 2, "expand capacity[20] should be larger than the old capacity[20]", ErrExpandNotLarger},
		{"shrink equal", 2, "shrink capacity[15] should be less than the old capacity[15]", ErrShrinkNotSmaller},
		{"below used", 1, "capacity[1] has to be 1 percent larger than the used space[5]", ErrBelowUsed},
		{"too few datanodes", 1, "initDataPartitions failed, createdCount(0), less than minLimit(3) ", ErrNoCapacity},
		{"param", 2, "owner can only be number and letters", ErrInvalidParam},
		{"param missing", 2, "[operate_util.go 225] parameter authKey not found", ErrInvalidParam},
		{"no blobstore", 2, "cluster has no resoure to support volStorageClass(BlobStore)", ErrInvalidParam},
		{"param asking too much", 2, "not enough zones for crossZone", ErrInvalidParam},
		{"unknown", 1, "action[checkZoneName] cluster has one zone,can't cross zone", ErrMaster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := classify(tt.code, tt.msg); !errors.Is(got, tt.want) {
				t.Errorf("classify(%d, %q) = %v, want %v", tt.code, tt.msg, got, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	owner, err := NewOwner("sekretOwner")
	if err != nil {
		t.Fatal(err)
	}
	key := owner.AuthKey()
	tests := []struct{ name, in string }{
		{"first", "sekretOwner is not allowed"},
		{"middle", "user [sekretOwner] has no vol"},
		{"last", "no policy for sekretOwner"},
		{"key first", key + " mismatch"},
		{"key middle", "authKey=" + key + "&name=x"},
		{"key last", "bad key " + key},
		{"both", "sekretOwner/" + key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := owner.secrets().redact(tt.in)
			if strings.Contains(got, "sekretOwner") || strings.Contains(got, key) {
				t.Errorf("redact(%q) = %q still holds a secret", tt.in, got)
			}
			if !strings.Contains(got, "<redacted>") {
				t.Errorf("redact(%q) = %q has no marker", tt.in, got)
			}
		})
	}
}

func TestOwner(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "csi-user", "1abc", "_abc", "abcdefghijklmnopqrstuv", "a b"} {
		if _, err := NewOwner(bad); !errors.Is(err, ErrBadOwner) {
			t.Errorf("NewOwner(%q) = %v, want ErrBadOwner", bad, err)
		}
	}
	o, err := NewOwner("csiuser")
	if err != nil {
		t.Fatal(err)
	}
	// The research notes measured md5("csiuser") on a real master.
	if got := o.AuthKey(); got != "3448e7f01aad59de8896a173d729f34c" {
		t.Errorf("AuthKey = %s", got)
	}
	for _, s := range []string{o.String(), o.GoString()} {
		if strings.Contains(s, "csiuser") {
			t.Errorf("owner printed as %q", s)
		}
	}
	if b, _ := o.MarshalText(); strings.Contains(string(b), "csiuser") {
		t.Errorf("owner marshalled as %q", b)
	}
}

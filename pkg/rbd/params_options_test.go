package rbd

import (
	"errors"
	"testing"
)

func TestCheckOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                      string
		fsType, mkfs, mapO, unmap string
		wantErr                   bool
	}{
		{"empty", FsExt4, "", "", "", false},
		{"ext4 defaults style", FsExt4, "-m0 -E nodiscard,lazy_itable_init=1 -O ^has_journal", "", "", true},
		{"ext4 reserved and features", FsExt4, "-m 0 -E nodiscard,lazy_itable_init=1 -O metadata_csum", "", "", false},
		{"ext4 populate from host dir", FsExt4, "-d etc", "", "", true},
		{"ext4 path value", FsExt4, "-E root_owner=0:0 -L /etc", "", "", true},
		{"ext4 extra device word", FsExt4, "-F /dev/loop9", "", "", true},
		{"ext4 bad blocks file", FsExt4, "-l blocks.txt", "", "", true},
		{"xfs protofile", FsXFS, "-p shadow", "", "", true},
		{"xfs data file subopt", FsXFS, "-d file=1,name=x", "", "", true},
		{"xfs stripe", FsXFS, "-d su=64k,sw=4 -K", "", "", false},
		{"shell syntax", FsExt4, "-m0;touch", "", "", true},
		{"krbd options", FsExt4, "", "queue_depth=128,lock_on_read,ms_mode=secure", "force", false},
		{"nbd options", FsExt4, "", "try-netlink,io-timeout=30", "", false},
		{"nbd log file", FsExt4, "", "log-file=x.log", "", true},
		{"keyring injection", FsExt4, "", "queue_depth=1,keyring=x", "", true},
		{"path value", FsExt4, "", "ms_mode=/etc/shadow", "", true},
		{"unknown unmap option", FsExt4, "", "", "force,log-file=x", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkOptions(tc.fsType, tc.mkfs, tc.mapO, tc.unmap)
			if tc.wantErr != (err != nil) {
				t.Fatalf("checkOptions() = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidParam) {
				t.Fatalf("error %v is not ErrInvalidParam", err)
			}
		})
	}
}

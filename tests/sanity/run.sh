#!/usr/bin/env bash
# run.sh rbd|cfs: csi-sanity (kubernetes-csi/csi-test v5), the whole suite,
# against the built binary in --mode=all.
#   rbd: the real test Ceph cluster (with-ceph.sh provides its environment)
#        and the userspace mapper (rbd-fuse + loop);
#   cfs: the ChubaoFS master emulator and the cfs-client stand-in (fakes of
#        ChubaoFS, which has no Debian package; see tests/cfs/README.md).
# Prints ginkgo's summary; exits non-zero when any spec failed.
set -euo pipefail
driver=${1:?usage: run.sh rbd|cfs}
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/bin
work=$(mktemp -d /var/tmp/tkestor-sanity-$driver.XXXXXX)
chmod 700 "$work"
# shellcheck source=tests/lib/plugin.sh
. "$top/tests/lib/plugin.sh"
trap 'stop_all; remove_work' EXIT

node=sanity-node
if [ "$driver" = rbd ]; then
	cat >"$work/params.yaml" <<P
clusterID: $TKESTOR_CLUSTER_ID
pool: $TKESTOR_POOL
imageFeatures: layering
mounter: fuse
csi.storage.k8s.io/fstype: ext4
P
	start_rbd_plugin "$node" -v=4
else
	port=${TKESTOR_CFS_PORT:-17010}
	cat >"$work/params.yaml" <<P
masterAddr: 127.0.0.1:$port
consulAddr: http://127.0.0.1:8500
logLevel: error
P
	start_cfs_master "$port"
	start_cfs_plugin "$node" "$port" -v=4
fi

rc=0
"$bin/csi-sanity" --csi.endpoint="unix://$work/$node.sock" \
	--csi.stagingdir="$work/staging" --csi.mountdir="$work/mount" \
	--csi.testvolumeparameters="$work/params.yaml" --csi.secrets="$work/$driver-secrets.yaml" \
	--csi.testvolumesize=$((1 << 30)) --csi.testvolumeexpandsize=$((2 << 30)) \
	--ginkgo.timeout=40m --ginkgo.no-color --ginkgo.v >"$work/sanity.log" 2>&1 || rc=$?

echo "skipped specs, by the reason csi-sanity gives:"
grep -A1 -E '^S \[SKIPPED\]' "$work/sanity.log" | grep -vE '^(S \[SKIPPED\]|--)' | sed 's/^ */    /' |
	sort | uniq -c || true
grep -E '^(Ran [0-9]+ of [0-9]+ Specs|SUCCESS!|FAIL!)' "$work/sanity.log" || true
if [ $rc -ne 0 ]; then
	echo "--- failures ---"
	grep -E '^\s*\[FAIL\]' "$work/sanity.log" | sort -u | head -40 || true
	cp "$work/sanity.log" "/var/tmp/tkestor-sanity-$driver.log"
	cp "$work/$node.log" "/var/tmp/tkestor-sanity-$driver-plugin.log"
	echo "full logs: /var/tmp/tkestor-sanity-$driver.log, /var/tmp/tkestor-sanity-$driver-plugin.log"
fi
if [ "$driver" = rbd ]; then
	echo "images left in pool $TKESTOR_POOL: $(rbd -c "$CEPH_CONF" ls "$TKESTOR_POOL" | wc -l)"
fi
exit $rc

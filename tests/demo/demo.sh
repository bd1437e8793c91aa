#!/usr/bin/env bash
# demo.sh: one RBD volume's life on the real test Ceph cluster, then one
# ChubaoFS volume's life on the master emulator, through the plugin's gRPC
# endpoints. Run it as `make demo` (which starts the Ceph cluster).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/bin
work=$(mktemp -d /var/tmp/tkestor-demo.XXXXXX)
chmod 700 "$work"
# shellcheck source=tests/lib/plugin.sh
. "$top/tests/lib/plugin.sh"
trap 'stop_all; remove_work' EXIT
metrics_port=${TKESTOR_DEMO_METRICS_PORT:-19090}
cfs_port=${TKESTOR_CFS_PORT:-17011}

banner() { printf '\n############ %s ############\n' "$*"; }

show_metrics() {
	echo
	echo "==> Metrics: curl http://127.0.0.1:$1/metrics (RPC counts by method and code)"
	curl -fsS "http://127.0.0.1:$1/metrics" | grep '^tkestor_csi_rpc_total' | sed 's/^/    /'
	echo "==> Health: curl http://127.0.0.1:$1/healthz -> $(curl -fsS "http://127.0.0.1:$1/healthz")"
}

# xfs, not ext4: ext4 grows online only with CAP_SYS_RESOURCE, which build
# machines and CI containers lack (a privileged node plugin has it).
banner "Ceph RBD on the test cluster (pool $TKESTOR_POOL, userspace mapper, xfs)"
images_before=$(rbd -c "$CEPH_CONF" ls "$TKESTOR_POOL" | wc -l)
start_rbd_plugin demo-node --metrics-address="127.0.0.1:$metrics_port"
"$bin/tkestor-csi-demo" --driver=rbd --endpoint="unix://$work/demo-node.sock" --nodeid=demo-node \
	--params="clusterID=$TKESTOR_CLUSTER_ID,pool=$TKESTOR_POOL,imageFeatures=layering,mounter=fuse,csi.storage.k8s.io/fstype=xfs" \
	--secrets="$work/rbd-secret.json" --work="$work/rbd"
show_metrics "$metrics_port"
echo
images_after=$(rbd -c "$CEPH_CONF" ls "$TKESTOR_POOL" | wc -l)
echo "==> Images the demo left in pool $TKESTOR_POOL: $((images_after - images_before))" \
	"(the pool held $images_before before the demo, $images_after now)"

banner "ChubaoFS on the master emulator and the cfs-client stand-in (test fakes)"
start_cfs_master "$cfs_port"
start_cfs_plugin demo-cfs-node "$cfs_port" --metrics-address="127.0.0.1:$((metrics_port + 1))"
"$bin/tkestor-csi-demo" --driver=cfs --endpoint="unix://$work/demo-cfs-node.sock" --nodeid=demo-cfs-node \
	--params="masterAddr=127.0.0.1:$cfs_port,consulAddr=http://127.0.0.1:8500,logLevel=error" \
	--secrets="$work/cfs-secret.json" --work="$work/cfs"
show_metrics "$((metrics_port + 1))"
echo
# A deleted volume stays listed with Status 1 until the master purges it,
# as on a real master; only live volumes count.
echo "==> Volumes left on the ChubaoFS master: $(curl -fsS "http://127.0.0.1:$cfs_port/vol/list" |
	jq '[.data[] | select(.Status != 1)] | length')"

#!/usr/bin/env bash
# run.sh [CSI-BENCH FLAGS...]: benchmark tkestor-csi's RBD driver beside the
# floor (go-ceph directly; rbd-fuse, losetup, mkfs and mount by hand) on the
# test Ceph cluster. Run it under tests/lib/with-ceph.sh (`make bench` does).
#
# The controller and the node plugin run as separate processes, so each RSS
# figure is that process's own. Controller phases: N=100 at C=1, 8 and 32;
# node phases: N=15 at C=1 (every stage maps, formats and mounts for real);
# then the go-ceph building blocks (image open, metadata write, lock) that
# explain the controller figures. The plugins log at -v=2 and serve metrics,
# as deployed.
# TKESTOR_BENCH_COMMIT names the commit when $top is not a git checkout.
# Extra flags go to csi-bench and win over these defaults (for example
# --rounds=2, --json, --count=50). Prints csi-bench's table, then checks that
# nothing is left: no new image in the pool or its trash, no mount (FUSE
# mounts of rbd-fuse included) or loop device under the work directory. Exits non-zero when
# something is left or csi-bench failed.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/bin
: "${TKESTOR_CSI_CONFIG:?run under tests/lib/with-ceph.sh}"
work=$(mktemp -d /var/tmp/tkestor-bench.XXXXXX)
chmod 700 "$work"
prefix=csibench-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
# shellcheck source=tests/lib/plugin.sh
. "$top/tests/lib/plugin.sh"

rbd_() { timeout 30 rbd -c "$CEPH_CONF" "$@"; }
images() { rbd_ ls "$TKESTOR_POOL" | sort; }
trash() { rbd_ trash ls "$TKESTOR_POOL" | sort; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_plugin ROLE MODE: one tkestor-csi process, with metrics on a free
# local port as deployed; its PID goes to pid_ROLE, its port to port_ROLE.
start_plugin() {
	local role=$1 mode=$2 port
	port=$(free_port)
	printf -v "port_$role" %s "$port"
	"$bin/tkestor-csi" --driver=rbd --mode="$mode" --nodeid="bench-$role" \
		--endpoint="unix://$work/$role.sock" --cluster-config="$TKESTOR_CSI_CONFIG" \
		--controller-secret-dir="$work/rbd-ctrl-secret" --state-dir="$work/state-$role" -v=2 \
		--metrics-address="127.0.0.1:$port" >"$work/$role.log" 2>&1 &
	pids+=($!)
	printf -v "pid_$role" %s $!
	wait_socket $! "$work/$role.sock" "$work/$role.log"
}

# loops_under DIR: loop devices whose backing file is under DIR, read from
# sysfs (losetup stats every backing file, and hangs on a dead FUSE mount).
loops_under() {
	local f
	for f in /sys/block/loop*/loop/backing_file; do
		[ -r "$f" ] || continue
		case $(cat "$f" 2>/dev/null) in
		"$1"/*) f=${f#/sys/block/}; echo "/dev/${f%%/*}" ;;
		esac
	done
}

# leftovers_local: mounts and loop devices under $work.
# Each is taken down (ours: nothing else uses $work) and reported.
leftovers_local() {
	local left=0 mp dev
	while read -r mp; do
		[ -n "$mp" ] || continue
		echo "left mounted: $mp"
		umount -l "$mp" 2>/dev/null || true
		left=1
	done < <(awk -v w="$work" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r)
	while read -r dev; do
		[ -n "$dev" ] || continue
		echo "left attached: loop device $dev"
		losetup -d "$dev" 2>/dev/null || true
		left=1
	done < <(loops_under "$work")
	return $left
}

finish() {
	local rc=$?
	stop_all
	leftovers_local || rc=1
	if [ $rc -ne 0 ]; then
		mkdir -p /var/tmp/tkestor-bench-logs
		cp "$work"/*.log /var/tmp/tkestor-bench-logs/ 2>/dev/null || true
		echo "plugin logs: /var/tmp/tkestor-bench-logs/"
	fi
	rm -rf "$work"
	exit $rc
}
trap finish EXIT

(cd "$top" && go build -tags pacific -o "$bin/csi-bench" ./tests/bench/cmd/csi-bench)
rbd_secret_files
images >"$work/images.before"
trash >"$work/trash.before"
start_plugin controller controller
start_plugin node node
commit=${TKESTOR_BENCH_COMMIT:-}
if [ -z "$commit" ]; then
	commit=$(git -C "$top" rev-parse HEAD 2>/dev/null || echo unknown)
	git -C "$top" diff --quiet HEAD 2>/dev/null || commit+=" (working tree differs from it)"
fi
echo "tkestor-csi $commit:" \
	"controller pid $pid_controller, node pid $pid_node; pool $TKESTOR_POOL had" \
	"$(wc -l <"$work/images.before") image(s) before the run"

# OSD operations and monitor commits per call, from the daemons' admin sockets.
perf=()
for d in osd.0 mon.a; do
	sock=${TKESTOR_CEPH_DIR:-/nonexistent}/run/$d.asok
	[ -S "$sock" ] && perf+=("--${d%%.*}-admin-socket=$sock")
done

rc=0
"$bin/csi-bench" --endpoint="unix://$work/controller.sock" --node-endpoint="unix://$work/node.sock" \
	--controller-pid="$pid_controller" --node-pid="$pid_node" \
	--controller-metrics-url="http://127.0.0.1:$port_controller/metrics" \
	--node-metrics-url="http://127.0.0.1:$port_node/metrics" \
	--parameters="clusterID=$TKESTOR_CLUSTER_ID,pool=$TKESTOR_POOL,imageFeatures=layering,mounter=fuse" \
	--fstype=ext4 \
	--snapshot-parameters="clusterID=$TKESTOR_CLUSTER_ID" \
	--secrets-file="$work/rbd-secret.json" --cluster-config="$TKESTOR_CSI_CONFIG" \
	--count=100 --concurrency=1,8,32 --node-count=15 --node-concurrency=1 \
	--phases=volume,snapshot,primitives,node \
	--name-prefix="$prefix" --work-dir="$work/bench" "${perf[@]}" "$@" || rc=$?

# The pool: every image and trash entry that appeared during the run must be
# gone again (a driver that purges its trash in the background gets 60 s).
# Other jobs may share the cluster, so only new names count.
new_images() {
	images | comm -13 "$work/images.before" -
	trash | comm -13 "$work/trash.before" - | sed 's/^/trash: /'
}
for _ in $(seq 60); do
	[ -z "$(new_images)" ] && break
	sleep 1
done
left=$(new_images)
if [ -n "$left" ]; then
	echo "LEFT IN POOL $TKESTOR_POOL (appeared during the run; another job on the cluster may own some):"
	echo "$left" | sed 's/^/  /'
	rc=1
else
	after=$(images | wc -l)
	if [ "$after" -eq 0 ]; then
		echo "pool $TKESTOR_POOL: empty at the end"
	else
		echo "pool $TKESTOR_POOL: nothing new left ($after image(s), all there before the run)"
	fi
fi
exit $rc

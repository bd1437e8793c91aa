# plugin.sh: shell helpers (sourced) that start tkestor-csi against the test
# backends. The caller sets $work (a private 0700 directory), $bin and $top,
# and an EXIT trap that calls stop_all.
#
#   start_rbd_plugin NODEID [ARGS...]  real Ceph cluster (with-ceph.sh env),
#                                      userspace mapper; writes $work/rbd-*.
#   start_cfs_master PORT              ChubaoFS master emulator (a fake)
#   start_cfs_plugin NODEID PORT [ARGS...] cfs driver with the stand-in client
# Each start_* appends the PID to pids; plugin sockets are $work/NODEID.sock.

pids=()

stop_all() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

# remove_work: unmount whatever an interrupted run left mounted under
# $work (deepest first), then remove it without crossing into any mount
# that is still there: an rm through a live staging mount would delete the
# volume's files, and through rbd-fuse the image itself.
remove_work() {
	[ -n "${KEEP_WORK:-}" ] && return 0
	local m
	{ findmnt -rn -o TARGET | grep -F "$work/" || true; } | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	rm -rf --one-file-system "$work" || true
}

# wait_socket PID SOCKET LOG: wait until the plugin listens, or show its log.
wait_socket() {
	local i
	for i in $(seq 150); do
		[ -S "$2" ] && return 0
		kill -0 "$1" 2>/dev/null || { echo "plugin exited; its log:" >&2; cat "$3" >&2; return 1; }
		sleep 0.1
	done
	echo "plugin socket $2 did not appear" >&2
	return 1
}

# rbd_secret_files: $work/rbd-secrets.yaml (csi-sanity format, every
# section), $work/rbd-secret.json (for the Go tools) and $work/rbd-ctrl-secret/.
rbd_secret_files() {
	: "${TKESTOR_CSI_KEY_FILE:?run under tests/lib/with-ceph.sh}"
	local key; key=$(cat "$TKESTOR_CSI_KEY_FILE")
	sanity_secrets "$work/rbd-secrets.yaml" "userID=$TKESTOR_CSI_USER" "userKey=$key"
	(umask 077; printf '{"userID":"%s","userKey":"%s"}\n' "$TKESTOR_CSI_USER" "$key" >"$work/rbd-secret.json")
	mkdir -p -m 700 "$work/rbd-ctrl-secret"
	printf %s "$TKESTOR_CSI_USER" >"$work/rbd-ctrl-secret/userID"
	install -m 600 "$TKESTOR_CSI_KEY_FILE" "$work/rbd-ctrl-secret/userKey"
}

# sanity_secrets FILE KEY=VALUE...: every csi-sanity secret section.
sanity_secrets() {
	local f=$1 section kv
	shift
	(umask 077; : >"$f")
	for section in CreateVolumeSecret DeleteVolumeSecret ControllerPublishVolumeSecret \
		ControllerUnpublishVolumeSecret ControllerValidateVolumeCapabilitiesSecret \
		NodeStageVolumeSecret NodePublishVolumeSecret CreateSnapshotSecret DeleteSnapshotSecret \
		ControllerExpandVolumeSecret ListSnapshotsSecret GetSnapshotSecret NodeExpandVolumeSecret; do
		echo "$section:" >>"$f"
		for kv in "$@"; do echo "  ${kv%%=*}: \"${kv#*=}\"" >>"$f"; done
	done
}

start_rbd_plugin() {
	local node=$1
	shift
	[ -f "$work/rbd-secret.json" ] || rbd_secret_files
	"$bin/tkestor-csi" --driver=rbd --mode=all --nodeid="$node" \
		--endpoint="unix://$work/$node.sock" --cluster-config="$TKESTOR_CSI_CONFIG" \
		--controller-secret-dir="$work/rbd-ctrl-secret" --state-dir="$work/state-$node" \
		"$@" >"$work/$node.log" 2>&1 &
	pids+=($!)
	wait_socket $! "$work/$node.sock" "$work/$node.log"
}

start_cfs_master() {
	"$bin/cfs-master-emulator" --listen="127.0.0.1:$1" >"$work/cfs-master.log" 2>&1 &
	pids+=($!)
	local i
	for i in $(seq 100); do
		curl -fsS "http://127.0.0.1:$1/admin/getIp" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "cfs master emulator did not answer; its log:" >&2
	cat "$work/cfs-master.log" >&2
	return 1
}

start_cfs_plugin() {
	local node=$1 port=$2
	shift 2
	[ -f "$work/cfs-secrets.yaml" ] || {
		sanity_secrets "$work/cfs-secrets.yaml" "owner=tkestordemo"
		(umask 077; echo '{"owner":"tkestordemo"}' >"$work/cfs-secret.json")
	}
	# The stand-in refreshes df's capacity every second (the real client:
	# every few minutes), so an expand shows at once.
	CFS_STANDIN_DATA_ROOT=$work/cfs-data CFS_STANDIN_STATFS_INTERVAL=1s "$bin/tkestor-csi" --driver=cfs --mode=all --nodeid="$node" \
		--endpoint="unix://$work/$node.sock" --cfs-client="$bin/cfs-client-standin" \
		--state-dir="$work/state-$node" "$@" >"$work/$node.log" 2>&1 &
	pids+=($!)
	wait_socket $! "$work/$node.sock" "$work/$node.log"
}

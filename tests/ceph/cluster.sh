#!/usr/bin/env bash
# Single-machine Ceph "pacific" cluster for tests, the demo and CI.
#
#   cluster.sh install   apt packages only (apt-get update once, only if something is missing)
#   cluster.sh start     create and start the cluster; does nothing if it already runs and is healthy
#   cluster.sh stop      stop the daemons by their pid files and remove the cluster directory
#   cluster.sh status    which daemons run, then ceph -s
#   cluster.sh env       export lines for the Makefile/tests: eval "$(tests/ceph/cluster.sh env)"
#
# One mon "a", one mgr "x", one memstore OSD, cephx on, pool size 1. Everything (conf, keyrings,
# data, logs, sockets, pid files) lives in ${TKESTOR_CEPH_DIR:-/var/tmp/tkestor-ceph}. The OSD keeps
# its data in RAM, so a stopped cluster is always recreated from scratch. See README.md for facts
# about rbd-fuse (user/keyring selection, single image, namespaces).
#
# Knobs: TKESTOR_CEPH_DIR, TKESTOR_CEPH_ADDR (mon/daemon address, default 127.0.0.1; e.g. 127.0.0.2
# for a second cluster), TKESTOR_CLUSTER_ID (default tkestor-test), TKESTOR_CEPH_MEMSTORE_BYTES
# (default 6 GiB), TKESTOR_CEPH_TIMEOUT (seconds start waits for health, default 60).
set -euo pipefail

DIR=${TKESTOR_CEPH_DIR:-/var/tmp/tkestor-ceph}
ADDR=${TKESTOR_CEPH_ADDR:-127.0.0.1}
MON=$ADDR:6789
CLUSTER_ID=${TKESTOR_CLUSTER_ID:-tkestor-test}
MEMSTORE_BYTES=${TKESTOR_CEPH_MEMSTORE_BYTES:-$((6 << 30))}
TIMEOUT=${TKESTOR_CEPH_TIMEOUT:-60}
CONF=$DIR/ceph.conf
DAEMONS=(mon.a mgr.x osd.0)
PACKAGES=(ceph-mon ceph-osd ceph-mgr ceph-common librados-dev librbd-dev rbd-fuse rbd-nbd
	xfsprogs uuid-runtime fuse3)

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }
# Every client call names the conf explicitly and gives up instead of hanging on a dead monitor.
ceph_() { ceph -c "$CONF" --connect-timeout 10 "$@"; }
# quiet CMD...: run CMD, showing its chatter only if it fails.
quiet() {
	local out
	out=$("$@" 2>&1) || { echo "$out" >&2; die "failed: $*"; }
}

cmd_install() {
	local installed p missing=()
	installed=$(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null || true)
	for p in "${PACKAGES[@]}"; do
		grep -qx "installed $p" <<<"$installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# No recommends: rbd-fuse recommends the old "fuse" package, which conflicts with fuse3.
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

cmd_env() {
	cat <<EOF
export CEPH_CONF=$CONF
export TKESTOR_CEPH_DIR=$DIR
export TKESTOR_CLUSTER_ID=$CLUSTER_ID
export TKESTOR_POOL=rbd
export TKESTOR_CSI_USER=csi
export TKESTOR_CSI_KEY_FILE=$DIR/csi.key
export TKESTOR_CSI_CONFIG=$DIR/csi-config.json
export TKESTOR_CEPH_MON=$MON
EOF
}

pid_of() { cat "$DIR/run/$1.pid" 2>/dev/null || true; }
# alive D: D's pid file names a running process that is still that ceph daemon (not a reused pid,
# not a zombie: a killed daemon is reparented to init, which may reap it late).
alive() {
	local p stat
	p=$(pid_of "$1")
	[ -n "$p" ] && stat=$(cat "/proc/$p/stat" 2>/dev/null) || return 1
	[[ $stat == "$p (ceph-${1%%.*}) "[^Z]* ]]
}

# Stop only the processes named in our own pid files: other clusters (other dirs) keep running.
# SIGKILL: all state is discarded anyway, so there is nothing to shut down cleanly (and SIGTERM
# made stop take seconds).
cmd_stop() {
	local d left
	for d in "${DAEMONS[@]}"; do
		if alive "$d"; then kill -KILL "$(pid_of "$d")"; fi
	done
	for _ in $(seq 50); do # wait (up to 5 s) until they are gone and their ports are free
		left=0
		for d in "${DAEMONS[@]}"; do if alive "$d"; then left=1; fi; done
		[ $left = 0 ] && break
		sleep 0.1
	done
	# Remove only a directory this script made (TKESTOR_CEPH_DIR might be mistyped as "/" or $HOME).
	if [ -e "$DIR" ]; then
		[ -f "$DIR/.tkestor-ceph" ] || die "$DIR was not made by this script; not removing it"
		rm -rf "$DIR"
	fi
}

cmd_status() {
	[ -f "$CONF" ] || die "no cluster in $DIR"
	local d
	for d in "${DAEMONS[@]}"; do alive "$d" || log "$d is not running"; done
	ceph_ -s
}

# health prints what is still missing (empty when the OSD is up+in and all PGs active+clean).
health() {
	ceph_ -s -f json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
o, p = s["osdmap"], s["pgmap"]
states = {x["state_name"]: x["count"] for x in p.get("pgs_by_state", [])}
missing = [] if s.get("mgrmap", {}).get("available") else ["mgr"]
if o.get("num_up_osds") != 1 or o.get("num_in_osds") != 1:
    missing.append("osd up+in (%s up, %s in)" % (o.get("num_up_osds"), o.get("num_in_osds")))
if not p.get("num_pgs") or states.get("active+clean") != p["num_pgs"]:
    missing.append("pgs active+clean (%s)" % (states or "no pg stats yet: mgr"))
print(", ".join(missing))
' 2>/dev/null || echo "monitor"
}

wait_healthy() {
	local deadline=$((SECONDS + TIMEOUT)) missing last=
	while :; do
		missing=$(health)
		[ -z "$missing" ] && return 0
		[ "$missing" != "$last" ] && log "waiting for: $missing" && last=$missing
		[ $SECONDS -ge $deadline ] && { ceph_ -s >&2 || true; die "not healthy after ${TIMEOUT}s (logs: $DIR/log)"; }
		sleep 0.5
	done
}

write_conf() {
	# $name expands per process (mon.a, osd.0, mgr.x, client.admin, ...), so every daemon finds its
	# data, keyring, socket and pid file under $DIR without per-daemon sections.
	cat >"$CONF" <<EOF
[global]
fsid = $(uuidgen)
mon host = $MON
mon initial members = a
# Bind everything to ADDR: without "cluster addr" the OSD's heartbeat sockets listen on 0.0.0.0.
public addr = $ADDR
cluster addr = $ADDR
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $DIR/run
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
# Test-machine disks are often under 30% free; a monitor warns there and stops below "crit".
mon data avail warn = 2
mon data avail crit = 1
# Keep "ceph health" at HEALTH_OK for the things that are expected here.
mon warn on pool no redundancy = false
mon warn on msgr2 not enabled = false
mon warn on insecure global id reclaim allowed = false
mon warn on insecure global id reclaim = false
# Speed: the monitor batches map changes for 1 s by default; every pool create, the OSD's boot
# (crush location, device class) and PG creation wait for such a commit. Stats every second.
paxos propose interval = 0.05
mgr stats period = 1
mon mgr digest period = 1
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
osd max object name len = 256
osd max object namespace len = 64

[mon]
mon data = $DIR/\$name
keyring = $DIR/\$name/keyring
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
[mgr]
mgr data = $DIR/\$name
keyring = $DIR/\$name/keyring
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
[osd]
osd data = $DIR/\$name
keyring = $DIR/\$name/keyring
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid

[client]
# Default rbd/ceph/rados tools (and librados users that read CEPH_CONF) act as client.admin.
keyring = $DIR/keyring
admin socket = $DIR/run/\$name.\$pid.asok
[client.csi]
# "--id csi" (or CEPH_ARGS="--id csi") picks the CSI user's keyring automatically.
keyring = $DIR/csi.keyring
EOF
}

# keyring NAME FILE CAPS... : a fresh key for NAME in FILE, also imported into the mkfs keyring so
# the monitor knows every entity from the start (saves one "ceph auth" round trip per entity).
keyring() {
	local name=$1 file=$2
	shift 2
	mkdir -p "$(dirname "$file")"
	ceph-authtool "$file" --create-keyring --gen-key -n "$name" "$@" >/dev/null
	ceph-authtool "$DIR/mkfs.keyring" --import-keyring "$file" >/dev/null
}

create() {
	local t0
	t0=$(date +%s%N)
	mkdir -p "$DIR/run" "$DIR/log"
	touch "$DIR/.tkestor-ceph" # marks the directory as ours for "stop"
	write_conf
	ceph-authtool "$DIR/mkfs.keyring" --create-keyring --gen-key -n mon. --cap mon "allow *" >/dev/null
	keyring client.admin "$DIR/keyring" --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
	keyring mgr.x "$DIR/mgr.x/keyring" --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *'
	keyring osd.0 "$DIR/osd.0/keyring" --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd'
	# The driver fences dead clients: mon "profile rbd" allows "osd blocklist add" (and, beware,
	# "osd blocklist range add" of a CIDR) but not "rm"; unfencing needs the extra grant.
	keyring client.csi "$DIR/csi.keyring" --cap mon 'profile rbd, allow command "osd blocklist" with blocklistop=rm' --cap osd 'profile rbd' --cap mgr 'profile rbd'
	printf %s "$(ceph-authtool "$DIR/csi.keyring" -p -n client.csi)" >"$DIR/csi.key" # no newline
	chmod 0600 "$DIR/csi.key" "$DIR/csi.keyring" "$DIR/keyring"
	printf '[{"clusterID":"%s","monitors":["%s"]}]\n' "$CLUSTER_ID" "$MON" >"$DIR/csi-config.json"

	local fsid
	fsid=$(sed -n 's/^fsid = //p' "$CONF")
	monmaptool -c "$CONF" --create --fsid "$fsid" --add a "$MON" "$DIR/monmap" >/dev/null
	ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mkfs.keyring"
	ceph-mon -c "$CONF" -i a
	# No device_health_metrics pool (memstore has no devices; its PG alone cost seconds). A module
	# option is read from the monitor's config store, not ceph.conf, so set it before the mgr starts
	# (--force: without a mgr the monitor does not know the option yet).
	ceph_ config set mgr mgr/devicehealth/enable_monitoring false --force
	ceph-mgr -c "$CONF" -i x # early: it takes a few seconds to load its python modules

	local uuid id
	uuid=$(uuidgen)
	id=$(ceph_ osd new "$uuid")
	[ "$id" = 0 ] || die "expected osd id 0, got $id"
	quiet ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid"
	quiet ceph-osd -c "$CONF" -i 0 # puts itself into the CRUSH map on start (osd crush update on start)

	quiet ceph_ osd pool create rbd 8
	quiet ceph_ osd pool create rbd2 4 # second pool for multi-pool / dataPool tests
	rbd -c "$CONF" pool init rbd
	rbd -c "$CONF" pool init rbd2
	wait_healthy
	log "started in $(( ($(date +%s%N) - t0) / 1000000 )) ms: $MON, dir $DIR"
}

cmd_start() {
	cmd_install
	local d all=1 any=0
	for d in "${DAEMONS[@]}"; do
		if alive "$d"; then any=1; else all=0; fi
	done
	if [ $all = 1 ]; then
		# Already running: wait for health (it may still be settling) rather than recreating.
		wait_healthy
		log "already running: $MON, dir $DIR"
		return 0
	fi
	# Partly running or stopped: memstore lost its data with the OSD, so start from scratch.
	[ $any = 1 ] && log "cluster in $DIR is partly running; recreating"
	cmd_stop
	create
}

case ${1:-} in
install | start | stop | status | env) "cmd_$1" ;;
*) die "usage: $0 install|start|stop|status|env" ;;
esac

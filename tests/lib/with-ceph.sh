#!/usr/bin/env bash
# with-ceph.sh CMD...: run CMD with the test Ceph cluster's environment.
# Starts the cluster when it is not running and stops it afterwards; a
# cluster that was already running (or a nested call) is left alone.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cluster=$here/ceph/cluster.sh

if [ -n "${TKESTOR_WITH_CEPH:-}" ]; then
	exec "$@"
fi
"$cluster" install
started=false
if ! "$cluster" status >/dev/null 2>&1; then
	"$cluster" start
	started=true
fi
eval "$("$cluster" env)"
export TKESTOR_WITH_CEPH=1
rc=0
"$@" || rc=$?
if $started; then
	"$cluster" stop
fi
exit $rc

# SPDX-License-Identifier: AGPL-3.0-or-later
# Shared by the netns tests: network namespaces joined by veth pairs, and
# cleanup of every namespace, device and process the test made (by PID).
# Needs root and iproute2.  Expects HVD, HVCTL (and more) from ctest.  The
# checks, wait_for, field and the rest come from test/lib/common.sh.
# shellcheck source=../lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

[ "$(id -u)" -eq 0 ] || need "root (ip netns, veth, bridges)"
need_cmd ip -- iproute2

SUFFIX=$$
hv_tmpdir netns
NETNS=()

netns_cleanup() {
	local ns
	kill_tracked
	for ns in "${NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap netns_cleanup EXIT

# mkns VAR TAG: creates namespace hv<TAG><pid> with loopback up, registers
# it for cleanup and stores its name in VAR (not via $(...): a subshell
# would lose the registration).
mkns() {
	local ns="hv$2$SUFFIX"
	ip netns add "$ns"
	NETNS+=("$ns")
	ip -n "$ns" link set lo up
	printf -v "$1" '%s' "$ns"
}

# link_ns NS1 IP1/PFX NS2 IP2/PFX: a veth pair between two namespaces.
link_ns() {
	local a="va$SUFFIX$RANDOM" b="vb$SUFFIX$RANDOM"
	ip link add "${a:0:15}" type veth peer name "${b:0:15}"
	ip link set "${a:0:15}" netns "$1"
	ip link set "${b:0:15}" netns "$3"
	ip -n "$1" addr add "$2" dev "${a:0:15}"
	ip -n "$3" addr add "$4" dev "${b:0:15}"
	ip -n "$1" link set "${a:0:15}" up
	ip -n "$3" link set "${b:0:15}" up
}

# bg NS LOG CMD...: start CMD in NS in the background; sets LAST_PID.
bg() {
	local ns=$1 log=$2; shift 2
	ip netns exec "$ns" "$@" >> "$log" 2>&1 &
	LAST_PID=$!
	track_pid "$LAST_PID"
}

# start_hvd_in NS SECS: hvd -d -f $T/hvd.conf in NS, logging to $T/hvd.log,
# its PID in HVD_PID; then wait up to SECS for `hvctl status` (the caller
# exports HVCTL_SOCKET).  Returns wait_for's status.
start_hvd_in() {
	bg "$1" "$T/hvd.log" "$HVD" -d -f "$T/hvd.conf"
	# shellcheck disable=SC2034 # read by the test (and stop_hvd)
	HVD_PID=$LAST_PID
	wait_for "$2" "$HVCTL" status >/dev/null
}

# tail_logs: the last 40 lines of every log in $T.
tail_logs() {
	local f
	for f in "$T"/*.log; do echo "--- $f"; tail -n 40 "$f"; done
}

finish() {
	report_checks tail_logs
}

# Shared by the netns tests: network namespaces joined by veth pairs, and
# cleanup of every namespace, device and process the test made (by PID).
# Needs root and iproute2.  Expects HVD, HVCTL (and more) from ctest.
set -euo pipefail
# shellcheck source=../lib/require.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/require.sh"

[ "$(id -u)" -eq 0 ] || need "root (ip netns, veth, bridges)"
need_cmd ip -- iproute2

SUFFIX=$$
T=$(mktemp -d /tmp/hv-netns.XXXXXX)
NETNS=()
PIDS=()
failures=0

netns_cleanup() {
	local p ns
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
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
	PIDS+=("$LAST_PID")
}

expect() {
	# shellcheck disable=SC2053
	if [[ $2 == $3 ]]; then
		echo "ok   $1"
	else
		echo "FAIL $1"
		echo "     got:  $2"
		echo "     want: $3"
		failures=$((failures + 1))
	fi
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s; prints elapsed seconds.
wait_for() {
	local limit=$1; shift
	local start end
	start=$(date +%s.%N)
	while ! "$@" >/dev/null 2>&1; do
		end=$(date +%s.%N)
		if (( $(echo "$end - $start > $limit" | bc) )); then
			echo "timeout"
			return 1
		fi
		sleep 0.1
	done
	end=$(date +%s.%N)
	printf '%.1f\n' "$(echo "$end - $start" | bc)"
}

finish() {
	if [ "$failures" -ne 0 ]; then
		for f in "$T"/*.log; do echo "--- $f"; tail -n 40 "$f"; done
		echo "$failures check(s) failed"
		exit 1
	fi
	echo "all checks passed"
}

#!/usr/bin/env bash
# The README's main command.
#
#   bash packaging/demo.sh           the virtual rack (root, QEMU, about 5 GiB RAM)
#   bash packaging/demo.sh --local   hvd and one hv-agent on this machine (no QEMU)
#
# The rack: installs the dependencies (packaging/deps.sh), builds
# build/release and the node image, then starts the virtual rack
# (packaging/lab/lab.sh up 2): hvd in network namespace hvlab, and two QEMU
# machines that netboot from it into Xen with a RAM-only dom0, are adopted
# automatically, fetch their overlays and start hv-agent.  It waits until
# both hosts are up with telemetry, creates network "demo" (VNI 100: a
# VXLAN mesh over both hosts and hvd's anchor) and shows it.
#
# The demo then EXITS AND LEAVES THE RACK RUNNING, so that you can explore
# it with hvctl (it prints how).  Stop it with:
#
#   bash packaging/lab/lab.sh down
#
# That stops exactly the processes the lab started; the inventory stays
# in run/lab (delete it to start afresh).  Running the demo again while the
# rack runs only shows its state.
#
# --local: hvd on its built-in local configuration (state, unix socket,
# TCP API on 127.0.0.1:8470, agent link on 127.0.0.1:8471, all under ./run)
# with one hv-agent on this machine enrolled as host "local", in the
# foreground: Ctrl-C stops both.
#
# HV_DEMO_WAIT [900]: seconds to wait for both hosts (TCG is slow: about
# two to three minutes on two shared cores).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=rack
case ${1:-} in
"") ;;
--local) mode=local ;;
*) echo "usage: bash packaging/demo.sh [--local]" >&2; exit 2 ;;
esac

say() { echo "demo: $*"; }
die() { echo "demo: $*" >&2; exit 1; }
bin="$top/build/release"
hvctl="$bin/cli/hvctl"

build() {
	bash packaging/deps.sh
	say "building build/release (cmake --preset release; cmake --build --preset release -j2)"
	cmake --preset release >/dev/null
	cmake --build --preset release -j2 >/dev/null
	say "built build/release (hvd, hvctl, hv-agent)"
}

# --- --local: hvd and one agent on this machine ------------------------
hvd_pid= agent_pid=	# globals: the EXIT trap runs after demo_local returns
demo_local() {
	local run="$top/run"
	build
	mkdir -p "$run"
	export HVCTL_SOCKET=$run/hvd.sock
	stop() {
		trap - EXIT INT TERM
		[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
		[ -n "$hvd_pid" ] && kill "$hvd_pid" 2>/dev/null || true
		wait 2>/dev/null || true
		say "stopped; state kept in $top/run"
	}
	trap stop EXIT INT TERM

	"$bin/daemon/hvd" -d -L "$run" 2> >(sed 's/^/hvd: /' >&2) &
	hvd_pid=$!
	for _ in $(seq 1 50); do "$hvctl" status >/dev/null 2>&1 && break; sleep 0.1; done
	"$hvctl" status

	if [ ! -f "$run/local/agent.conf" ]; then
		"$hvctl" host add local --out "$run/local"
		echo "session-file $run/local/session" >> "$run/local/agent.conf"
	fi
	"$bin/agent/hv-agent" -d -f "$run/local/agent.conf" 2> >(sed 's/^/hv-agent: /' >&2) &
	agent_pid=$!
	for _ in $(seq 1 50); do
		"$hvctl" host list 2>/dev/null | grep -q '^local .*connected' && break
		sleep 0.1
	done
	sleep 1
	"$hvctl" host list

	cat <<-TXT

	  hvd and one agent are running.  In another shell:

	    export HVCTL_SOCKET=$run/hvd.sock
	    $hvctl top                         # live view of the hosts
	    $hvctl host call local ping        # a command through the agent
	    $hvctl net create prod --vni 100 --description "production"
	    $hvctl net list
	    $hvctl token create --role read    # a token for the TCP API
	    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8470/api/v1/hosts
	    curl --unix-socket $run/hvd.sock http://localhost/metrics

	  State lives in $run (delete it to start afresh).  Ctrl-C stops the demo.

	TXT
	wait "$hvd_pid"
}

# --- the virtual rack ---------------------------------------------------
lab=$top/run/lab
labsh="bash packaging/lab/lab.sh"

# Hosts "up" with telemetry (the CPU column filled) in hvctl host list.
hosts_live() { "$hvctl" host list 2>/dev/null | awk 'NR > 1 && $2 == "up" && $6 ~ /%$/' | wc -l; }
host_state() { "$hvctl" host list 2>/dev/null | awk -v m="$1" 'NR > 1 && $4 == m {print $2 " " $1}'; }
marker() { tr -d '\r' < "$lab/node$1.serial" 2>/dev/null | grep -aq -- "$2"; }

# Prints each machine's boot steps as they show in its serial log and in
# hvd, until N hosts are up with telemetry or LIMIT seconds have passed.
follow() {
	local n=$1 limit=$2 start i k st
	local -A shown=()
	local steps=("hv-node: dom0 up|Xen and dom0 up"
		"hv-node: dhcp on eth0|DHCP lease from hvd"
		"hv-node: overlay applied|overlay from hvd applied (auto-adopted)"
		"hv-node: boot complete|services started")
	start=$(date +%s)
	while :; do
		for i in $(seq 1 "$n"); do
			for k in "${!steps[@]}"; do
				[ -n "${shown[$i.$k]:-}" ] && continue
				marker "$i" "${steps[$k]%%|*}" || break
				shown[$i.$k]=1
				printf 'demo: [%3ss] node%s: %s\n' "$(( $(date +%s) - start ))" "$i" "${steps[$k]#*|}"
			done
			st=$(host_state "$(printf '52:54:00:77:00:%02x' "$i")")
			if [ -z "${shown[$i.up]:-}" ] && [ "${st%% *}" = up ]; then
				shown[$i.up]=1
				printf 'demo: [%3ss] node%s: host %s is up (hv-agent connected)\n' \
				    "$(( $(date +%s) - start ))" "$i" "${st#* }"
			fi
		done
		[ "$(hosts_live)" -ge "$n" ] && break
		if [ $(( $(date +%s) - start )) -ge "$limit" ]; then
			"$hvctl" host list || true
			die "only $(hosts_live) of $n hosts up with telemetry after $limit s; serial logs: $lab/node*.serial"
		fi
		sleep 1
	done
	printf 'demo: [%3ss] both hosts up, telemetry arriving\n' "$(( $(date +%s) - start ))"
}

demo_rack() {
	local n=2 running=0
	[ "$(id -u)" -eq 0 ] || die "the virtual rack needs root (network namespace, taps): sudo bash packaging/demo.sh, or bash packaging/demo.sh --local"
	build
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing; bash packaging/demo.sh --local runs without it"
	export HVCTL_SOCKET=$lab/hvd.sock
	if [ -f "$lab/hvd.pid" ] && "$hvctl" status >/dev/null 2>&1; then
		running=1
		say "the rack already runs (bash packaging/lab/lab.sh down stops it): showing it"
	else
		say "building the node image (Debian's Xen 4.17 and kernel, busybox, hv-agent) and starting the rack"
		$labsh up "$n"
		say "two QEMU machines boot over the network from hvd: iPXE, Xen, dom0, DHCP, overlay, hv-agent"
		follow "$n" "${HV_DEMO_WAIT:-900}"
	fi
	[ "$(hosts_live)" -ge "$n" ] || follow "$n" "${HV_DEMO_WAIT:-900}"

	if ! "$hvctl" net show demo >/dev/null 2>&1; then
		say "hvctl net create demo --vni 100"
		"$hvctl" net create demo --vni 100 --description "demo mesh"
	fi
	# The anchor and both hosts report the network applied.
	for _ in $(seq 1 60); do
		[ "$("$hvctl" net show demo 2>/dev/null | awk '$NF == "synced"' | wc -l)" -ge $((n + 1)) ] && break
		sleep 1
	done

	echo
	say "hvctl host list"
	"$hvctl" host list
	echo
	say "hvctl net show demo"
	"$hvctl" net show demo
	local h1
	h1=$(host_state 52:54:00:77:00:01)
	h1=${h1#* }
	cat <<-TXT

	  The rack is running and stays running: this script has exited.
	  hvd runs in network namespace hvlab (br-lab 10.77.0.1/24); each
	  machine is a QEMU process (TCG) with 2 GiB, Xen and a 1 GiB dom0.

	    export HVCTL_SOCKET=$lab/hvd.sock
	    $hvctl top                          # live view; q quits
	    $hvctl host show $h1
	    $hvctl host call $h1 ping
	    $hvctl host call $h1 facts.refresh
	    $hvctl net show demo                # members, VTEPs, sync state
	    bash packaging/lab/lab.sh status
	    bash packaging/lab/lab.sh kill 2; bash packaging/lab/lab.sh start 2   # a host dies and comes back

	  Serial logs (iPXE, Xen, dom0, hv-agent): $lab/node1.serial, node2.serial
	  hvd's log: $lab/hvd.log
	  No ssh: each dom0 has a root shell on its serial console instead:
	    bash packaging/lab/lab.sh console 1                  # Ctrl-] detaches
	    bash packaging/lab/lab.sh run 1 'xl list; ip link show vxlan100'

	  Tear down (stops hvd and both machines; the inventory stays in $lab):
	    bash packaging/lab/lab.sh down

	TXT
}

case $mode in
local) demo_local ;;
rack) demo_rack ;;
esac

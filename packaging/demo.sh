#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# The README's main command.
#
#   bash packaging/demo.sh           the virtual rack (root, QEMU, about 5 GiB RAM)
#   bash packaging/demo.sh --local   hvd and one hv-agent on this machine (no QEMU)
#
# The rack: installs the dependencies (packaging/deps.sh), builds
# build/release and the node image, then starts the virtual rack
# (packaging/lab/lab.sh up 2, two CPUs a machine): hvd in network namespace
# hvlab, and two QEMU machines that netboot from it into Xen with a
# RAM-only dom0, are adopted automatically, fetch their overlays and start
# hv-agent.  It waits until both hosts are up with telemetry, creates
# network "demo" (VNI 100: a VXLAN mesh over both hosts and hvd's anchor),
# builds the test guest (packaging/node-image/guest.sh) and starts VM vm1
# where the scheduler puts it and vm2 on the other host, both on VNI 100;
# each pings the other over the mesh, and the demo shows hvctl vm list and
# the console line with the ping.
#
# The demo then EXITS AND LEAVES THE RACK RUNNING, so that you can explore
# it with hvctl (it prints how).  Stop it with:
#
#   bash packaging/lab/lab.sh down
#
# That stops exactly the processes the lab started; the inventory stays
# in run/lab (delete it to start afresh).  Running the demo again while the
# rack runs only shows its state (and creates what is missing).
#
# --local: hvd with the local configuration (hvd -L's: state, unix socket,
# TCP API on 127.0.0.1:8470, agent link on 127.0.0.1:8471, all under
# HV_DEMO_DIR) and one hv-agent on this machine enrolled as host "local",
# in the foreground: Ctrl-C (or SIGTERM to this script) stops both.  A
# port that is in use is named, and hvd takes a free one instead; the
# config it runs is HV_DEMO_DIR/hvd.conf, its log HV_DEMO_DIR/hvd.log.
#
# Environment (defaults in brackets):
#   HV_LAB_DIR [run/lab], HV_LAB_SMP [2]: the rack's (packaging/lab/lab.sh)
#   HV_DEMO_WAIT [900]  seconds to wait for both hosts (TCG is slow: about
#                       two to three minutes on two shared cores)
#   HV_DEMO_DIR [run]   --local: where hvd and the agent keep everything
#                       (absolute); another directory runs a second demo
#   HV_BIN [build/release]; HVD, HVCTL, HV_AGENT override single binaries.
#       Setting any of them skips packaging/deps.sh and the release build.
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
bin=${HV_BIN:-$top/build/release}
hvd=${HVD:-$bin/daemon/hvd}
hvctl=${HVCTL:-$bin/cli/hvctl}
agent=${HV_AGENT:-$bin/agent/hv-agent}

build() {
	if [ -n "${HV_BIN:-}${HVD:-}${HVCTL:-}${HV_AGENT:-}" ]; then
		for b in "$hvd" "$hvctl" "$agent"; do
			[ -x "$b" ] || die "$b missing (HV_BIN, HVD, HVCTL, HV_AGENT)"
		done
		return 0
	fi
	bash packaging/deps.sh
	say "building build/release (cmake --preset release; cmake --build --preset release -j2)"
	cmake --preset release >/dev/null
	cmake --build --preset release -j2 >/dev/null
	say "built build/release (hvd, hvctl, hv-agent)"
}

# --- --local: hvd and one agent on this machine ------------------------

# port_user PORT: who listens on TCP PORT on this machine ("pid 42
# (python3)"); fails when nobody does, or when ss cannot tell (then hvd's
# own bind error names the port).
port_user() {
	local l
	command -v ss >/dev/null || return 1
	l=$(ss -Htlnp "sport = :$1" 2>/dev/null | head -n 1)
	[ -n "$l" ] || return 1
	if [[ $l =~ \(\"([^\"]+)\",pid=([0-9]+) ]]; then
		echo "pid ${BASH_REMATCH[2]} (${BASH_REMATCH[1]})"
	else
		echo "a process of another user"
	fi
}

# pick_port PORT WHAT: PORT if it is free, else 0 (hvd binds a free port
# and hvctl status says which).
pick_port() {
	local who
	if who=$(port_user "$1"); then
		say "port $1 ($2) is in use by $who: hvd takes a free port instead" >&2
		echo 0
	else
		echo "$1"
	fi
}

# run_logged NAME LOG CMD...: CMD in the background, its stderr appended to
# LOG and shown here as "NAME: ..." until it exits.  Sets started (CMD's
# PID), follower (the PID that ends once LOG is shown whole) and logfrom
# (LOG's first byte from this CMD).
started='' follower='' logfrom=''
run_logged() {
	local name=$1 log=$2
	shift 2
	touch "$log"
	logfrom=$(( $(stat -c %s "$log") + 1 ))
	"$@" </dev/null 2>>"$log" &
	started=$!
	# Read from the file, not a pipe: a start-up failure is in LOG, whole,
	# once CMD has exited.
	tail -c "+$logfrom" --pid="$started" -f "$log" | sed -u "s/^/$name: /" >&2 &
	follower=$!
}

# status_addr KEY: "127.0.0.1:8470" from hvctl status's "tcp:" or
# "agents:" line.
status_addr() { "$hvctl" status 2>/dev/null | awk -v k="$1:" '$1 == k {print $2}'; }

# Globals: the traps run after demo_local returns.
run='' hvd_pid='' agent_pid=''
stop_local() {
	trap - EXIT INT TERM
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
	[ -n "$hvd_pid" ] && kill "$hvd_pid" 2>/dev/null || true
	# Every child: hvd, the agent and their log followers.
	wait 2>/dev/null || true
	say "stopped; state kept in $run"
}

demo_local() {
	local api_port agent_port tcp agents rc why from
	run=${HV_DEMO_DIR:-$top/run}
	[[ $run == /* ]] || die "HV_DEMO_DIR must be absolute: $run"
	build
	mkdir -p "$run"
	export HVCTL_SOCKET=$run/hvd.sock
	if "$hvctl" status >/dev/null 2>&1; then
		die "hvd already answers on $HVCTL_SOCKET (pid $("$hvctl" status | awk 'NR == 1 {print $4}' | tr -d ,)):" \
		    "a demo runs in $run; stop it, or run a second one with HV_DEMO_DIR=/another/dir"
	fi
	api_port=$(pick_port 8470 "TCP API")
	agent_port=$(pick_port 8471 "agent link")
	cat > "$run/hvd.conf" <<-CONF
	# Written by packaging/demo.sh --local: hvd -L's built-in configuration
	# (daemon/wire/config.c, config_local) with the ports the demo picked
	# (0: one the kernel chooses; hvctl status names it).
	state-dir $run/state
	api-socket $run/hvd.sock
	api-listen 127.0.0.1:$api_port
	agent-listen 127.0.0.1:$agent_port
	boot-root $run/boot
	alpine-mirror $run/alpine
	mesh-anchor off
	CONF
	trap stop_local EXIT
	trap 'stop_local; exit 130' INT
	trap 'stop_local; exit 143' TERM

	run_logged hvd "$run/hvd.log" "$hvd" -d -f "$run/hvd.conf"
	hvd_pid=$started
	from=$logfrom
	for _ in $(seq 1 100); do
		"$hvctl" status >/dev/null 2>&1 && break
		kill -0 "$hvd_pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! "$hvctl" status >/dev/null 2>&1; then
		kill -0 "$hvd_pid" 2>/dev/null &&
		    die "hvd (pid $hvd_pid) does not answer on $HVCTL_SOCKET; its log: $run/hvd.log"
		rc=0
		wait "$hvd_pid" || rc=$?
		hvd_pid=''
		wait "$follower" || true
		# Why, in hvd's words: a bind error names the address and port
		# (here when ss saw no listener: a socket bound without one, or
		# a race with another program).
		why=$(tail -c "+$from" "$run/hvd.log" | grep -E ': (listen|bind) |in use' | tail -n 1)
		[ -n "$why" ] || why=$(tail -c "+$from" "$run/hvd.log" | tail -n 1)
		if [[ $why =~ :([0-9]+):\ Address\ already\ in\ use ]]; then
			case ${BASH_REMATCH[1]} in
			"$api_port") die "port $api_port (TCP API) is in use; hvd: $why" ;;
			"$agent_port") die "port $agent_port (agent link) is in use; hvd: $why" ;;
			esac
		fi
		die "hvd exited at start-up (status $rc): $why"
	fi
	tcp=$(status_addr tcp)
	agents=$(status_addr agents)
	say "hvd runs: pid $hvd_pid, API on $HVCTL_SOCKET and $tcp, agent link on $agents"
	"$hvctl" status

	# Enrolled once; the agent follows hvd's agent port wherever it is.
	if ! "$hvctl" host show local >/dev/null 2>&1; then
		rm -rf "$run/local"
		"$hvctl" host add local --out "$run/local"
		echo "session-file $run/local/session" >> "$run/local/agent.conf"
	fi
	[ -f "$run/local/agent.conf" ] ||
	    die "host local is enrolled but $run/local/agent.conf is gone: delete $run to start afresh"
	sed -i "s|^hvd .*|hvd $agents|" "$run/local/agent.conf"
	run_logged hv-agent "$run/agent.log" "$agent" -d -f "$run/local/agent.conf"
	agent_pid=$started
	for _ in $(seq 1 100); do
		"$hvctl" host list 2>/dev/null | awk '$1 == "local" && $NF == "connected" {f = 1} END {exit !f}' && break
		kill -0 "$agent_pid" 2>/dev/null || die "hv-agent exited; its log: $run/agent.log"
		sleep 0.1
	done
	sleep 1
	say "hv-agent runs: pid $agent_pid, host local"
	"$hvctl" host list

	cat <<-TXT

	  hvd and one agent are running.  Try next, in another shell:

	    export HVCTL_SOCKET=$run/hvd.sock
	    $hvctl host list
	    $hvctl host show local             # identity, facts, live state
	    $hvctl host call local ping        # a command through the agent
	    $hvctl top                         # live view of the hosts; q quits
	    $hvctl net create prod --vni 100 --description "production"
	    $hvctl net show prod
	    $hvctl token create --role read    # a token for the TCP API
	    curl --cacert $run/state/tls/api.crt -H "Authorization: Bearer <token>" https://$tcp/api/v1/hosts
	    curl --unix-socket $run/hvd.sock http://localhost/metrics

	  VMs need Xen: the rack demo (sudo bash packaging/demo.sh) runs two.
	  State lives in $run (delete it to start afresh); logs in
	  $run/hvd.log and $run/agent.log.
	  Ctrl-C stops the demo (or: kill $$).

	TXT
	wait "$hvd_pid"
}

# --- the virtual rack ---------------------------------------------------
lab=${HV_LAB_DIR:-$top/run/lab}
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

vm_host() { "$hvctl" vm list 2>/dev/null | awk -v n="$1" 'NR > 1 && $1 == n {print $2}'; }
vm_state() { "$hvctl" vm list 2>/dev/null | awk -v n="$1" 'NR > 1 && $1 == n {print $3}'; }
# The outcome line of the guest's newest boot on its console.
ping_line() {
	"$hvctl" vm console "$1" 2>/dev/null | tr -d '\r' |
	    awk '/hv-guest: up / {r = ""} /hv-guest: ping / {r = $0} END {print r}'
}

# image_add NAME FILE KIND, unless hvd has NAME.
image_add() {
	"$hvctl" image list | awk -v n="$1" '$1 == n {f = 1} END {exit !f}' ||
	    "$hvctl" image add "$1" "$2" --kind "$3"
}

# vm_create N PEER [ARGS...]: VM vmN at 192.168.100.1N on VNI 100,
# pinging 192.168.100.1PEER, unless it exists (started again if it does
# not run: after lab.sh down and up its domain is gone).  Sets created=1.
vm_create() {
	local n=$1 peer=$2 cmdline state
	shift 2
	if "$hvctl" vm show "vm$n" >/dev/null 2>&1; then
		state=$(vm_state "vm$n")
		case $state in running|pending|creating) return 0 ;; esac
		say "vm$n is $state: hvctl vm start vm$n"
		"$hvctl" vm start "vm$n" || die "vm start vm$n failed"
		created=1
		return 0
	fi
	cmdline="console=hvc0 hvguest.ip=192.168.100.1$n/24 hvguest.peer=192.168.100.1$peer hvguest.wait=300"
	say "hvctl vm create vm$n --vcpus 1 --memory 128 --net 100 $*"
	"$hvctl" vm create "vm$n" --vcpus 1 --memory 128 --kernel guest-kernel \
	    --initramfs guest-initrd --cmdline "$cmdline" --net 100 "$@" ||
	    die "vm create vm$n failed (the rack keeps running; bash packaging/lab/lab.sh down stops it)"
	created=1
}

# demo_vms H1 H2: the test guest as images, vm1 where the scheduler puts
# it (not pinned, so that it can move) and vm2 pinned to the other host, so
# that they ping each other across the mesh.  Sets vm_a and vm_b to their
# hosts.
demo_vms() {
	local image=${HV_NODE_IMAGE:-$top/build/node-image} guest=$top/build/guest
	local start created=0
	say "building the test guest (Debian's kernel, busybox: packaging/node-image/guest.sh)"
	HV_DEB_CACHE=$image/cache bash packaging/node-image/guest.sh "$guest"
	image_add guest-kernel "$guest/vmlinuz" kernel
	image_add guest-initrd "$guest/initramfs" initramfs
	vm_create 1 2
	vm_a=$(vm_host vm1)
	vm_b=$1
	if [ "$vm_a" = "$1" ]; then vm_b=$2; fi
	vm_create 2 1 --host "$vm_b"
	[ "$created" = 1 ] || return 0
	say "waiting for each guest to ping the other over VXLAN 100 (hvctl vm console)"
	start=$(date +%s)
	until [ -n "$(ping_line vm1)" ] && [ -n "$(ping_line vm2)" ]; do
		[ $(( $(date +%s) - start )) -lt 330 ] || break
		sleep 2
	done
}

demo_rack() {
	local n=2 h1 h2 vm_a vm_b v line ok=1
	[ "$(id -u)" -eq 0 ] || die "the virtual rack needs root (network namespace, taps): sudo bash packaging/demo.sh, or bash packaging/demo.sh --local"
	build
	command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing; bash packaging/demo.sh --local runs without it"
	export HVCTL_SOCKET=$lab/hvd.sock
	if [ -f "$lab/hvd.pid" ] && "$hvctl" status >/dev/null 2>&1; then
		say "the rack already runs (bash packaging/lab/lab.sh down stops it): showing it"
	else
		say "building the node image (Debian's Xen 4.17 and kernel, busybox, hv-agent) and starting the rack"
		# Two CPUs a machine: room on each host for both VMs, so that they
		# can move (the scheduler never overcommits).
		HV_LAB_SMP=${HV_LAB_SMP:-2} $labsh up "$n"
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
	h1=$(host_state 52:54:00:77:00:01)
	h1=${h1#* }
	h2=$(host_state 52:54:00:77:00:02)
	h2=${h2#* }
	demo_vms "$h1" "$h2"

	echo
	say "hvctl host list"
	"$hvctl" host list
	echo
	say "hvctl net show demo"
	"$hvctl" net show demo
	echo
	say "hvctl vm list"
	"$hvctl" vm list
	for v in vm1 vm2; do
		line=$(ping_line "$v")
		echo
		say "hvctl vm console $v | grep hv-guest:    ($v on $(vm_host "$v"))"
		{ "$hvctl" vm console "$v" 2>/dev/null || true; } | tr -d '\r' | grep -a 'hv-guest: \(up\|ping\)' | tail -n 2 || true
		[[ $line == *" ok "* ]] || ok=0
	done
	[ "$ok" = 1 ] || say "the guests did not both ping: see hvctl vm console vm1 / vm2 and $lab/hvd.log"

	cat <<-TXT

	  The rack is running and stays running: this script has exited.
	  hvd runs in network namespace hvlab (br-lab 10.77.0.1/24); each
	  machine is a QEMU process (TCG) with 2 GiB, 2 CPUs, Xen and a 1 GiB
	  dom0.  VMs vm1 (on $vm_a) and vm2 (on $vm_b) share VXLAN 100.

	  Try next:
	    export HVCTL_SOCKET=$lab/hvd.sock
	    $hvctl host list
	    $hvctl vm list
	    $hvctl vm console vm1               # the guest's console log
	    $hvctl vm migrate vm1 --to $vm_b   # to vm2's host (stop-copy, about 20 s)
	    $hvctl vm migrate vm1 --to $vm_a   # and back
	    $hvctl host drain $vm_a            # maintenance: vm1 moves away
	    $hvctl host undrain $vm_a
	    $hvctl net show demo                # members, VTEPs, sync state
	    $hvctl top                          # live view; q quits
	    bash packaging/lab/lab.sh kill 2; bash packaging/lab/lab.sh start 2   # a host dies and comes back

	  Serial logs (iPXE, Xen, dom0, hv-agent): $lab/node1.serial, node2.serial
	  hvd's log: $lab/hvd.log
	  No ssh: each dom0 has a root shell on its serial console instead:
	    bash packaging/lab/lab.sh console 1                  # Ctrl-] detaches
	    bash packaging/lab/lab.sh run 1 'xl list; ip link show vxlan100'

	  Stop the demo (stops hvd and both machines; the inventory stays in $lab):
	    bash packaging/lab/lab.sh down

	TXT
	[ "$ok" = 1 ]
}

case $mode in
local) demo_local ;;
rack) demo_rack ;;
esac

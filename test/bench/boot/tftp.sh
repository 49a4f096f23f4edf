#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# TFTP benchmark: 20 concurrent atftp clients fetch the same file from hvd,
# from tftp-hpa's in.tftpd and from dnsmasq's TFTP server, one server at a
# time, over a veth pair between two network namespaces: 32 MiB clean, and
# 8 MiB with 1% of UDP packets lost in each direction (nftables, numgen
# random, on input in both namespaces).  Every client uses the same
# options (blksize 1428, tsize, windowsize 8, a 1 s client timeout); a
# server that does not implement windowsize (RFC 7440) answers lockstep.
# Prints aggregate throughput and completed transfers per server and the
# ratio hvd / best peer (goal >= 1.5, and hvd never completes fewer).
#
# usage: test/bench/boot/tftp.sh [HVD_BINARY]
#        (default: build/release/daemon/hvd; build it with
#         cmake --preset release && cmake --build --preset release -j2)
#        Needs root (ip netns, nft), atftp, in.tftpd, dnsmasq, nft.
#
# Environment knobs (defaults in brackets):
#   BENCH_CLIENTS   [20]    concurrent clients per round
#   BENCH_SIZE_MIB  [32]    file size, clean rounds
#   BENCH_LOSS_MIB  [8]     file size, lossy rounds (lockstep peers lose
#                           about 1 s per lost packet: 32 MiB takes them
#                           10 to 15 minutes each)
#   BENCH_LOSS_PCT  [1]     UDP loss per direction, percent (0: skip)
#   BENCH_TIMEOUT   [900]   seconds a client may take before it counts
#                           as not completed
#   BENCH_SERVERS   [hvd in.tftpd dnsmasq]
#   BENCH_PHASES    [clean loss]
#
# Exits non-zero only when something breaks (a tool is missing, a server
# does not start or serves wrong bytes before the load, hvd dies); never on
# the ratio or on a peer's incomplete transfers.  A benchmark, not a timed
# test: run it by hand.  See README.md next to this file.

set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../../.." && pwd)
hvd_bin=${1:-$repo/build/release/daemon/hvd}
clients=${BENCH_CLIENTS:-20}
size_mib=${BENCH_SIZE_MIB:-32}
loss_mib=${BENCH_LOSS_MIB:-8}
loss_pct=${BENCH_LOSS_PCT:-1}
limit=${BENCH_TIMEOUT:-900}
read -r -a servers <<<"${BENCH_SERVERS:-hvd in.tftpd dnsmasq}"
read -r -a phases <<<"${BENCH_PHASES:-clean loss}"
SRV_IP=10.79.1.1 CLI_IP=10.79.1.2

die() { echo "tftp bench: FAIL: $*" >&2; exit 1; }
note() { echo "tftp bench: $*"; }

# --- preflight ----------------------------------------------------------------

[[ $# -le 1 ]] || { echo "usage: $0 [HVD_BINARY]" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, nftables)"
[[ -x $hvd_bin ]] || die "$hvd_bin: not an executable (cmake --preset release && cmake --build --preset release)"
hvd_bin=$(readlink -f -- "$hvd_bin")
for t in ip nft atftp in.tftpd dnsmasq sha256sum curl awk bc; do
	command -v "$t" >/dev/null || die "'$t' not found (packaging/deps.sh installs it)"
done
for v in clients size_mib loss_mib limit; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $loss_pct =~ ^[0-9]+$ && $loss_pct -lt 100 ]] || die "BENCH_LOSS_PCT must be in 0..99"

# --- temp dirs, namespaces, cleanup ----------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hvtftpbench.XXXXXX")
# Downloads land in tmpfs, so the clients' writes do not touch a disk.
out=$(mktemp -d /dev/shm/hvtftpbench.XXXXXX)
ns_s=hvtbs$$ ns_c=hvtbc$$
server_pid=
client_pids=()

stop_pid() {
	local pid=$1 i
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${client_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	stop_pid "$server_pid"
	ip netns del "$ns_s" 2>/dev/null || true
	ip netns del "$ns_c" 2>/dev/null || true
	rm -rf -- "$tmp" "$out"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$ns_s"
ip netns add "$ns_c"
ip -n "$ns_s" link set lo up
ip -n "$ns_c" link set lo up
ip link add "vts$$" type veth peer name "vtc$$"
ip link set "vts$$" netns "$ns_s"
ip link set "vtc$$" netns "$ns_c"
ip -n "$ns_s" addr add "$SRV_IP/24" dev "vts$$"
ip -n "$ns_c" addr add "$CLI_IP/24" dev "vtc$$"
ip -n "$ns_s" link set "vts$$" up
ip -n "$ns_c" link set "vtc$$" up

# set_loss PCT: drop PCT% of the UDP packets each namespace receives.  On
# input, not output: an output drop fails the sender's sendto() with EPERM,
# a local error that atftp aborts on, not loss.
set_loss() {
	local ns
	for ns in "$ns_s" "$ns_c"; do
		ip netns exec "$ns" nft delete table inet hvbench 2>/dev/null || true
		[[ $1 -gt 0 ]] || continue
		ip netns exec "$ns" nft -f - <<NFT
table inet hvbench {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr 10.79.1.0/24 meta l4proto udp numgen random mod 100 < $1 counter drop
	}
}
NFT
	done
}

dropped() {
	local ns n=0 v
	for ns in "$ns_s" "$ns_c"; do
		v=$(ip netns exec "$ns" nft list table inet hvbench 2>/dev/null |
			sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
		n=$((n + ${v:-0}))
	done
	echo "$n"
}

# --- files --------------------------------------------------------------------------

root=$tmp/root
mkdir -p "$root"
head -c $((size_mib << 20)) /dev/urandom > "$root/clean.bin"
head -c $((loss_mib << 20)) /dev/urandom > "$root/loss.bin"
declare -A want
want[clean.bin]=$(sha256sum < "$root/clean.bin")
want[loss.bin]=$(sha256sum < "$root/loss.bin")

# --- servers -------------------------------------------------------------------------

# start_server NAME: runs it in the server namespace on $SRV_IP:69 and
# waits until a client can fetch a small file from it.
start_server() {
	local name=$1 i
	: > "$tmp/$name.log"
	case $name in
	hvd)
		cat > "$tmp/hvd.conf" <<EOF
state-dir $tmp/state
api-socket $tmp/hvd.sock
api-socket-mode 0600
boot-root $root
tftp-listen $SRV_IP:69
EOF
		ip netns exec "$ns_s" "$hvd_bin" -d -f "$tmp/hvd.conf" >> "$tmp/hvd.log" 2>&1 &
		;;
	in.tftpd)
		# -u root: the default user cannot read the 0700 temp dir.
		ip netns exec "$ns_s" in.tftpd -L -u root -s "$root" -a "$SRV_IP:69" \
			>> "$tmp/in.tftpd.log" 2>&1 &
		;;
	dnsmasq)
		ip netns exec "$ns_s" dnsmasq -k -C /dev/null -p 0 --user=root \
			--pid-file= --enable-tftp --tftp-root="$root" --tftp-max=1000 \
			--quiet-tftp --log-facility="$tmp/dnsmasq.log" \
			--listen-address="$SRV_IP" --bind-interfaces >> "$tmp/dnsmasq.log" 2>&1 &
		;;
	esac
	server_pid=$!
	echo "probe" > "$root/probe.txt"
	for ((i = 0; ; i++)); do
		kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$tmp/$name.log" >&2; die "$name exited at start-up"; }
		rm -f "$out/probe"
		ip netns exec "$ns_c" atftp --tftp-timeout 1 -g -r probe.txt -l "$out/probe" \
			"$SRV_IP" 69 >/dev/null 2>&1 || true
		[[ -s $out/probe ]] && break
		((i < 50)) || { tail -n 20 "$tmp/$name.log" >&2; die "$name does not answer on $SRV_IP:69"; }
		sleep 0.2
	done
}

stop_server() {
	stop_pid "$server_pid"
	server_pid=
}

# CPU ticks used so far by PID and its reaped children (in.tftpd forks a
# child per transfer): utime, stime, cutime, cstime from /proc/PID/stat.
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }'
}

# round NAME FILE: BENCH_CLIENTS concurrent fetches; sets r_mibs, r_done,
# r_secs, r_cores.
round() {
	local name=$1 file=$2 i t0 t1 c0 c1 bytes
	rm -f "$out"/got.*
	client_pids=()
	c0=$(cpu_ticks "$server_pid")
	t0=$(date +%s.%N)
	for ((i = 1; i <= clients; i++)); do
		ip netns exec "$ns_c" timeout "$limit" atftp --tftp-timeout 1 \
			--option "blksize 1428" --option "tsize 0" --option "windowsize 8" \
			-g -r "$file" -l "$out/got.$i" "$SRV_IP" 69 > "$tmp/client.$i.log" 2>&1 &
		client_pids+=($!)
	done
	for i in "${client_pids[@]}"; do wait "$i" || true; done
	client_pids=()
	t1=$(date +%s.%N)
	c1=$(cpu_ticks "$server_pid")
	r_done=0
	for ((i = 1; i <= clients; i++)); do
		[[ -f $out/got.$i && $(sha256sum < "$out/got.$i") == "${want[$file]}" ]] &&
			r_done=$((r_done + 1))
	done
	bytes=$(( r_done * $(stat -c %s "$root/$file") ))
	r_secs=$(echo "$t1 - $t0" | bc)
	r_mibs=$(awk -v b="$bytes" -v s="$r_secs" 'BEGIN { printf "%.1f", b / 1048576 / s }')
	r_cores=$(awk -v t="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v s="$r_secs" \
	    'BEGIN { printf "%.2f", t / hz / s }')
	rm -f "$out"/got.*
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else printf "inf" }'
}

declare -A mibs ndone secs cores
note "$clients atftp clients (blksize 1428, tsize, windowsize 8, --tftp-timeout 1)," \
	"veth between namespaces, $(nproc) CPUs; clean: $size_mib MiB; lossy: $loss_mib MiB at $loss_pct%"
for s in "${servers[@]}"; do
	start_server "$s"
	for phase in "${phases[@]}"; do
		[[ $phase == clean || $phase == loss ]] || die "BENCH_PHASES: '$phase' is not clean or loss"
		[[ $phase == clean || $loss_pct -gt 0 ]] || continue
		if [[ $phase == clean ]]; then set_loss 0; f=clean.bin; else set_loss "$loss_pct"; f=loss.bin; fi
		round "$s" "$f"
		kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$tmp/$s.log" >&2; die "$s died during the $phase round"; }
		mibs[$s.$phase]=$r_mibs ndone[$s.$phase]=$r_done secs[$s.$phase]=$r_secs cores[$s.$phase]=$r_cores
		# in.tftpd forks a transfer per process and does not reap
		# them: its CPU is not in its own /proc figures.
		[[ $s != in.tftpd ]] || r_cores="n/a"
		printf 'tftp bench: %-8s %-5s %8s MiB/s  %2d/%d complete  %7.1f s  server CPU %s cores%s\n' \
			"$s" "$phase" "$r_mibs" "$r_done" "$clients" "$r_secs" "$r_cores" \
			"$([[ $phase == loss ]] && echo "  ($(dropped) packets dropped)")"
	done
	set_loss 0
	if [[ $s == hvd ]]; then
		m=$(curl -s --unix-socket "$tmp/hvd.sock" http://localhost/metrics | grep '^hvd_tftp_' | tr '\n' ' ')
		note "hvd metrics: $m"
	fi
	stop_server
done

echo
for phase in clean loss; do
	[[ -n ${mibs[hvd.$phase]:-} ]] || continue
	best= bestn=
	for s in "${servers[@]}"; do
		[[ $s != hvd ]] || continue
		if [[ -z $best ]] || awk -v a="${mibs[$s.$phase]}" -v b="${mibs[$best.$phase]}" 'BEGIN { exit !(a > b) }'; then
			best=$s
		fi
		[[ -z $bestn || ${ndone[$s.$phase]} -gt $bestn ]] && bestn=${ndone[$s.$phase]}
	done
	[[ -n $best ]] || continue
	line="tftp bench: $phase: hvd ${mibs[hvd.$phase]} MiB/s (${ndone[hvd.$phase]}/$clients)"
	for s in "${servers[@]}"; do
		[[ $s != hvd ]] && line+=", $s ${mibs[$s.$phase]} MiB/s (${ndone[$s.$phase]}/$clients)"
	done
	echo "$line"
	printf 'tftp bench: %s: ratio hvd/%s = %s (goal >= 1.5); completed: hvd %d, best peer %d (%s)\n' \
		"$phase" "$best" "$(ratio "${mibs[hvd.$phase]}" "${mibs[$best.$phase]}")" \
		"${ndone[hvd.$phase]}" "$bestn" \
		"$([[ ${ndone[hvd.$phase]} -ge $bestn ]] && echo "goal met: never fewer" || echo "FEWER than a peer")"
done

#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Migration in the virtual rack: total time and downtime of `hvctl vm
# migrate` (REST -> hvd -> both agents, the stream agent to agent on the
# encrypted channel) against Xen's own tools moving the same guest between
# the same two dom0s.  Median of BENCH_RUNS (default 5) moves each; each
# hvctl move goes to the other host, so the guest goes back and forth.
#
# The peer.  `xl migrate` over a plain TCP pipe (the node image has no
# ssh: busybox nc on the target runs `xl migrate-receive`), live like
# hv-agent on the rack's hypervisor (Debian's Xen rebuilt with shadow
# paging, packaging/node-image/xen.sh).  On a hypervisor without shadow
# paging (HV_NODE_XEN=debian) xl's live pre-copy fails ("Failed to enable
# logdirty"); its error is printed, and the timed peer is what xl can do
# there: `xl save` on one dom0, the file fetched over TCP (busybox httpd
# and wget), `xl restore` on the other (stop-copy, as hv-agent does
# there).  xl's commands are typed into the dom0 consoles (lab run), whose
# round trip is printed: it is inside each xl total.
#
# Downtime is the longest silence in the replies to a ping every 0.1 s
# from the anchor (hvd's namespace) while the move runs.
#
# Needs root, qemu-system-x86_64, sqlite3, bc, and the binaries in HV_BIN
# (default build/release).  Starts its own lab (two machines) in
# HV_LAB_DIR (default run/lab-bench-migrate) and namespace hvbenchmig.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
export HV_BIN=${HV_BIN:-$top/build/release}
export HV_LAB_DIR=${HV_LAB_DIR:-$top/run/lab-bench-migrate}
export HV_LAB_NS=${HV_LAB_NS:-hvbenchmig}
export HV_NODE_IMAGE=${HV_NODE_IMAGE:-$HV_BIN/node-image}
export HVD=${HVD:-$HV_BIN/daemon/hvd} HVCTL=${HVCTL:-$HV_BIN/cli/hvctl}
export HV_AGENT=${HV_AGENT:-$HV_BIN/agent/hv-agent}
export HVCTL_SOCKET=$HV_LAB_DIR/hvd.sock
export HV_LAB_SMP=2		# room for both guests on either host
runs=${BENCH_RUNS:-5}
hvctl=$HVCTL
guest=${HV_GUEST:-$HV_BIN/guest}
xl=/usr/lib/xen-4.17/bin/xl
lab() { bash "$top/packaging/lab/lab.sh" "$@"; }
L=$HV_LAB_DIR
nsx() { ip netns exec "$HV_LAB_NS" "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
mkdir -p "$L"
pinger=
trap '[ -n "$pinger" ] && kill "$pinger" 2>/dev/null; lab down >/dev/null 2>&1 || true' EXIT
lab up 2 > "$L/bench-lab.log" 2>&1 || { cat "$L/bench-lab.log"; exit 1; }
lab wait-up 2 600 >/dev/null || { echo "bench: the hosts did not come up" >&2; exit 1; }
for i in 1 2; do
	h[$i]=$(sqlite3 "$L/state/hvd.db" "SELECT name FROM hosts WHERE boot_mac = '52:54:00:77:00:0$i'")
	ip[$i]=$(sqlite3 "$L/state/hvd.db" "SELECT ip FROM dhcp_leases WHERE mac = '52:54:00:77:00:0$i'")
done
"$hvctl" net create prod --vni 100 >/dev/null 2>&1 || true
HV_DEB_CACHE=$HV_NODE_IMAGE/cache bash "$top/packaging/node-image/guest.sh" "$guest" >/dev/null
"$hvctl" image add guest-kernel "$guest/vmlinuz" --kind kernel >/dev/null 2>&1 || true
"$hvctl" image add guest-initrd "$guest/initramfs" --kind initramfs >/dev/null 2>&1 || true
sleep 5
nsx ip addr add 192.168.100.254/24 dev br100 2>/dev/null || true

# The hvctl guest, and the xl one (same kernel, initramfs and size); a bm
# left in the lab's state by an earlier run goes first.
"$hvctl" vm destroy bm >/dev/null 2>&1 && sleep 5 || true
"$hvctl" vm create bm --vcpus 1 --memory 128 --kernel guest-kernel --initramfs guest-initrd \
    --cmdline "console=hvc0 hvguest.ip=192.168.100.31/24" --net 100 > "$L/bench-create.log" 2>&1 ||
    { cat "$L/bench-create.log" >&2; exit 1; }
cp -f "$guest/vmlinuz" "$L/boot/bench-guest-vmlinuz"
cp -f "$guest/initramfs" "$L/boot/bench-guest-initramfs"
for i in 1 2; do
	lab run "$i" "mkdir -p /tmp/b && cd /tmp/b && wget -q -O k http://10.77.0.1/boot/files/bench-guest-vmlinuz && wget -q -O i http://10.77.0.1/boot/files/bench-guest-initramfs && printf '%s\n' 'name=\"xb\"' 'kernel=\"/tmp/b/k\"' 'ramdisk=\"/tmp/b/i\"' 'extra=\"console=hvc0 hvguest.ip=192.168.100.32/24\"' 'memory=128' 'vcpus=1' 'vif=[\"bridge=br100,mac=00:16:3e:00:00:98\"]' > xb.cfg && echo cfg-ok" 120 | grep -q cfg-ok ||
	    { echo "bench: no xl config in node$i's dom0" >&2; exit 1; }
done
lab run 1 "cd /tmp/b && $xl create -q xb.cfg && echo created" 120 | grep -q created ||
    { echo "bench: xl create failed" >&2; exit 1; }
sleep 10

# Replies to a ping every 0.1 s from the anchor, with their times.
# ip netns exec directly, not through nsx: $! of a backgrounded function
# names its subshell, and killing that would leave ping running.
ping_start() { ip netns exec "$HV_LAB_NS" ping -D -i 0.1 -W 1 "$1" > "$L/bench-ping.txt" 2>&1 & pinger=$!; sleep 2; }
ping_stop() { kill "$pinger" 2>/dev/null || true; wait "$pinger" 2>/dev/null || true; pinger=; }
# The longest gap between two replies, in seconds.
ping_gap() { awk -F'[][]' '/^\[[0-9.]+\] [0-9]+ bytes from/ {t = $2 + 0; if (n++ && t - p > g) g = t - p; p = t} END {printf "%.2f\n", g}' "$L/bench-ping.txt"; }
# After a move: wait (at most 60 s) for the guest to answer again, so the
# gap that ends with its first reply on the new host is in the file.
replies() { grep -ac ' bytes from ' "$L/bench-ping.txt" || true; }
ping_back() {
	local n0 i
	n0=$(replies)
	for i in $(seq 1 600); do
		[ "$(replies)" -gt "$n0" ] && return 0
		sleep 0.1
	done
	echo "bench: no reply within 60 s of the move" >&2
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# xl migrate over a plain TCP pipe: busybox nc on the target runs
# `xl migrate-receive` for one connection; the source's "ssh command" is
# nc to it (the '#' comments out the host and command xl appends).
xl_listen() { lab run "$1" "(setsid sh -c 'busybox nc -l -p 9000 -e $xl migrate-receive > /tmp/recv.log 2>&1' </dev/null >/dev/null 2>&1 &); echo listening" 30 >/dev/null; }
# Once, untimed: whether it runs on this Xen (live needs shadow paging).
xl_listen 2
xm=$(lab run 1 "$xl migrate -s 'busybox nc ${ip[2]} 9000 #' xb ignored 2>&1 | grep -a -E 'logdirty|failed' | head -n 2; $xl list | grep -c '^xb ' || true" 300 2>&1 | tr -d '\r') || true
xl_live=0 xat=1
if [ "$(echo "$xm" | tail -n 1)" = 0 ]; then
	xl_live=1 xat=2
	echo "xl migrate xb (plain TCP pipe): works (live); the peer is xl migrate"
else
	echo "xl migrate xb (plain TCP pipe): $(echo "$xm" | head -n 2 | tr '\n' ' '); the peer is xl save, a fetch, xl restore"
fi
# What typing a command into a dom0's serial console costs (lab run), so
# that xl's totals, timed around it, can be read without it.
s=$(date +%s.%N); lab run 1 "echo ok" 30 >/dev/null; e=$(date +%s.%N)
console_cost=$(echo "$e - $s" | bc)
printf 'one lab run round trip (included in each xl total): %.2f s\n' "$console_cost"

# One hvctl vm migrate of bm to host $1: "total downtime".
t_hvd() {
	local s e
	ping_start 192.168.100.31
	s=$(date +%s.%N)
	"$hvctl" vm migrate bm --to "${h[$1]}" > "$L/bench-mig.log" 2>&1 || { cat "$L/bench-mig.log" >&2; exit 1; }
	e=$(date +%s.%N)
	ping_back
	sleep 1
	ping_stop
	echo "$(echo "$e - $s" | bc) $(ping_gap)"
}
# One xl migrate of xb from host $1 to host $2 (or, where xl cannot
# migrate, xl save / fetch / restore), timed here.
t_xl() {
	local s e from=$1 to=$2
	ping_start 192.168.100.32
	if [ "$xl_live" = 1 ]; then
		xl_listen "$to"
		s=$(date +%s.%N)
		lab run "$from" "$xl migrate -s 'busybox nc ${ip[$to]} 9000 #' xb ignored >/tmp/mig.log 2>&1 && echo migrated" 300 | grep -q migrated ||
		    { echo "bench: xl migrate failed" >&2; exit 1; }
		e=$(date +%s.%N)
		ping_back
		sleep 1
		ping_stop
		echo "$(echo "$e - $s" | bc) $(ping_gap)"
		return 0
	fi
	s=$(date +%s.%N)
	lab run "$from" "cd /tmp/b && rm -f xb.save && $xl save xb /tmp/b/xb.save >/dev/null 2>&1 && (setsid busybox httpd -f -p 8000 -h /tmp/b </dev/null >/dev/null 2>&1 &) && echo saved" 300 | grep -q saved ||
	    { echo "bench: xl save failed" >&2; exit 1; }
	lab run "$to" "cd /tmp/b && rm -f xb.save && wget -q -O xb.save http://${ip[$from]}:8000/xb.save && $xl restore xb.save >/dev/null 2>&1 && echo restored" 300 | grep -q restored ||
	    { echo "bench: xl restore failed" >&2; exit 1; }
	e=$(date +%s.%N)
	lab run "$from" "kill \$(pidof httpd) 2>/dev/null; rm -f /tmp/b/xb.save; true" 30 >/dev/null
	ping_back
	sleep 1
	ping_stop
	echo "$(echo "$e - $s" | bc) $(ping_gap)"
}

at=1
[ "$("$hvctl" --json vm show bm | sed -n 's/.*"host": *"\([^"]*\)".*/\1/p')" = "${h[2]}" ] && at=2
echo "migrate, hosts ${h[1]} and ${h[2]} ($(cat "$L/accel"), 2 vCPUs each), guest 128 MiB, 1 vCPU, 1 vif"
: > "$L/bench-hvd.txt"
: > "$L/bench-xl.txt"
for k in $(seq 1 "$runs"); do
	to=$((3 - at))
	a=$(t_hvd "$to")
	at=$to
	xto=$((3 - xat))
	b=$(t_xl "$xat" "$xto")
	xat=$xto
	echo "$a" >> "$L/bench-hvd.txt"
	echo "$b" >> "$L/bench-xl.txt"
	printf 'run %d: hvctl vm migrate %.2f s (downtime %.2f s), %s %.2f s (downtime %.2f s)\n' \
	    "$k" ${a%% *} ${a#* } "$([ "$xl_live" = 1 ] && echo "xl migrate" || echo "xl save+fetch+restore")" ${b%% *} ${b#* }
done
mh=$(cut -d' ' -f1 "$L/bench-hvd.txt" | median)
dh=$(cut -d' ' -f2 "$L/bench-hvd.txt" | median)
mx=$(cut -d' ' -f1 "$L/bench-xl.txt" | median)
dx=$(cut -d' ' -f2 "$L/bench-xl.txt" | median)
printf 'median of %d: total hvctl %.2f s, xl %.2f s, ratio %.2f (goal <= 1.0)\n' "$runs" "$mh" "$mx" "$(echo "$mh / $mx" | bc -l)"
printf 'median of %d: downtime hvctl %.2f s, xl %.2f s, ratio %.2f (goal <= 1.0)\n' "$runs" "$dh" "$dx" "$(echo "$dh / $dx" | bc -l)"

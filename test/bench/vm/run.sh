#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# VM create latency in the virtual rack: `hvctl vm create` (REST -> hvd ->
# hv-agent -> libxl, hvctl returns when the VM runs) against `xl create` of
# the same guest with the same config, typed into the same dom0's serial
# console and timed there.  Median of BENCH_RUNS (default 5) each, after
# one untimed warm-up of each (images in the agent's cache, files in
# dom0's page cache); the two are interleaved.  See README.md.
#
# Needs root, qemu-system-x86_64, python3, and the binaries in HV_BIN
# (default build/release).  Starts its own lab (one machine) in
# HV_LAB_DIR (default run/lab-bench-vm) and namespace hvbenchvm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
export HV_BIN=${HV_BIN:-$top/build/release}
export HV_LAB_DIR=${HV_LAB_DIR:-$top/run/lab-bench-vm}
export HV_LAB_NS=${HV_LAB_NS:-hvbenchvm}
export HV_NODE_IMAGE=${HV_NODE_IMAGE:-$HV_BIN/node-image}
export HVCTL_SOCKET=$HV_LAB_DIR/hvd.sock
runs=${BENCH_RUNS:-5}
hvctl=$HV_BIN/cli/hvctl
guest=${HV_GUEST:-$HV_BIN/guest}
xl=/usr/lib/xen-4.17/bin/xl
lab() { bash "$top/packaging/lab/lab.sh" "$@"; }
L=$HV_LAB_DIR
cmdline="console=hvc0 hvguest.ip=192.168.100.21/24"

[ "$(id -u)" -eq 0 ] || { echo "bench: needs root" >&2; exit 1; }
mkdir -p "$L"
trap 'lab down >/dev/null 2>&1 || true' EXIT
lab up 1 > "$L/bench-lab.log" 2>&1 || { cat "$L/bench-lab.log"; exit 1; }
lab wait-up 1 600 >/dev/null || { echo "bench: the host did not come up" >&2; exit 1; }
host=$(sqlite3 "$L/state/hvd.db" "SELECT name FROM hosts WHERE boot_mac = '52:54:00:77:00:01'")
"$hvctl" net create prod --vni 100 >/dev/null 2>&1 || true
HV_DEB_CACHE=$HV_NODE_IMAGE/cache bash "$top/packaging/node-image/guest.sh" "$guest" >/dev/null
"$hvctl" image add guest-kernel "$guest/vmlinuz" --kind kernel >/dev/null 2>&1 || true
"$hvctl" image add guest-initrd "$guest/initramfs" --kind initramfs >/dev/null 2>&1 || true
# The same files for xl, fetched into dom0's /tmp from hvd's boot files
# (copies, never links: the lab's boot files are linked to the node image).
cp -f "$guest/vmlinuz" "$L/boot/bench-guest-vmlinuz"
cp -f "$guest/initramfs" "$L/boot/bench-guest-initramfs"
lab run 1 "mkdir -p /tmp/b && cd /tmp/b && wget -q -O k http://10.77.0.1/boot/files/bench-guest-vmlinuz && wget -q -O i http://10.77.0.1/boot/files/bench-guest-initramfs && printf '%s\n' 'name=\"xb\"' 'kernel=\"/tmp/b/k\"' 'ramdisk=\"/tmp/b/i\"' 'extra=\"$cmdline\"' 'memory=128' 'vcpus=1' 'vif=[\"bridge=br100,mac=00:16:3e:00:00:99\"]' > xb.cfg && cat xb.cfg" 120 > "$L/bench-xl.cfg"
grep -q 'name="xb"' "$L/bench-xl.cfg" || { cat "$L/bench-xl.cfg"; echo "bench: no xl config in dom0" >&2; exit 1; }

# One hvctl vm create to running, in seconds (wall clock on this machine).
t_hvd() {
	local s e
	s=$(date +%s.%N)
	"$hvctl" vm create "b$1" --vcpus 1 --memory 128 --kernel guest-kernel --initramfs guest-initrd \
	    --cmdline "$cmdline" --net 100 --host "$host" > "$L/bench-create.log" 2>&1 ||
	    { cat "$L/bench-create.log" >&2; exit 1; }
	e=$(date +%s.%N)
	"$hvctl" vm destroy "b$1" >/dev/null
	echo "$e - $s" | bc
}
# One xl create, timed in dom0 (/proc/uptime: 10 ms steps).
t_xl() {
	local out
	out=$(lab run 1 "cd /tmp/b && s=\$(cut -d' ' -f1 /proc/uptime) && $xl create -q xb.cfg && e=\$(cut -d' ' -f1 /proc/uptime) && echo \"took \$s \$e\"; $xl destroy xb" 120)
	echo "$out" | awk '$1 == "took" {printf "%.2f\n", $3 - $2}' | grep . || { echo "$out" >&2; exit 1; }
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "vm create latency, host $host ($(cat "$L/accel")), guest: $(du -h "$guest/vmlinuz" | cut -f1) kernel, 128 MiB, 1 vCPU, 1 vif"
t_hvd 0 >/dev/null
t_xl >/dev/null
: > "$L/bench-hvd.txt"
: > "$L/bench-xl.txt"
for k in $(seq 1 "$runs"); do
	a=$(t_hvd "$k")
	b=$(t_xl)
	echo "$a" >> "$L/bench-hvd.txt"
	echo "$b" >> "$L/bench-xl.txt"
	printf 'run %d: hvctl vm create %.2f s, xl create %.2f s\n' "$k" "$a" "$b"
done
mh=$(median < "$L/bench-hvd.txt")
mx=$(median < "$L/bench-xl.txt")
printf 'median of %d: hvctl vm create %.2f s, xl create %.2f s, ratio %.2f (goal <= 1.1)\n' \
    "$runs" "$mh" "$mx" "$(echo "$mh / $mx" | bc -l)"

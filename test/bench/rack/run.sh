#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
# Rack benchmark: seconds from a QEMU machine's start to its host being "up"
# in hvd (hv-agent connected; hvctl --json host list), through iPXE, Xen,
# the node image, DHCP, the overlay and auto-adoption.  See README.md.
#
#   test/bench/rack/run.sh [--kvm]
#
# BENCH_RUNS [3] runs of one machine; BENCH_HOSTS [4] machines at once;
# BENCH_LIMIT [900] seconds a run may take.  Binaries from HV_BIN
# [build/release] (or HVD, HVCTL, HV_AGENT); the node image from
# HV_NODE_IMAGE [build/node-image].
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
bin=${HV_BIN:-$top/build/release}
export HVD=${HVD:-$bin/daemon/hvd} HVCTL=${HVCTL:-$bin/cli/hvctl} HV_AGENT=${HV_AGENT:-$bin/agent/hv-agent}
export HV_NODE_IMAGE=${HV_NODE_IMAGE:-$top/build/node-image}
runs=${BENCH_RUNS:-3} many=${BENCH_HOSTS:-4} limit=${BENCH_LIMIT:-900}
kvm=
[ "${1:-}" = --kvm ] && kvm=--kvm

die() { echo "rack bench: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (the lab makes a network namespace and taps)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (packaging/deps.sh)"
command -v python3 >/dev/null || die "python3 missing"
for b in "$HVD" "$HVCTL" "$HV_AGENT"; do
	[ -x "$b" ] || die "$b missing (cmake --preset release && cmake --build --preset release)"
done
[[ $runs =~ ^[1-9][0-9]*$ ]] && [[ $many =~ ^[1-9][0-9]*$ ]] && [ "$many" -le 20 ] &&
    [[ $limit =~ ^[0-9]+$ ]] || die "BENCH_RUNS, BENCH_HOSTS (1..20) and BENCH_LIMIT are numbers"

base=$(mktemp -d /tmp/hv-bench-rack.XXXXXX)
export HV_LAB_NS=hvbench$$
lab() { bash "$top/packaging/lab/lab.sh" "$@"; }
cleanup() {
	[ -n "${HV_LAB_DIR:-}" ] && lab down >/dev/null 2>&1 || true
	rm -rf "$base"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# boot N TAG: a fresh lab (empty inventory), machines 1..N started one
# after the other at once; writes "I SECONDS" per machine to
# $base/TAG.times, SECONDS being from that machine's QEMU start to its host
# "up" (or "timeout").  Runs in this shell, so that cleanup knows the lab.
boot() {
	local n=$1 i
	export HV_LAB_DIR=$base/$2 HVCTL_SOCKET=$base/$2/hvd.sock
	mkdir -p "$HV_LAB_DIR"
	lab up 0 $kvm > "$HV_LAB_DIR/up.log" 2>&1 || { cat "$HV_LAB_DIR/up.log" >&2; exit 1; }
	accel=$(cat "$HV_LAB_DIR/accel")
	for i in $(seq 1 "$n"); do lab start "$i" >> "$HV_LAB_DIR/up.log"; done
	# One poller process for the whole run (a process per poll would
	# cost the machines CPU); hosts are matched by boot MAC.
	python3 - "$HVCTL" "$HV_LAB_DIR" "$n" "$limit" > "$base/$2.times" <<'PY'
import json, subprocess, sys, time
hvctl, lab, n, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
want = {}
for i in range(1, n + 1):
    with open(f"{lab}/node{i}.started") as f:
        want["52:54:00:77:00:%02x" % i] = (i, float(f.read()))
done = {}
end = time.time() + limit
while len(done) < n and time.time() < end:
    r = subprocess.run([hvctl, "--json", "host", "list"], capture_output=True, text=True)
    now = time.time()
    try:
        hosts = json.loads(r.stdout) if r.returncode == 0 else []
    except ValueError:
        hosts = []
    if isinstance(hosts, dict):
        hosts = hosts.get("hosts", [])
    for h in hosts:
        mac = h.get("boot_mac")
        if mac in want and mac not in done and h.get("state") == "up":
            done[mac] = now - want[mac][1]
    time.sleep(0.25)
for mac, (i, _) in sorted(want.items(), key=lambda kv: kv[1][0]):
    print(i, "%.1f" % done[mac] if mac in done else "timeout")
PY
	lab down > /dev/null 2>&1
	unset HV_LAB_DIR
}

# The node image once, so that no run pays for it.
HV_AGENT=$HV_AGENT bash "$top/packaging/node-image/build.sh" "$HV_NODE_IMAGE" > "$base/image.log" 2>&1 ||
    { cat "$base/image.log" >&2; die "node image build failed"; }

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
failed=0

one=()
for r in $(seq 1 "$runs"); do
	boot 1 "one$r"
	t=$(awk '{print $2}' "$base/one$r.times")
	[ "$t" = timeout ] && failed=1
	one+=("$t")
	echo "rack bench: 1 host, run $r: $t s ($accel)" >&2
done
if [ "$failed" = 0 ]; then
	echo "rack bench: 1 host: runs ${one[*]} s, median $(median "${one[@]}") s ($accel)"
else
	echo "rack bench: 1 host: runs ${one[*]} s (a run timed out after $limit s) ($accel)"
fi

boot "$many" many
mapfile -t at < <(awk '{print $2}' "$base/many.times")
if [[ " ${at[*]} " == *" timeout "* ]] || [ "${#at[@]}" -ne "$many" ]; then
	failed=1
	echo "rack bench: $many hosts at once: ${at[*]} s (timed out after $limit s) ($accel)"
else
	max=$(printf '%s\n' "${at[@]}" | sort -g | tail -n 1)
	echo "rack bench: $many hosts at once: ${at[*]} s, max $max s ($accel)"
fi
echo "rack bench: accelerator $accel, $(nproc) CPU(s), ${HV_LAB_MEM:-2048} MiB per machine, $(uname -r)"
exit "$failed"

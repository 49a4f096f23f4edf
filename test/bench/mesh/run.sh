#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# Mesh benchmark (see README.md next to this file): in one network
# namespace, 100 remote VTEPs on one VNI plus 10,000 per-MAC entries.
#
#   1. mesh_apply from empty (it creates br100 and vxlan100, then the FDB)
#      against `bridge -batch` with the same 10,100 entries on devices made
#      beforehand (not timed); each in a fresh namespace, BENCH_RUNS times,
#      medians compared.  Both are timed as whole processes.
#   2. `bridge fdb show` after each, diffed against the wanted entries:
#      the missing count must be 0.
#   3. A full reconcile over the unchanged state, timed inside mesh_apply
#      (first apply of a fresh process, and the median of the next ones).
#
# usage: test/bench/mesh/run.sh
# Knobs: MESH_APPLY [build/release/test/tools/mesh_apply], BENCH_RUNS [5],
#        BENCH_VTEPS [100], BENCH_MACS [10000]
# Exits non-zero only when something breaks (an apply fails, entries are
# missing); a missed goal only shows in the figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
MESH_APPLY=${MESH_APPLY:-$ROOT/build/release/test/tools/mesh_apply}
RUNS=${BENCH_RUNS:-5}
NVTEPS=${BENCH_VTEPS:-100}
NMACS=${BENCH_MACS:-10000}
[ "$(id -u)" -eq 0 ] || { echo "mesh bench: needs root (ip netns)"; exit 1; }
[ -x "$MESH_APPLY" ] || { echo "mesh bench: no $MESH_APPLY (build it or set MESH_APPLY)"; exit 1; }
command -v bridge >/dev/null || { echo "mesh bench: needs iproute2's bridge"; exit 1; }

T=$(mktemp -d /tmp/hv-mesh-bench.XXXXXX)
NS=""
cleanup() {
	[ -n "$NS" ] && ip netns del "$NS" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

# The state, the bridge batch and the wanted "MAC DST" lines.
python3 - "$T" "$NVTEPS" "$NMACS" <<'PY'
import json, sys
d, nv, nm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
vteps = ["10.77.%d.%d" % (1 + i // 250, 1 + i % 250) for i in range(nv)]
macs = [("02:00:%02x:%02x:%02x:%02x" % ((i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255), vteps[i % nv]) for i in range(nm)]
st = {"version": 1, "local": "10.77.0.1", "underlay": "u0",
      "networks": [{"vni": 100, "vteps": vteps,
                    "macs": [{"mac": m, "vtep": v} for m, v in macs]}]}
json.dump(st, open(d + "/state.json", "w"))
with open(d + "/batch", "w") as b, open(d + "/want", "w") as w:
    for v in vteps:
        b.write("fdb append 00:00:00:00:00:00 dev vxlan100 dst %s self permanent\n" % v)
        w.write("00:00:00:00:00:00 %s\n" % v)
    for m, v in macs:
        b.write("fdb replace %s dev vxlan100 dst %s self permanent\n" % (m, v))
        w.write("%s %s\n" % (m, v))
PY
sort -o "$T/want" "$T/want"

fresh_ns() {
	[ -n "$NS" ] && ip netns del "$NS"
	NS=hvbench$$
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	ip -n "$NS" link add u0 type veth peer name u1
	ip -n "$NS" addr add 10.77.0.1/16 dev u0
	ip -n "$NS" link set u0 up
	ip -n "$NS" link set u1 up
}
now_ns() { date +%s%N; }
missing() {
	ip netns exec "$NS" bridge fdb show dev vxlan100 |
		awk '{ for (i = 2; i < NF; i++) if ($i == "dst") print $1, $(i + 1) }' | sort > "$T/have"
	comm -23 "$T/want" "$T/have" | wc -l
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: > "$T/t_apply"; : > "$T/t_bridge"
miss_apply=0; miss_bridge=0
for i in $(seq "$RUNS"); do
	fresh_ns
	t0=$(now_ns)
	ip netns exec "$NS" "$MESH_APPLY" "$T/state.json" > "$T/out" ||
		{ echo "mesh bench: mesh_apply failed: $(cat "$T/out")"; exit 1; }
	t1=$(now_ns)
	echo $(( (t1 - t0) / 1000 )) >> "$T/t_apply"
	miss_apply=$(( miss_apply + $(missing) ))

	fresh_ns
	ip -n "$NS" link add br100 mtu 1450 type bridge
	ip -n "$NS" link add vxlan100 mtu 1450 type vxlan id 100 dstport 4789 \
		local 10.77.0.1 dev u0 nolearning
	ip -n "$NS" link set vxlan100 master br100
	ip -n "$NS" link set br100 up
	ip -n "$NS" link set vxlan100 up
	t0=$(now_ns)
	ip netns exec "$NS" bridge -batch "$T/batch" ||
		{ echo "mesh bench: bridge -batch failed"; exit 1; }
	t1=$(now_ns)
	echo $(( (t1 - t0) / 1000 )) >> "$T/t_bridge"
	miss_bridge=$(( miss_bridge + $(missing) ))
done
ta=$(median < "$T/t_apply"); tb=$(median < "$T/t_bridge")
echo "mesh bench: $NVTEPS VTEPs + $NMACS MACs on one VNI, median of $RUNS runs"
echo "mesh bench: apply from empty $(echo "scale=1; $ta / 1000" | bc) ms (mesh_apply process, incl. creating br100 and vxlan100)"
echo "mesh bench: bridge -batch    $(echo "scale=1; $tb / 1000" | bc) ms (same entries, devices made beforehand)"
echo "mesh bench: missing after apply $miss_apply, after bridge -batch $miss_bridge (over $RUNS runs each)"
echo "mesh bench: ratio applier/bridge $(echo "scale=2; $ta / $tb" | bc) (goal <= 1.0)"

# Unchanged state: the last namespace has the entries from bridge -batch,
# on devices without the marker; start again from the applier's own.
fresh_ns
ip netns exec "$NS" "$MESH_APPLY" "$T/state.json" > /dev/null
ip netns exec "$NS" "$MESH_APPLY" -r 11 "$T/state.json" > "$T/re"
changes=$(python3 -c '
import json, sys
n = 0
for l in open(sys.argv[1]):
    j = json.loads(l)
    n += sum(j[k] for k in ("links_added", "links_changed", "links_deleted", "fdb_added", "fdb_deleted"))
print(n)' "$T/re")
first=$(head -n 1 "$T/re" | sed 's/.*"ms":\([0-9.]*\).*/\1/')
rest=$(tail -n +2 "$T/re" | sed 's/.*"ms":\([0-9.]*\).*/\1/' | median)
unchanged=$(head -n 1 "$T/re" | sed 's/.*"fdb_unchanged":\([0-9]*\).*/\1/')
echo "mesh bench: unchanged reconcile ${first} ms (first in a fresh process), ${rest} ms (median of the next 10); goal < 50 ms"
echo "mesh bench: unchanged reconcile saw $unchanged entries unchanged and made $changes changes (want $((NVTEPS + NMACS)) and 0)"
[ "$miss_apply" -eq 0 ] && [ "$miss_bridge" -eq 0 ] && [ "$changes" -eq 0 ] ||
	{ echo "mesh bench: FAILED (entries missing or changes on an unchanged state)"; exit 1; }

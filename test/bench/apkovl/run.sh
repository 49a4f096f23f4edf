#!/usr/bin/env bash
# SPDX-License-Identifier: AGPL-3.0-or-later
#
# apkovl build benchmark (see README.md next to this file).
#
# Builds bench.c against daemon/apkovl.c with release flags (-O2,
# _FORTIFY_SOURCE), builds the overlays of BENCH_HOSTS distinct hosts and
# prints p50/p99 build time, overlays per second and the size of one
# overlay.  Side by side, the peer: GNU tar + gzip packing the same tree
# (what a shell-script overlay generator would do, one tar process per
# host), timed over BENCH_PEER runs; the script prints the ratio of the
# p50s.  Also checks that BusyBox tar (what Alpine's initramfs unpacks
# with) lists the overlay.
#
# usage: test/bench/apkovl/run.sh
# Environment: BENCH_HOSTS [1000], BENCH_PEER [200], CC [cc]
#
# Exits non-zero only when something breaks, never on a goal.
set -euo pipefail

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../../.." && pwd)
hosts=${BENCH_HOSTS:-1000}
peer_runs=${BENCH_PEER:-200}
tmp=$(mktemp -d /tmp/hv-bench-apkovl.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

die() { echo "apkovl bench: $*" >&2; exit 1; }

# Built here rather than by CMake: the two pure files and the number parser
# are all it needs, with the flags of the release preset.
# shellcheck disable=SC2046 # pkg-config prints several words
(cd "$repo" && "${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -U_FORTIFY_SOURCE \
    -D_FORTIFY_SOURCE=2 -Idaemon -Ilib -o "$tmp/apkovl-bench" \
    daemon/apkovl.c daemon/ovl_parse.c lib/numparse.c \
    test/bench/apkovl/bench.c $(pkg-config --cflags --libs libarchive libsodium)) \
    >"$tmp/cc.log" 2>&1 || { cat "$tmp/cc.log" >&2; die "build failed"; }

"$tmp/apkovl-bench" -n "$hosts" -o "$tmp/h0000.apkovl.tar.gz" | tee "$tmp/bench.out"
p50=$(sed -n 's/^apkovl bench: p50 \([0-9.]*\) ms.*/\1/p' "$tmp/bench.out")
[[ -n $p50 ]] || die "no p50 in the benchmark's output"

# The overlay as Alpine's initramfs will see it.
if command -v busybox >/dev/null; then
	n=$(busybox tar -tzf "$tmp/h0000.apkovl.tar.gz" | wc -l) ||
		die "busybox tar cannot read the overlay"
	echo "apkovl bench: busybox tar lists $n entries"
else
	echo "apkovl bench: no busybox, BusyBox tar check skipped"
fi

# Peer: GNU tar + gzip over the same tree, one process per overlay.
mkdir "$tmp/tree"
tar -xzf "$tmp/h0000.apkovl.tar.gz" -C "$tmp/tree"
python3 - "$tmp/tree" "$peer_runs" "$p50" <<'PY'
import subprocess, sys, time
tree, runs, ours = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
cmd = ["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0",
       "--numeric-owner", "-C", tree, "-czf", "-", "."]
t = []
for _ in range(runs):
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    t.append((time.monotonic() - t0) * 1e3)
t.sort()
rank = lambda p: t[(len(t) * p + 99) // 100 - 1]
print(f"apkovl bench: peer GNU tar -czf (one process per overlay): "
      f"p50 {rank(50):.3f} ms, p99 {rank(99):.3f} ms over {runs} runs")
print(f"apkovl bench: p50 ratio peer/apkovl_build {rank(50) / ours:.1f}")
PY
